"""Deployments (one model on one provider): create, edit, enable or disable, route an alias, delete; audited.

Every change writes an audit event, which is also what makes running gateways reload their route table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, DeploymentHealth, ModelAlias, Provider
from llm_console.services.audit import record
from llm_console.services.deployments import (
    TIMEOUT_FIELDS,
    ConfigError,
    deployment_base_name,
    route_alias,
    unique_deployment_name,
)
from llm_console.services.providers import (
    clean_name,
    clean_version,
    delete_deployment_rows,
    routed_aliases,
    switch_enabled,
)

MAX_MODEL = 300
MAX_WEIGHT = 1000
MAX_CONCURRENCY = 100_000
MAX_TIMEOUT_S = 86_400.0
MAX_GPU_HOUR_USD = 1_000_000.0
MAX_METRICS_URL = 1000


@dataclass(frozen=True, slots=True)
class DeploymentFields:
    """What the create and edit forms set; `alias` (optional) is routed to the deployment with `weight`."""

    model: str
    name: str = ""
    alias: str = ""
    weight: int = 1
    max_concurrency: int | None = None
    timeouts: dict[str, float] = field(default_factory=dict)
    api_version: str = ""
    gpu_hour_usd: float | None = None  # the whole deployment's GPUs, per hour; None: not priced by the hour
    metrics_url: str = ""  # "": <api_base root>/metrics; "off"; or a URL on the provider's host

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> DeploymentFields:
        """Read a submitted form (all strings; blanks mean "not set"), refusing unreadable numbers."""

        def text(name: str) -> str:
            return str(form.get(name) or "").strip()

        def number(name: str, label: str, whole: bool) -> float | None:
            raw = text(name)
            if not raw:
                return None
            try:
                value = int(raw) if whole else float(raw)
            except ValueError:
                raise ConfigError(f"{label} must be a {'whole ' if whole else ''}number, got {raw[:40]!r}") from None
            if not math.isfinite(value):
                raise ConfigError(f"{label} must be a finite number")
            return value

        weight = number("weight", "weight", True)
        concurrency = number("max_concurrency", "max concurrency", True)
        timeouts = {n: v for n in TIMEOUT_FIELDS if (v := number(n, f"timeout {n}", False)) is not None}
        gpu_hour_usd = number("gpu_hour_usd", "GPU-hour price", False)
        return cls(
            model=text("model"),
            name=text("name"),
            alias=text("alias"),
            weight=1 if weight is None else int(weight),
            max_concurrency=None if concurrency is None else int(concurrency),
            timeouts=timeouts,
            api_version=text("api_version"),
            gpu_hour_usd=gpu_hour_usd,
            metrics_url=text("metrics_url"),
        )


@dataclass(frozen=True, slots=True)
class HealthView:
    status: str  # available | loading | error | unknown
    checked_at: datetime | None = None
    latency_ms: float | None = None
    models: tuple[str, ...] = ()
    last_error: str = ""
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeploymentView:
    id: int
    name: str
    provider_id: int
    provider_name: str
    provider_kind: str
    provider_enabled: bool
    model: str
    enabled: bool
    max_concurrency: int | None
    timeouts: dict[str, float]
    api_version: str
    aliases: tuple[tuple[str, int], ...]  # (alias, weight)
    health: HealthView
    discovered: dict[str, Any]
    gpu_hour_usd: float | None = None
    metrics_url: str = ""


@dataclass(frozen=True, slots=True)
class DeploymentImpact:
    """Aliases routed to a deployment, and those it is the only (weighted) deployment of."""

    aliases: list[str]
    orphaned_aliases: list[str]


def clean_metrics_url(value: str, api_base: str) -> str:
    """Empty (scrape `<api_base root>/metrics`), "off", or an http(s) URL on the provider's own host.

    Another host is refused: the engine scraper fetches whatever is saved here, so a free URL would let an
    editor make the console call any address (an SSRF side door around the provider URL checks)."""
    raw = value.strip()
    if not raw:
        return ""
    if raw.lower() == "off":
        return "off"
    if len(raw) > MAX_METRICS_URL:
        raise ConfigError(f"metrics URL must be at most {MAX_METRICS_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in raw):
        raise ConfigError("metrics URL must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        _ = parts.port  # reading it checks the port is a number in range
    except ValueError:
        raise ConfigError(f"metrics URL is not a valid URL: {raw[:80]!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "metrics URL must be an http:// or https:// URL with a host "
            "(leave it empty for <provider base URL>/metrics, or write off)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError("metrics URL must not carry a user name or password")
    host = urlsplit(api_base).hostname or ""
    if parts.hostname != host:
        raise ConfigError(
            f"metrics URL must be on the provider's host {host!r}, not {parts.hostname[:80]!r}: "
            "the console only scrapes the server it already calls"
        )
    return raw


def _validate(fields: DeploymentFields, provider: Provider) -> DeploymentFields:
    kind = provider.kind
    model = clean_name(fields.model, "upstream model", MAX_MODEL)
    name = clean_name(fields.name, "deployment name") if fields.name.strip() else ""
    alias = clean_name(fields.alias, "alias", MAX_MODEL) if fields.alias.strip() else ""
    if not 0 <= fields.weight <= MAX_WEIGHT:
        raise ConfigError(f"weight must be between 0 and {MAX_WEIGHT}")
    if fields.max_concurrency is not None and not 1 <= fields.max_concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"max concurrency must be between 1 and {MAX_CONCURRENCY} (empty: no limit)")
    for key, value in fields.timeouts.items():
        if key not in TIMEOUT_FIELDS:
            raise ConfigError(f"unknown timeout {key!r}; use {', '.join(TIMEOUT_FIELDS)}")
        if not 0 < value <= MAX_TIMEOUT_S:
            raise ConfigError(f"timeout {key} must be more than 0 and at most {MAX_TIMEOUT_S:.0f} seconds")
    version = fields.api_version.strip()
    if version and kind != "azure":
        raise ConfigError("a deployment's API version applies to Azure providers only; leave it empty")
    version = clean_version(version, kind)
    price = fields.gpu_hour_usd
    if price is not None and not (math.isfinite(price) and 0 <= price <= MAX_GPU_HOUR_USD):
        raise ConfigError(f"GPU-hour price must be between 0 and {MAX_GPU_HOUR_USD:,.0f} USD (empty: not priced)")
    metrics = clean_metrics_url(fields.metrics_url, provider.api_base)
    limits = (fields.weight, fields.max_concurrency, dict(fields.timeouts))
    return DeploymentFields(model, name, alias, *limits, version, price, metrics)


def gpu_hour_price(settings: Mapping[str, Any] | None) -> float | None:
    """A deployment's stored GPU-hour price, or None when unset or unreadable (a hand-edited row)."""
    raw = (settings or {}).get("gpu_hour_usd")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
        return None
    return float(raw)


