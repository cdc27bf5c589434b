"""Where the next N requests for an alias would go under its rule and the gateway's state right now.

The gateway's own ordering (`Balancer.order`) runs against a detached snapshot of the live balancer with a
seeded RNG, so the same state and seed give the same answer, and nothing in the live gateway moves (no
request is counted in flight, no circuit changes). Each simulated request sees the state as it is now: the
preview does not guess when requests finish. Only first attempts are shown; retries go elsewhere only
after a failure the preview cannot know about.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, Provider
from llm_console.gateway.balancer import CLOSED, HALF_OPEN, OPEN, Balancer, NoCapacity
from llm_console.gateway.pricing import DEFAULT_PRICES, Price
from llm_console.gateway.routing import STRATEGIES, Policy, Route, Target
from llm_console.services.deployments import ConfigError
from llm_console.services.routing_rules import Link, RuleChange

DEFAULT_N = 100


@dataclass(frozen=True, slots=True)
class Plan:
    """What the preview routes: the alias's links (drained and disabled ones too, to explain them), the route
    the gateway would build from them (enabled links with weight > 0) and its fallbacks' routes in order."""

    alias: str
    strategy: str
    links: tuple[Link, ...]
    route: Route | None
    fallbacks: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewRow:
    alias: str
    deployment: str
    count: int
    share: float
    note: str
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class Preview:
    alias: str
    strategy: str
    n: int
    seed: int
    rows: tuple[PreviewRow, ...]
    to_fallbacks: int = 0
    refused: int = 0
    refusal: str = ""

    def count(self, deployment: str, alias: str | None = None) -> int:
        return sum(r.count for r in self.rows if r.deployment == deployment and alias in (None, r.alias))

    def summary(self) -> str:
        parts = [f"{r.count} to {r.deployment}" for r in self.rows if r.count and not r.fallback]
        if self.to_fallbacks:
            parts.append(f"{self.to_fallbacks} to fallbacks")
        if self.refused:
            parts.append(f"{self.refused} refused")
        return f"Next {self.n} requests: " + ("; ".join(parts) or "none routed")


