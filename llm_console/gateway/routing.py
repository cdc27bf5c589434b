"""The route table: alias -> weighted deployments, loaded from the DB as an immutable snapshot."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, Provider
from llm_console.gateway.pricing import DEFAULT_PRICES, Price


@dataclass(frozen=True, slots=True)
class Target:
    """Everything needed to call one deployment; `api_key` lives only in memory."""

    deployment_id: int
    deployment: str
    model: str
    api_base: str
    kind: str
    api_key: str | None = field(repr=False)
    price: Price | None


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    targets: tuple[Target, ...]
    weights: tuple[int, ...]

    def pick(self, rng: random.Random) -> Target:
        if len(self.targets) == 1:
            return self.targets[0]
        return rng.choices(self.targets, weights=self.weights, k=1)[0]


@dataclass(frozen=True, slots=True)
class RouteTable:
    routes: dict[str, Route]

    def get(self, alias: str) -> Route | None:
        return self.routes.get(alias)

    def aliases(self) -> list[str]:
        return sorted(self.routes)


def load_route_table(engine: Engine, box: SecretBox) -> RouteTable:
    """Read aliases, enabled deployments, providers and prices in one go."""
    with session(engine) as s:
        prices = {
            p.model: Price(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
            for p in s.exec(select(ModelPrice))
        }
        providers = {p.id: p for p in s.exec(select(Provider)) if p.id is not None}
        deployments = {d.id: d for d in s.exec(select(Deployment).where(Deployment.enabled == True))}  # noqa: E712
        aliases = {a.id: a.alias for a in s.exec(select(ModelAlias))}
        links = list(s.exec(select(AliasDeployment)))
    secrets: dict[int, str | None] = {
        pid: box.decrypt(p.api_key_encrypted) if p.api_key_encrypted else None for pid, p in providers.items()
    }
    grouped: dict[str, list[tuple[Target, int]]] = {}
    for link in links:
        dep = deployments.get(link.deployment_id)
        alias = aliases.get(link.alias_id)
        if dep is None or alias is None or link.weight <= 0 or dep.id is None:
            continue
        prov = providers[dep.provider_id]
        target = Target(
            deployment_id=dep.id,
            deployment=dep.name,
            model=dep.model,
            api_base=prov.api_base,
            kind=prov.kind,
            api_key=secrets[dep.provider_id],
            price=prices.get(dep.model) or prices.get(alias) or DEFAULT_PRICES.get(dep.model),
        )
        grouped.setdefault(alias, []).append((target, link.weight))
    return RouteTable(
        {
            alias: Route(alias, tuple(t for t, _ in pairs), tuple(w for _, w in pairs))
            for alias, pairs in grouped.items()
        }
    )
