"""A LiteLLM proxy `config.yaml` converted to our version-1 document, so LiteLLM users can move over.

One provider per (kind, api_base), one deployment per `model_list` entry (entries that name the same upstream
model on the same provider share it), one alias per `model_name` with its entries as weighted deployments.
What has no equivalent here is skipped with a warning that says so, never silently.
"""

from __future__ import annotations

import math
from typing import Any

from llm_console.services.config_schema import ENV_PREFIX, ConfigImportError, path_of
from llm_console.services.deployments import ConfigError, deployment_base_name, validate_base_url

# LiteLLM provider prefix -> (our provider kind, default api_base or None when the config must give one).
PREFIXES: dict[str, tuple[str, str | None]] = {
    "openai": ("openai", "https://api.openai.com/v1"),
    "text-completion-openai": ("openai", "https://api.openai.com/v1"),
    "hosted_vllm": ("openai", None),
    "litellm_proxy": ("openai", None),
    "anthropic": ("anthropic", "https://api.anthropic.com"),
    "azure": ("azure", None),
}
ROUTING = {
    "simple-shuffle": "weighted",
    "least-busy": "least_busy",
    "latency-based-routing": "lowest_latency",
    "cost-based-routing": "lowest_cost",
}
MODES = {"chat": "llm", "completion": "llm", "responses": "llm", "embedding": "embedding", "rerank": "reranker"}
CAPABILITIES = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json_mode",
}
USED_PARAMS = {
    "model", "api_base", "api_key", "api_version", "timeout", "stream_timeout", "max_retries", "weight",
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost", "max_parallel_requests",
    "rpm", "tpm",
}  # fmt: skip
ROUTER_USED = {"routing_strategy", "num_retries", "timeout", "fallbacks"}