def load_plan(engine: Engine, alias: str, change: RuleChange | None = None) -> Plan:
    """The stored rule of `alias`, or `change` (an unsaved draft) applied to it, ready to preview."""
    with session(engine) as s:
        aliases = {a.alias: a for a in s.exec(select(ModelAlias))}
        row = aliases.get(alias)
        if row is None or row.id is None:
            raise ConfigError(f"There is no alias {alias[:80]!r} (it may have just been deleted).")
        stored: dict[int, dict[int, int]] = {}
        for link in s.exec(select(AliasDeployment)):
            stored.setdefault(link.alias_id, {})[link.deployment_id] = link.weight
        deployments = {d.id: d for d in s.exec(select(Deployment)) if d.id is not None}
        providers = {p.id: p for p in s.exec(select(Provider)) if p.id is not None}
        prices = {
            p.model: Price(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
            for p in s.exec(select(ModelPrice))
        }

    def targets(name: str, weights: dict[int, int]) -> tuple[Target, ...]:
        found = []
        for dep_id, weight in sorted(weights.items()):
            dep = deployments.get(dep_id)
            prov = providers[dep.provider_id] if dep is not None else None
            if dep is None or prov is None or not (dep.enabled and prov.enabled) or weight <= 0:
                continue
            price = prices.get(dep.model) or prices.get(name) or DEFAULT_PRICES.get(dep.model)
            host = urlsplit(prov.api_base).hostname or ""
            found.append(
                Target(
                    dep_id,
                    dep.name,
                    dep.model,
                    prov.api_base,
                    prov.kind,
                    None,
                    price,
                    weight,
                    dep.max_concurrency,
                    {},
                    host,
                )
            )
        return tuple(found)

    def route(name: str, strategy: str, weights: dict[int, int], policy: Policy | None = None) -> Route | None:
        found = targets(name, weights)
        return Route(name, found, strategy, policy or Policy()) if found else None

    policy = Policy.from_settings(row.settings)
    strategy = change.strategy if change else row.strategy
    strategy = strategy if strategy in STRATEGIES else "weighted"
    weights = dict(change.weights) if change else stored.get(row.id, {})
    links = []
    for dep_id, weight in sorted(weights.items()):
        dep = deployments.get(dep_id)
        if dep is not None:
            prov = providers[dep.provider_id]
            host, enabled = urlsplit(prov.api_base).hostname or "", dep.enabled and prov.enabled
            links.append(Link(dep_id, dep.name, dep.model, host, weight, enabled, dep.max_concurrency))
    fallbacks: list[Route] = []
    for name in change.fallbacks if change else policy.fallbacks:
        fb = aliases.get(name)
        if fb is not None and fb.id is not None and name != alias:
            fb_strategy = fb.strategy if fb.strategy in STRATEGIES else "weighted"
            fb_route = route(name, fb_strategy, stored.get(fb.id, {}), Policy.from_settings(fb.settings))
            if fb_route is not None and all(r.alias != name for r in fallbacks):
                fallbacks.append(fb_route)
    # A draft brings its own engine fallback (none: least-busy); the stored rule its stored one.
    engine_fallback = (change.engine_fallback or "least_busy") if change else policy.engine_fallback
    main = route(alias, strategy, weights, Policy(engine_fallback=engine_fallback))
    return Plan(alias, strategy, tuple(links), main, tuple(fallbacks))


def _note(link: Link, snap: Balancer, plan: Plan, wall: float) -> str:
    """Why `link` gets what it gets, from the state right now."""
    if not link.enabled:
        return "disabled (the deployment or its provider): gets no traffic"
    if link.weight <= 0:
        return "weight 0 (drained): gets no traffic"
    st, now = snap.state(link.deployment_id), snap.clock()
    if st.circuit == OPEN and now < st.open_until:
        until = datetime.fromtimestamp(wall + st.open_until - now, UTC).strftime("%H:%M:%S UTC")
        error = f" after {st.last_error}" if st.last_error else ""
        return f"circuit open{error} until {until} (in {math.ceil(st.open_until - now)} s)"
    if st.circuit != CLOSED:
        if st.probing:
            return "circuit half-open: waiting for its probe request's result"
        return "circuit cool-down over: the next request is its probe, then it waits for the result"
    if link.max_concurrency is not None and st.inflight >= link.max_concurrency:
        return f"at its concurrency cap ({st.inflight} of {link.max_concurrency} in flight)"
    target = (
        next((t for t in plan.route.targets if t.deployment_id == link.deployment_id), None) if plan.route else None
    )
    cap = f" of {link.max_concurrency}" if link.max_concurrency else ""
    if plan.strategy == "least_busy":
        return f"{st.inflight}{cap} in flight"
    if plan.strategy == "lowest_latency":
        ewma = st.ewma_ttfb_ms
        return f"time to first byte ≈ {ewma:.0f} ms" if ewma is not None else "latency not measured yet: tried first"
    if plan.strategy == "lowest_cost":
        price = target.unit_price if target else 0.0
        return f"${price:g} per million tokens (input + output)" if price else "no price: counts as free"
    if plan.strategy == "engine_aware":
        sample = snap.signals.fresh(link.deployment_id)
        if sample is None:
            fallback = plan.route.policy.engine_fallback if plan.route else "least_busy"
            return (
                f"no fresh engine sample: placed by the fallback strategy {fallback.replace('_', '-')} "
                f"({st.inflight}{cap} in flight)"
            )
        return f"engine queue {sample.waiting:g}, running {sample.running:g}, KV cache {sample.kv_cache_usage:.0%}"
    total = sum(t.weight for t in plan.route.targets) if plan.route else 0
    return f"weight {link.weight} of {total}"


def _refusal(last: Exception | None, plan: Plan) -> str:
    if plan.route is None:
        return (
            "No deployment of this alias takes traffic (none linked, all drained or disabled): the gateway "
            "answers 404 model_not_found and does not try fallbacks."
        )
    if isinstance(last, NoCapacity) and last.reason == "busy":
        return "Every deployment is at its concurrency cap: 429 deployment_busy (Retry-After 1 s)."
    retry = f", Retry-After {last.retry_after_s:g} s" if isinstance(last, NoCapacity) else ""
    return f"No deployment is usable (circuits open): 503 no_healthy_deployment{retry}."


def preview(
    plan: Plan, balancer: Balancer, *, n: int = DEFAULT_N, seed: int = 0, wall_now: float | None = None
) -> Preview:
    """Route `n` requests through a snapshot of `balancer` (never the balancer itself) with RNG `seed`."""
    snap = balancer.snapshot(random.Random(seed))
    now, wall = snap.clock(), time.time() if wall_now is None else wall_now
    notes = {link.deployment_id: _note(link, snap, plan, wall) for link in plan.links}
    counts: Counter[tuple[str, int]] = Counter()
    refused, last = 0, None
    chain = [plan.route, *plan.fallbacks] if plan.route is not None else []
    for _ in range(n):
        for route in chain:
            try:
                ordered = snap.order(route)
            except NoCapacity as exc:
                last = exc
                continue
            if not ordered:
                continue
            target = ordered[0]
            st = snap.state(target.deployment_id)
            if st.circuit != CLOSED and not st.probing and now >= st.open_until:
                st.circuit, st.probing = HALF_OPEN, True  # as `acquire` does: this request is the probe
            counts[(route.alias, target.deployment_id)] += 1
            break
        else:
            refused += 1
    rows = [
        PreviewRow(plan.alias, x.deployment, counts[(plan.alias, x.deployment_id)], 0.0, notes[x.deployment_id])
        for x in plan.links
    ]
    for route in plan.fallbacks:
        for t in route.targets:
            if counts[(route.alias, t.deployment_id)]:
                note = f"fallback {route.alias[:80]!r}: every deployment of this alias is unusable"
                rows.append(
                    PreviewRow(route.alias, t.deployment, counts[(route.alias, t.deployment_id)], 0.0, note, True)
                )
    rows = [PreviewRow(r.alias, r.deployment, r.count, r.count / n if n else 0.0, r.note, r.fallback) for r in rows]
    return Preview(
        plan.alias,
        plan.strategy,
        n,
        seed,
        tuple(rows),
        to_fallbacks=sum(r.count for r in rows if r.fallback),
        refused=refused,
        refusal=_refusal(last, plan) if refused else "",
    )


def preview_rows(p: Preview) -> list[dict[str, str]]:
    """The preview as display rows: one bar per deployment, count out of N, and why."""
    return [
        {
            "alias": r.alias,
            "deployment": r.deployment,
            "count": f"{r.count} of {p.n}",
            "share": f"{r.share:.0%}",
            "note": r.note,
            "kind": "fallback" if r.fallback else "primary",
        }
        for r in p.rows
    ]
