"""Areas still being built: each says what is coming, with no invented figures."""

from __future__ import annotations

from llm_console import routes
from llm_console.components.layout import coming_soon, console_page

PLANNED: list[tuple[str, str, str, list[str]]] = [
    (
        routes.CATALOG,
        "Model catalog",
        "Every alias this gateway serves.",
        ["Type, provider, size and quantization, context length", "Capabilities and usage snippets", "Compare models"],
    ),
    (
        routes.CONFIG,
        "Configuration",
        "Providers, deployments and routing rules, audited.",
        ["Create, edit and test deployments", "Routing strategies and fallbacks", "Import / export YAML"],
    ),
    (
        routes.KEYS,
        "Virtual keys",
        "Keys are created today with `llm-console create-key`.",
        ["Create (shown once), scope, rotate and revoke", "Per-key usage"],
    ),
    (
        routes.LIMITS,
        "Limits & alerts",
        "Rate limits and budgets per key, user and team.",
        ["RPM / TPM / RPD / TPD", "Daily and monthly budgets with warning and exceeded states", "Alerts"],
    ),
    (
        routes.FLEET,
        "Fleet & GPUs",
        "vLLM containers and GPUs next to the traffic they serve.",
        ["Containers via the Docker API", "GPU memory and utilization via NVML", "Engine metrics: queue, KV cache"],
    ),
    (
        routes.ANALYTICS,
        "Analytics",
        "Langfuse-style analytics over the request log.",
        ["Traces over time, unique users, usage heatmap", "Feedback scores, A/B comparison", "Anomalies and forecasts"],
    ),
    (routes.PROMPTS, "Prompts", "Versioned prompt management.", ["Prompt versions and labels", "Playground"]),
    (
        routes.ORG,
        "Organization",
        "Users, teams and roles.",
        ["Users and invitations, OIDC sign-in", "Teams and service accounts", "Audit log"],
    ),
]


def _register(route: str, title: str, what: str, items: list[str]) -> None:
    console_page(route, title)(lambda: coming_soon(what, items))


for _route, _title, _what, _items in PLANNED:
    _register(_route, _title, _what, _items)