class _Problems:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def number(self, value: Any, path: str, *, minimum: float = 0, positive: bool = False) -> float | None:
        """A finite number >= minimum (> 0 when positive), or None after recording why not."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.errors.append(f"{path}: must be a number")
            return None
        if value < minimum or (positive and value <= 0):
            self.errors.append(f"{path}: must be {'> 0' if positive else f'>= {minimum:g}'}")
            return None
        return float(value)

    def text(self, value: Any, path: str, *, required: bool = False) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{path}: {'is required and ' if value is None else ''}must be non-empty text")
            return None
        return value.strip()


def _mapping(value: Any, path: str, p: _Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.errors.append(f"{path}: must be a mapping (key: value)")
        return {}
    return value


def convert_litellm(data: Any) -> tuple[dict[str, Any], list[str]]:
    """(our document as plain data, warnings); ConfigImportError when the config itself is wrong."""
    p = _Problems()
    if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
        raise ConfigImportError(["model_list: a LiteLLM config needs a model_list (a list of models)"])
    router = _mapping(data.get("router_settings"), "router_settings", p)
    module = _mapping(data.get("litellm_settings"), "litellm_settings", p)
    for section in ("general_settings", "environment_variables"):
        if section in data:
            p.warnings.append(f"{section}: ignored (proxy server settings have no equivalent in a config document)")
    doc: dict[str, Any] = {"version": 1, "providers": {}, "deployments": {}, "aliases": {}, "prices": {}}
    ignored: set[str] = set()
    for i, entry in enumerate(data["model_list"]):
        _entry(entry, f"model_list[{i}]", doc, p, ignored)
    if ignored:
        p.warnings.append(f"litellm_params ignored (no equivalent here): {', '.join(sorted(ignored))}")
    _router(router, module, doc, p)
    if p.errors:
        raise ConfigImportError(p.errors)
    if not doc["aliases"]:
        raise ConfigImportError(["model_list: no entry could be converted", *p.warnings])
    return {k: list(v.values()) if isinstance(v, dict) else v for k, v in doc.items()}, list(dict.fromkeys(p.warnings))


def _entry(entry: Any, path: str, doc: dict[str, Any], p: _Problems, ignored: set[str]) -> None:
    if not isinstance(entry, dict):
        p.errors.append(f"{path}: must be a mapping with model_name and litellm_params")
        return
    alias = p.text(entry.get("model_name"), f"{path}.model_name", required=True)
    params = _mapping(entry.get("litellm_params"), f"{path}.litellm_params", p)
    model = p.text(params.get("model"), f"{path}.litellm_params.model", required=True)
    if alias is None or model is None:
        return
    if "*" in alias or "*" in model:
        p.warnings.append(f"{path}: skipped {alias[:80]!r}: wildcard routing has no equivalent here")
        return
    prefix, _, upstream = model.partition("/")
    if not upstream:
        prefix, upstream = "openai", model
        p.warnings.append(
            f"{path}.litellm_params.model: {model[:80]!r} has no provider prefix; read as openai/{model[:80]}"
        )
    if prefix not in PREFIXES:
        supported = ", ".join(f"{k}/" for k in PREFIXES)
        p.warnings.append(f"{path}: skipped {alias[:80]!r}: provider {prefix[:40]!r} is not supported here "
                          f"(supported: {supported})")  # fmt: skip
        return
    kind, default_base = PREFIXES[prefix]
    ignored |= {str(k)[:40] for k in params if k not in USED_PARAMS}
    if "rpm" in params or "tpm" in params:
        p.warnings.append("rpm/tpm per deployment are not imported: set rate limits per key, user or team instead")
    api_base = _base(params.get("api_base"), default_base, f"{path}.litellm_params.api_base", prefix, p)
    if api_base is None:
        return
    provider = _provider(doc, kind, api_base, params.get("api_key"), f"{path}.litellm_params.api_key", p)
    deployment = _deployment(doc, provider, kind, upstream, api_base, params, path, p)
    _alias(doc, alias, deployment, params, entry.get("model_info"), path, p)
    _price(doc, upstream, {**_mapping(entry.get("model_info"), f"{path}.model_info", p), **params}, path, p)


def _base(value: Any, default: str | None, path: str, prefix: str, p: _Problems) -> str | None:
    if value is None:
        if default is None:
            p.errors.append(f"{path}: required for {prefix}/ models")
        return default
    if not isinstance(value, str):
        p.errors.append(f"{path}: must be a URL")
        return None
    if value.startswith(ENV_PREFIX):
        p.errors.append(f"{path}: os.environ/ references are read only for api_key; write the URL itself")
        return None
    try:
        return validate_base_url(value)
    except ConfigError as exc:
        p.errors.append(f"{path}: {exc}")
        return None


def _provider(doc: dict[str, Any], kind: str, api_base: str, key: Any, path: str, p: _Problems) -> str:
    name = f"{kind}:{api_base}"
    if key is not None and not isinstance(key, str):
        p.errors.append(f"{path}: must be text (a key or os.environ/NAME)")
        key = None
    existing = doc["providers"].get(name)
    if existing is None:
        doc["providers"][name] = {"name": name, "kind": kind, "api_base": api_base, **({"api_key": key} if key else {})}
    elif key and existing.get("api_key") != key:
        if "api_key" in existing:
            p.warnings.append(f"{path}: another key for {api_base} was given earlier; the first one is used")
        else:
            existing["api_key"] = key
    return name


def _deployment(
    doc: dict[str, Any], provider: str, kind: str, model: str, api_base: str, params: dict[str, Any], path: str,
    p: _Problems,
) -> str:  # fmt: skip
    name = deployment_base_name(model, api_base, kind)
    settings: dict[str, Any] = {}
    timeouts = {
        "total_s": p.number(params.get("timeout"), f"{path}.litellm_params.timeout", positive=True),
        "first_byte_s": p.number(params.get("stream_timeout"), f"{path}.litellm_params.stream_timeout", positive=True),
    }
    if any(v is not None for v in timeouts.values()):
        settings["timeouts"] = {k: v for k, v in timeouts.items() if v is not None}
    version = p.text(params.get("api_version"), f"{path}.litellm_params.api_version")
    if version is not None:
        settings["api_version"] = version
    row: dict[str, Any] = {"name": name, "provider": provider, "model": model, "settings": settings}
    parallel = p.number(params.get("max_parallel_requests"), f"{path}.litellm_params.max_parallel_requests", minimum=1)
    if parallel is not None:
        row["max_concurrency"] = int(parallel)
    existing = doc["deployments"].setdefault(name, row)
    if existing is not row and existing != row:
        p.warnings.append(f"{path}: {name[:80]!r} appears earlier with other settings; the first ones are used")
    return name


def _alias(
    doc: dict[str, Any], alias: str, deployment: str, params: dict[str, Any], info: Any, path: str, p: _Problems
) -> None:
    row = doc["aliases"].setdefault(alias, {"alias": alias, "deployments": []})
    weight = p.number(params.get("weight", 1), f"{path}.litellm_params.weight")
    if weight is not None and weight != int(weight):
        p.warnings.append(f"{path}.litellm_params.weight: {weight:g} rounded to a whole number")
        weight = max(1, round(weight)) if weight > 0 else 0
    if any(t["deployment"] == deployment for t in row["deployments"]):
        p.warnings.append(f"{path}: {alias[:80]!r} already routes to {deployment[:80]!r}; the repeat is ignored")
    else:
        row["deployments"].append({"deployment": deployment, "weight": int(weight if weight is not None else 1)})
    retries = p.number(params.get("max_retries"), f"{path}.litellm_params.max_retries")
    if retries is not None:
        policy = row.setdefault("policy", {})
        policy["retries"] = min(10, max(int(retries), policy.get("retries", 0)))
    if "info" not in row and isinstance(info, dict):
        row["info"] = _info(info, f"{path}.model_info", p)


def _info(info: dict[str, Any], path: str, p: _Problems) -> dict[str, Any]:
    """LiteLLM model_info -> catalog metadata: type, context length, capabilities."""
    out: dict[str, Any] = {}
    mode = info.get("mode", "chat")
    if mode in MODES:
        out["type"] = MODES[mode]
    else:
        p.warnings.append(f"{path}.mode: {str(mode)[:40]!r} has no catalog type here; left unset")
    for key in ("max_input_tokens", "max_tokens"):
        length = p.number(info.get(key), f"{path}.{key}", minimum=1)
        if length is not None:
            out["context_length"] = int(length)
            break
    caps = {ours: info[theirs] for theirs, ours in CAPABILITIES.items() if isinstance(info.get(theirs), bool)}
    if isinstance(info.get("supports_native_streaming"), bool):
        caps["streaming"] = info["supports_native_streaming"]
    elif mode in ("chat", "completion", "responses"):
        caps["streaming"] = True
    if caps:
        out["capabilities"] = caps
    return out


def _price(doc: dict[str, Any], model: str, params: dict[str, Any], path: str, p: _Problems) -> None:
    """LiteLLM's USD per token -> USD per million tokens, for the upstream model name."""
    names = {"input_cost_per_token": "input_per_mtok", "output_cost_per_token": "output_per_mtok",
             "cache_read_input_token_cost": "cached_input_per_mtok"}  # fmt: skip
    price: dict[str, Any] = {}
    for theirs, ours in names.items():
        value = p.number(params.get(theirs), f"{path}.{theirs}")
        if value is not None:
            price[ours] = round(value * 1_000_000, 6)
    if not price:
        return
    price["model"] = model
    existing = doc["prices"].setdefault(model, price)
    if existing is not price and existing != price:
        p.warnings.append(f"{path}: another price for {model[:80]!r} was given earlier; the first one is used")