def _provider(s: Session, provider_id: int) -> Provider:
    row = s.get(Provider, provider_id)
    if row is None:
        raise ConfigError(f"no provider with id {provider_id} (it may have been deleted)")
    return row


def _get(s: Session, deployment_id: int) -> Deployment:
    row = s.get(Deployment, deployment_id)
    if row is None:
        raise ConfigError(f"no deployment with id {deployment_id} (it may have been deleted)")
    return row


def _check_unique(s: Session, dep_id: int | None, provider: Provider, fields: DeploymentFields) -> None:
    if fields.name:
        query = select(Deployment.id).where(func.lower(Deployment.name) == fields.name.lower())
        if any(i != dep_id for i in s.exec(query)):
            raise ConfigError(f"a deployment named {fields.name!r} already exists")
    same = s.exec(
        select(Deployment).where(Deployment.provider_id == provider.id, Deployment.model == fields.model)
    ).first()
    if same is not None and same.id != dep_id:
        raise ConfigError(f"provider {provider.name!r} already has a deployment of {fields.model!r}: {same.name!r}")


FORM_SETTINGS = ("timeouts", "api_version", "gpu_hour_usd", "metrics_url")


def _apply(dep: Deployment, fields: DeploymentFields) -> None:
    settings = {k: v for k, v in (dep.settings or {}).items() if k not in FORM_SETTINGS}
    if fields.timeouts:
        settings["timeouts"] = dict(fields.timeouts)
    if fields.api_version:
        settings["api_version"] = fields.api_version
    if fields.gpu_hour_usd is not None:
        settings["gpu_hour_usd"] = float(fields.gpu_hour_usd)
    if fields.metrics_url:
        settings["metrics_url"] = fields.metrics_url
    dep.model, dep.max_concurrency, dep.settings = fields.model, fields.max_concurrency, settings


def _audit_fields(dep: Deployment, alias: str = "", weight: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": dep.name,
        "provider_id": dep.provider_id,
        "model": dep.model,
        "enabled": dep.enabled,
        "max_concurrency": dep.max_concurrency,
        "settings": dict(dep.settings or {}),
    }
    if alias:
        out.update(alias=alias, weight=weight)
    return out


def create_deployment(
    engine: Engine, provider_id: int, fields: DeploymentFields, *, enabled: bool = True, actor: str
) -> DeploymentView:
    """Add a deployment of `fields.model` under a provider, and route `fields.alias` to it when given."""
    with session(engine) as s:
        provider = _provider(s, provider_id)
        fields = _validate(fields, provider)
        _check_unique(s, None, provider, fields)
        name = fields.name or unique_deployment_name(
            s, deployment_base_name(fields.model, provider.api_base, provider.kind)
        )
        dep = Deployment(name=name, provider_id=provider_id, model=fields.model, enabled=enabled)
        _apply(dep, fields)
        s.add(dep)
        s.flush()
        assert dep.id is not None
        if fields.alias:
            route_alias(s, fields.alias, dep.id, fields.weight)
        record(
            s,
            actor=actor,
            action="deployment.create",
            target_type="deployment",
            target_id=str(dep.id),
            after=_audit_fields(dep, fields.alias, fields.weight),
        )
        s.commit()
        dep_id = dep.id
    return get_deployment(engine, dep_id)


