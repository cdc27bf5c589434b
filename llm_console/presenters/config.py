"""The Configuration page's rows: providers, deployments, the health matrix and test results, as text.

Nothing secret reaches these rows: a provider's key shows only as "set" or "not set".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from llm_console.presenters.common import ms
from llm_console.services.deployment_admin import DeploymentView
from llm_console.services.probe import ProbeResult
from llm_console.services.providers import ProviderView

KIND_LABELS = {"openai": "OpenAI-compatible", "anthropic": "Anthropic", "azure": "Azure OpenAI"}
KIND_OPTIONS = [
    ("openai", "OpenAI-compatible (vLLM, OpenAI, LiteLLM, …)"),
    ("anthropic", "Anthropic"),
    ("azure", "Azure OpenAI"),
]


@dataclass
class MatrixRow:
    """One alias across every deployment column; cells are empty where the alias does not route."""

    alias: str
    cells: list[dict[str, str]]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "never"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def provider_rows(views: list[ProviderView]) -> list[dict[str, str]]:
    return [
        {
            "id": str(p.id),
            "name": p.name,
            "kind": p.kind,
            "kind_label": KIND_LABELS.get(p.kind, p.kind),
            "api_base": p.api_base,
            "key": "set" if p.has_key else "not set",
            "has_key": _flag(p.has_key),
            "enabled": _flag(p.enabled),
            "api_version": p.api_version,
            "deployments": str(p.deployments),
        }
        for p in views
    ]


def provider_options(views: list[ProviderView]) -> list[dict[str, str]]:
    return [{"value": str(p.id), "label": f"{p.name} ({KIND_LABELS.get(p.kind, p.kind)})"} for p in views]


def deployment_rows(views: list[DeploymentView]) -> list[dict[str, str]]:
    rows = []
    for d in views:
        row = {
            "id": str(d.id),
            "name": d.name,
            "provider": d.provider_name,
            "provider_id": str(d.provider_id),
            "kind": d.provider_kind,
            "provider_enabled": _flag(d.provider_enabled),
            "model": d.model,
            "aliases": ", ".join(a if w == 1 else f"{a} (weight {w})" for a, w in d.aliases) or "—",
            "enabled": _flag(d.enabled),
            "max_concurrency": str(d.max_concurrency) if d.max_concurrency is not None else "",
            "concurrency": str(d.max_concurrency) if d.max_concurrency is not None else "no limit",
            "health": d.health.status,
            "latency": ms(d.health.latency_ms) if d.health.latency_ms is not None else "",
            "checked": when(d.health.checked_at),
            "last_error": d.health.last_error,
            "context": str(d.discovered.get("max_model_len") or ""),
            "api_version": d.api_version,
        }
        row.update({name: f"{value:g}" for name, value in d.timeouts.items()})
        rows.append(row)
    return rows


def health_matrix(views: list[DeploymentView]) -> tuple[list[str], list[MatrixRow]]:
    """Rows are aliases (plus "(no alias)" for unrouted deployments), columns are deployments."""
    columns = [d.name for d in views]
    aliases = sorted({a for d in views for a, _ in d.aliases})
    unrouted = any(not d.aliases for d in views)
    rows = []
    for alias in [*aliases, *(["(no alias)"] if unrouted else [])]:
        cells = []
        for d in views:
            routed = alias in {a for a, _ in d.aliases} or (alias == "(no alias)" and not d.aliases)
            h = d.health
            status = ("disabled" if not (d.enabled and d.provider_enabled) else h.status) if routed else ""
            cells.append(
                {
                    "status": status,
                    "checked": when(h.checked_at) if routed else "",
                    "latency": ms(h.latency_ms) if routed and h.latency_ms is not None else "",
                    "error": h.last_error if routed else "",
                    "error_at": when(h.last_error_at) if routed and h.last_error else "",
                    "label": f"{alias} on {d.name}: {status or 'not routed'}",
                }
            )
        rows.append(MatrixRow(alias, cells))
    return columns, rows


def test_summary(dep_id: int, name: str, result: ProbeResult) -> dict[str, str]:
    """What "Test connection" says: status, latency and the models found, or the readable error."""
    parts = [result.status]
    if result.latency_ms is not None:
        parts.append(ms(result.latency_ms))
    if result.models:
        shown = ", ".join(result.models[:10]) + (
            f" (+{len(result.models) - 10} more)" if len(result.models) > 10 else ""
        )
        parts.append(f"{len(result.models)} model{'s' if len(result.models) != 1 else ''} found: {shown}")
    elif result.status != "error":
        parts.append("no models found")
    summary = " · ".join(parts) + (f" — {result.error}" if result.error else "")
    return {"id": str(dep_id), "name": name, "status": result.status, "summary": f"{name}: {summary}"}