def _router(router: dict[str, Any], module: dict[str, Any], doc: dict[str, Any], p: _Problems) -> None:
    """router_settings / litellm_settings -> every alias's strategy, retries, timeout and fallbacks."""
    aliases: dict[str, dict[str, Any]] = doc["aliases"]
    strategy = router.get("routing_strategy")
    if strategy is not None:
        if strategy in ROUTING:
            for row in aliases.values():
                row["strategy"] = ROUTING[strategy]
        else:
            p.warnings.append(f"router_settings.routing_strategy: {str(strategy)[:60]!r} has no equivalent; "
                              "aliases keep weighted routing")  # fmt: skip
    extra = sorted(str(k)[:40] for k in router if k not in ROUTER_USED)
    if extra:
        p.warnings.append(f"router_settings ignored (no equivalent here): {', '.join(extra)}")
    where = "router_settings" if "num_retries" in router else "litellm_settings"
    retries = p.number(router.get("num_retries", module.get("num_retries")), f"{where}.num_retries")
    where = "router_settings.timeout" if "timeout" in router else "litellm_settings.request_timeout"
    timeout = p.number(router.get("timeout", module.get("request_timeout")), where, positive=True)
    for row in aliases.values():
        policy = row.get("policy", {})
        if retries is not None and "retries" not in policy:
            policy["retries"] = min(10, int(retries))
        if timeout is not None:
            policy["timeouts"] = {"total_s": min(timeout, 86_400)}
        if policy:
            row["policy"] = policy
    fallbacks = router.get("fallbacks", module.get("fallbacks"))
    where = "router_settings.fallbacks" if "fallbacks" in router else "litellm_settings.fallbacks"
    if fallbacks is None:
        return
    if not isinstance(fallbacks, list) or not all(isinstance(f, dict) for f in fallbacks):
        p.errors.append(f"{where}: must be a list of {{model_name: [fallback, ...]}}")
        return
    for i, item in enumerate(fallbacks):
        for alias, targets in item.items():
            path = path_of([where, i, str(alias)[:80]])
            if alias not in aliases or not isinstance(targets, list):
                p.warnings.append(f"{path}: ignored (not a model_name of this config, or not a list)")
                continue
            known = [t for t in targets if isinstance(t, str) and t in aliases and t != alias]
            if len(known) != len(targets):
                p.warnings.append(f"{path}: fallbacks that are not model_names of this config are left out")
            aliases[alias].setdefault("policy", {})["fallbacks"] = known
