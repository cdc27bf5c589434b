"""The route table: alias -> deployments with a strategy and a retry/fallback policy, loaded from the DB
as an immutable snapshot (the balancer keeps the live per-deployment state beside it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, NetworkAllow, Provider
from llm_console.gateway.pricing import DEFAULT_PRICES, Price

STRATEGIES = ("weighted", "least_busy", "lowest_latency", "lowest_cost", "engine_aware")


@dataclass(frozen=True, slots=True)
class Target:
    """Everything needed to call one deployment; `api_key` lives only in memory and never in a repr."""

    deployment_id: int
    deployment: str
    model: str
    api_base: str
    kind: str
    api_key: str | None = field(repr=False)
    price: Price | None
    weight: int = 1
    max_concurrency: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # provider settings + deployment settings
    host: str = ""

    @property
    def unit_price(self) -> float:
        """Comparable price for the lowest-cost strategy: input + output USD per million tokens."""
        return (self.price.input_per_mtok + self.price.output_per_mtok) if self.price else 0.0


@dataclass(frozen=True, slots=True)
class Policy:
    """Retries, backoff and fallbacks for one alias; `None` fields take the gateway-wide settings."""

    retries: int | None = None
    backoff_ms: float | None = None
    retry_after_cap_s: float | None = None
    fallbacks: tuple[str, ...] = ()
    timeouts: dict[str, Any] = field(default_factory=dict)
    # What the engine-aware strategy does when no deployment of the alias has a fresh engine sample.
    engine_fallback: str = "least_busy"

    @classmethod
    def from_settings(cls, raw: object) -> Policy:
        if not isinstance(raw, dict):
            return cls()

        def num(name: str) -> float | None:
            value = raw.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value) if math.isfinite(value) and value >= 0 else None

        retries = num("retries")
        fallbacks = raw.get("fallbacks") or []
        timeouts = raw.get("timeouts")
        engine_fallback = raw.get("engine_fallback")
        if engine_fallback not in STRATEGIES or engine_fallback == "engine_aware":
            engine_fallback = "least_busy"
        return cls(
            retries=int(retries) if retries is not None else None,
            backoff_ms=num("backoff_ms"),
            retry_after_cap_s=num("retry_after_cap_s"),
            fallbacks=tuple(str(f) for f in fallbacks if isinstance(f, str)) if isinstance(fallbacks, list) else (),
            timeouts=timeouts if isinstance(timeouts, dict) else {},
            engine_fallback=str(engine_fallback),
        )


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    targets: tuple[Target, ...]
    strategy: str = "weighted"
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True, slots=True)
class RouteTable:
    routes: dict[str, Route]
    allowlist: tuple[str, ...] = ()  # SSRF allow-list entries kept in the DB

    def get(self, alias: str) -> Route | None:
        return self.routes.get(alias)

    def aliases(self) -> list[str]:
        return sorted(self.routes)

    def targets(self) -> dict[int, Target]:
        """Every deployment in the table, once."""
        return {t.deployment_id: t for r in self.routes.values() for t in r.targets}


def load_route_table(engine: Engine, box: SecretBox) -> RouteTable:
    """Read aliases, enabled deployments of enabled providers, prices and the allow-list in one go."""
    with session(engine) as s:
        prices = {
            p.model: Price(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
            for p in s.exec(select(ModelPrice))
        }
        providers = {p.id: p for p in s.exec(select(Provider)) if p.id is not None}
        deployments = {d.id: d for d in s.exec(select(Deployment).where(Deployment.enabled == True))}  # noqa: E712
        aliases = {a.id: a for a in s.exec(select(ModelAlias))}
        links = list(s.exec(select(AliasDeployment)))
        allowlist = tuple(row.entry for row in s.exec(select(NetworkAllow)))
    secrets: dict[int, str | None] = {
        pid: box.decrypt(p.api_key_encrypted) if p.api_key_encrypted else None for pid, p in providers.items()
    }
    grouped: dict[int, list[Target]] = {}
    for link in links:
        dep = deployments.get(link.deployment_id)
        alias = aliases.get(link.alias_id)
        if dep is None or alias is None or link.weight <= 0 or dep.id is None:
            continue
        prov = providers[dep.provider_id]
        if not prov.enabled:  # a disabled provider takes all its deployments out of the table
            continue
        target = Target(
            deployment_id=dep.id,
            deployment=dep.name,
            model=dep.model,
            api_base=prov.api_base,
            kind=prov.kind,
            api_key=secrets[dep.provider_id],
            price=prices.get(dep.model) or prices.get(alias.alias) or DEFAULT_PRICES.get(dep.model),
            weight=link.weight,
            max_concurrency=dep.max_concurrency,
            options={**(prov.settings or {}), **(dep.settings or {})},
            host=urlsplit(prov.api_base).hostname or "",
        )
        grouped.setdefault(link.alias_id, []).append(target)
    routes: dict[str, Route] = {}
    for alias_id, targets in grouped.items():
        row = aliases[alias_id]
        strategy = row.strategy if row.strategy in STRATEGIES else "weighted"
        targets.sort(key=lambda t: t.deployment_id)
        routes[row.alias] = Route(row.alias, tuple(targets), strategy, Policy.from_settings(row.settings))
    return RouteTable(routes, allowlist)