def update_deployment(engine: Engine, deployment_id: int, fields: DeploymentFields, *, actor: str) -> DeploymentView:
    """Save the edit form (the whole form: blanks clear limits and timeouts); a given alias is routed too."""
    with session(engine) as s:
        dep = _get(s, deployment_id)
        provider = _provider(s, dep.provider_id)
        fields = _validate(fields, provider)
        _check_unique(s, deployment_id, provider, fields)
        before = _audit_fields(dep)
        dep.name = fields.name or dep.name
        _apply(dep, fields)
        s.add(dep)
        if fields.alias:
            route_alias(s, fields.alias, deployment_id, fields.weight)
        record(
            s,
            actor=actor,
            action="deployment.update",
            target_type="deployment",
            target_id=str(deployment_id),
            before=before,
            after=_audit_fields(dep, fields.alias, fields.weight),
        )
        s.commit()
    return get_deployment(engine, deployment_id)


def set_deployment_enabled(engine: Engine, deployment_id: int, enabled: bool, *, actor: str) -> None:
    with session(engine) as s:
        switch_enabled(s, _get(s, deployment_id), "deployment", enabled, actor=actor)


def _impact(s: Session, deployment_id: int) -> DeploymentImpact:
    return DeploymentImpact(*routed_aliases(s, [deployment_id]))


def deletion_impact(engine: Engine, deployment_id: int) -> DeploymentImpact:
    """For the confirmation dialog: which aliases lose this deployment, and which are left with none."""
    with session(engine) as s:
        _get(s, deployment_id)
        return _impact(s, deployment_id)


def delete_deployment(engine: Engine, deployment_id: int, *, actor: str) -> DeploymentImpact:
    """Delete a deployment and its routes (aliases left without one answer "unknown model" until rerouted)."""
    with session(engine) as s:
        dep = _get(s, deployment_id)
        impact = _impact(s, deployment_id)
        before = {**_audit_fields(dep), "aliases": impact.aliases}
        delete_deployment_rows(s, [deployment_id])
        record(
            s,
            actor=actor,
            action="deployment.delete",
            target_type="deployment",
            target_id=str(deployment_id),
            before=before,
        )
        s.commit()
        return impact


def _health(row: DeploymentHealth | None) -> HealthView:
    if row is None:
        return HealthView("unknown")
    return HealthView(
        row.status, row.checked_at, row.latency_ms, tuple(row.models or ()), row.last_error or "", row.last_error_at
    )


def _views(s: Session, where: Any = None) -> list[DeploymentView]:
    query = select(Deployment).order_by(func.lower(Deployment.name))
    deps = list(s.exec(query.where(where) if where is not None else query))
    providers = {p.id: p for p in s.exec(select(Provider))}
    health = {h.deployment_id: h for h in s.exec(select(DeploymentHealth))}
    aliases = {a.id: a.alias for a in s.exec(select(ModelAlias))}
    routed: dict[int, list[tuple[str, int]]] = {}
    for link in s.exec(select(AliasDeployment)):
        routed.setdefault(link.deployment_id, []).append((aliases.get(link.alias_id, "?"), link.weight))
    out = []
    for d in deps:
        assert d.id is not None
        p = providers[d.provider_id]
        settings = d.settings or {}
        timeouts = settings.get("timeouts")
        out.append(
            DeploymentView(
                id=d.id,
                name=d.name,
                provider_id=d.provider_id,
                provider_name=p.name,
                provider_kind=p.kind,
                provider_enabled=p.enabled,
                model=d.model,
                enabled=d.enabled,
                max_concurrency=d.max_concurrency,
                timeouts={str(k): float(v) for k, v in timeouts.items()} if isinstance(timeouts, dict) else {},
                api_version=str(settings.get("api_version") or ""),
                aliases=tuple(sorted(routed.get(d.id, []))),
                health=_health(health.get(d.id)),
                discovered=dict(d.discovered or {}),
                gpu_hour_usd=gpu_hour_price(settings),
                metrics_url=str(settings.get("metrics_url") or ""),
            )
        )
    return out


def list_deployments(engine: Engine) -> list[DeploymentView]:
    """Every deployment by name, with its provider, aliases and last health check."""
    with session(engine) as s:
        return _views(s)


def get_deployment(engine: Engine, deployment_id: int) -> DeploymentView:
    with session(engine) as s:
        found = _views(s, col(Deployment.id) == deployment_id)
    if not found:
        raise ConfigError(f"no deployment with id {deployment_id} (it may have been deleted)")
    return found[0]
