"""Routing rules per alias: its deployments and weights, strategy, fallbacks, retries and timeouts.

Every change is validated first (readable `ConfigError`s) and written with one audit event holding the rule
before and after. Running gateways pick changes up within `LLMC_ROUTE_REFRESH_INTERVAL_S`.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from llm_console.gateway.routing import STRATEGIES, Policy
from llm_console.services.audit import record
from llm_console.services.deployments import TIMEOUT_FIELDS, ConfigError
from llm_console.settings import Settings

MAX_WEIGHT = 1000
MAX_BACKOFF_MS = 60_000.0
MAX_RETRY_AFTER_CAP_S = 3600.0
MAX_TIMEOUT_S = 86_400.0
POLICY_KEYS = ("fallbacks", "retries", "backoff_ms", "retry_after_cap_s", "timeouts", "engine_fallback")
# What engine-aware routing may fall back to when no deployment has a fresh engine sample (not itself).
ENGINE_FALLBACKS = tuple(s for s in STRATEGIES if s != "engine_aware")


@dataclass(frozen=True, slots=True)
class Link:
    """One deployment of an alias, with what the routing page shows about it."""

    deployment_id: int
    deployment: str
    model: str
    host: str
    weight: int
    enabled: bool  # the deployment and its provider are both enabled
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """An alias's routing rule as stored; `None` policy fields inherit the gateway-wide settings."""

    alias: str
    strategy: str
    links: tuple[Link, ...]
    fallbacks: tuple[str, ...] = ()
    retries: int | None = None
    backoff_ms: float | None = None
    retry_after_cap_s: float | None = None
    timeouts: dict[str, float] = field(default_factory=dict)
    engine_fallback: str | None = None  # as stored; None: engine-aware routing falls back to least_busy


@dataclass(frozen=True, slots=True)
class RuleChange:
    """The whole rule an operator saves: `weights` maps deployment id to weight for every linked deployment
    (a deployment left out is unlinked; weight 0 keeps it linked but drained). `engine_fallback` None removes
    the stored one (engine-aware routing then falls back to least_busy)."""

    strategy: str
    weights: dict[int, int]
    fallbacks: tuple[str, ...] = ()
    retries: int | None = None
    backoff_ms: float | None = None
    retry_after_cap_s: float | None = None
    timeouts: dict[str, float] = field(default_factory=dict)
    engine_fallback: str | None = None


def _short(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def clean_alias(name: str) -> str:
    """The alias as stored: trimmed, 1-300 characters, no control or invisible characters."""
    name = name.strip()
    if not 1 <= len(name) <= 300:
        raise ConfigError("An alias must be 1 to 300 characters long.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise ConfigError("An alias cannot contain control or invisible characters.")
    return name


def gateway_defaults(settings: Settings) -> dict[str, float]:
    """What an alias inherits when a policy field is left empty."""
    return {
        "retries": settings.retry_attempts,
        "backoff_ms": settings.retry_backoff_ms,
        "retry_after_cap_s": settings.retry_after_cap_s,
        "connect_s": settings.upstream_connect_timeout_s,
        "first_byte_s": settings.upstream_first_byte_timeout_s,
        "idle_s": settings.upstream_idle_timeout_s,
        "total_s": settings.upstream_timeout_s,
    }


def check_fallbacks(alias: str, fallbacks: Sequence[str], graph: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Refuse unknown, repeated and self fallbacks, and loops through `alias` (a → b → a).

    `graph` holds every alias's stored fallbacks; `alias`'s own entry is replaced by `fallbacks`.
    """
    seen: list[str] = []
    for name in fallbacks:
        if name == alias:
            raise ConfigError(f"{_short(alias)} cannot fall back to itself.")
        if name not in graph:
            raise ConfigError(f"There is no alias {_short(name)} to fall back to.")
        if name in seen:
            raise ConfigError(f"{_short(name)} is listed twice as a fallback.")
        seen.append(name)
    edges = {**graph, alias: seen}
    stack: list[tuple[str, list[str]]] = [(alias, [alias])]
    visited: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == alias:
                loop = " → ".join(_short(n) for n in [*path, alias])
                raise ConfigError(f"These fallbacks would loop: {loop}. Remove one link of the loop.")
            if nxt not in visited:
                visited.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return tuple(seen)


def _number(value: float | None, name: str, upper: float, *, positive: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number.")
    if value < 0 or (positive and value == 0) or value > upper:
        low = "greater than 0" if positive else "at least 0"
        raise ConfigError(f"{name} must be {low} and at most {upper:g}.")
    return float(value)


def validate_change(change: RuleChange) -> None:
    """Everything about a rule that can be checked without the database."""
    if change.strategy not in STRATEGIES:
        raise ConfigError(f"Strategy must be one of: {', '.join(STRATEGIES)}.")
    if change.engine_fallback is not None and change.engine_fallback not in ENGINE_FALLBACKS:
        raise ConfigError(f"The engine-aware fallback must be one of: {', '.join(ENGINE_FALLBACKS)}.")
    if change.retries is not None and (isinstance(change.retries, bool) or not 0 <= change.retries <= 10):
        raise ConfigError("Retries must be a whole number from 0 to 10.")
    _number(change.backoff_ms, "Backoff (ms)", MAX_BACKOFF_MS)
    _number(change.retry_after_cap_s, "Retry-After cap (s)", MAX_RETRY_AFTER_CAP_S)
    for name, value in change.timeouts.items():
        if name not in TIMEOUT_FIELDS:
            raise ConfigError(f"Unknown timeout {name!r}: use {', '.join(TIMEOUT_FIELDS)}.")
        _number(value, f"Timeout {name}", MAX_TIMEOUT_S, positive=True)
    for dep_id, weight in change.weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ConfigError(f"Weights must be whole numbers from 0 to {MAX_WEIGHT} (deployment {dep_id}).")


def parse_number(text: str, label: str, *, whole: bool = False) -> float | None:
    """A form field: empty means "inherit"; anything else must be a number (readable error otherwise)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{label}: {text[:40]!r} is not a number.") from None
    if whole and (not math.isfinite(value) or value != int(value)):
        raise ConfigError(f"{label} must be a whole number.")
    return value


def parse_form(
    strategy: str, weights: Mapping[int, str], fallbacks: Sequence[str], fields: Mapping[str, str]
) -> RuleChange:
    """The routing page's draft (text fields; empty inherits) as a validated RuleChange.

    `fields["engine_fallback"]` is kept whatever the strategy, so switching away from engine-aware and back
    does not lose it; it only matters while the strategy is engine-aware."""
    parsed_weights = {dep_id: int(parse_number(text, "Weight", whole=True) or 0) for dep_id, text in weights.items()}
    retries = parse_number(fields.get("retries", ""), "Retries", whole=True)
    timeouts = {name: parse_number(fields.get(name, ""), f"Timeout {name}") for name in TIMEOUT_FIELDS}
    change = RuleChange(
        strategy=strategy,
        weights=parsed_weights,
        fallbacks=tuple(fallbacks),
        retries=None if retries is None else int(retries),
        backoff_ms=parse_number(fields.get("backoff_ms", ""), "Backoff (ms)"),
        retry_after_cap_s=parse_number(fields.get("retry_after_cap_s", ""), "Retry-After cap (s)"),
        timeouts={k: v for k, v in timeouts.items() if v is not None},
        engine_fallback=fields.get("engine_fallback", "").strip() or None,
    )
    validate_change(change)
    return change


def _alias_row(s: Session, alias: str) -> ModelAlias:
    row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first()
    if row is None or row.id is None:
        raise ConfigError(f"There is no alias {_short(alias)} (it may have just been deleted).")
    return row


def _link(dep: Deployment, prov: Provider, weight: int) -> Link:
    host = urlsplit(prov.api_base).hostname or ""
    return Link(dep.id or 0, dep.name, dep.model, host, weight, dep.enabled and prov.enabled, dep.max_concurrency)


def _rules(s: Session, rows: Sequence[ModelAlias]) -> list[Rule]:
    """`rows` as rules, with every link read in one query."""
    ids = [r.id for r in rows if r.id is not None]
    found = s.exec(
        select(AliasDeployment, Deployment, Provider)
        .join(Deployment, Deployment.id == AliasDeployment.deployment_id)  # type: ignore[arg-type]
        .join(Provider, Provider.id == Deployment.provider_id)  # type: ignore[arg-type]
        .where(AliasDeployment.alias_id.in_(ids))  # type: ignore[attr-defined]
    ).all()
    links: dict[int, list[Link]] = {}
    for link, dep, prov in found:
        links.setdefault(link.alias_id, []).append(_link(dep, prov, link.weight))
    rules = []
    for row in rows:
        policy = Policy.from_settings(row.settings)
        timeouts = {k: float(v) for k, v in policy.timeouts.items() if k in TIMEOUT_FIELDS and _is_num(v)}
        rules.append(
            Rule(
                row.alias,
                row.strategy if row.strategy in STRATEGIES else "weighted",
                tuple(sorted(links.get(row.id or 0, []), key=lambda x: x.deployment_id)),
                policy.fallbacks,
                policy.retries,
                policy.backoff_ms,
                policy.retry_after_cap_s,
                timeouts,
                stored_engine_fallback(row.settings),
            )
        )
    return rules


def stored_engine_fallback(settings: object) -> str | None:
    """The alias's own engine-aware fallback, or None when it has none (or a value no gateway would use)."""
    value = settings.get("engine_fallback") if isinstance(settings, dict) else None
    return value if value in ENGINE_FALLBACKS else None


def _rule(s: Session, row: ModelAlias) -> Rule:
    return _rules(s, [row])[0]


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def list_rules(engine: Engine) -> list[Rule]:
    """Every alias with its deployments and policy, by name."""
    with session(engine) as s:
        return _rules(s, sorted(s.exec(select(ModelAlias)), key=lambda r: r.alias))


def get_rule(engine: Engine, alias: str) -> Rule:
    with session(engine) as s:
        return _rule(s, _alias_row(s, alias))


def deployment_choices(engine: Engine) -> list[Link]:
    """Every deployment an alias could link to (weight 1 is what a new link starts with)."""
    with session(engine) as s:
        rows = s.exec(select(Deployment, Provider).join(Provider, Provider.id == Deployment.provider_id))  # type: ignore[arg-type]
        return sorted((_link(d, p, 1) for d, p in rows), key=lambda x: x.deployment.lower())


def _described(rule: Rule) -> dict[str, Any]:
    """The rule for an audit row (fixed keys, so no deployment name is mistaken for a secret field)."""
    return {
        "strategy": rule.strategy,
        "deployments": [{"id": x.deployment_id, "deployment": x.deployment, "weight": x.weight} for x in rule.links],
        "fallbacks": list(rule.fallbacks),
        "retries": rule.retries,
        "backoff_ms": rule.backoff_ms,
        "retry_after_cap_s": rule.retry_after_cap_s,
        "timeouts": dict(rule.timeouts),
        "engine_fallback": rule.engine_fallback,
    }


def create_alias(engine: Engine, *, alias: str, actor: str, deployment_id: int | None = None, weight: int = 1) -> Rule:
    """A new alias, optionally routed to one deployment straight away (audited)."""
    alias = clean_alias(alias)
    if not 0 <= weight <= MAX_WEIGHT:
        raise ConfigError(f"Weight must be from 0 to {MAX_WEIGHT}.")
    with session(engine) as s:
        if s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first() is not None:
            raise ConfigError(f"The alias {_short(alias)} already exists.")
        row = ModelAlias(alias=alias)
        s.add(row)
        s.flush()
        assert row.id is not None
        if deployment_id is not None:
            if s.get(Deployment, deployment_id) is None:
                raise ConfigError("That deployment no longer exists.")
            s.add(AliasDeployment(alias_id=row.id, deployment_id=deployment_id, weight=weight))
            s.flush()
        rule = _rule(s, row)
        record(
            s,
            actor=actor,
            action="alias.create",
            target_type="model_alias",
            target_id=alias[:100],
            after={"alias": alias, **_described(rule)},
        )
        s.commit()
        return rule


def delete_alias(engine: Engine, *, alias: str, actor: str) -> None:
    """Remove an alias and its links (audited); refused while another alias falls back to it."""
    with session(engine) as s:
        row = _alias_row(s, alias)
        users = sorted(
            other.alias
            for other in s.exec(select(ModelAlias))
            if other.id != row.id and alias in Policy.from_settings(other.settings).fallbacks
        )
        if users:
            names = ", ".join(_short(u) for u in users[:5])
            raise ConfigError(f"{_short(alias)} is a fallback of {names}; remove it there first.")
        before = {"alias": alias, **_described(_rule(s, row))}
        for link in s.exec(select(AliasDeployment).where(AliasDeployment.alias_id == row.id)):
            s.delete(link)
        s.delete(row)
        record(s, actor=actor, action="alias.delete", target_type="model_alias", target_id=alias[:100], before=before)
        s.commit()


def _apply_weights(s: Session, row: ModelAlias, weights: Mapping[int, int]) -> None:
    existing = {x.deployment_id: x for x in s.exec(select(AliasDeployment).where(AliasDeployment.alias_id == row.id))}
    for dep_id, link in existing.items():
        if dep_id not in weights:
            s.delete(link)
    for dep_id, weight in weights.items():
        found = existing.get(dep_id)
        if found is None:
            if s.get(Deployment, dep_id) is None:
                raise ConfigError(f"Deployment {dep_id} no longer exists; reload the page.")
            assert row.id is not None
            found = AliasDeployment(alias_id=row.id, deployment_id=dep_id, weight=weight)
        found.weight = weight
        s.add(found)
    s.flush()


def save_rule(engine: Engine, *, alias: str, change: RuleChange, actor: str) -> bool:
    """Replace the alias's whole rule in one transaction with one audit event; False when nothing changed."""
    validate_change(change)
    with session(engine) as s:
        row = _alias_row(s, alias)
        graph = {a.alias: Policy.from_settings(a.settings).fallbacks for a in s.exec(select(ModelAlias))}
        fallbacks = check_fallbacks(alias, change.fallbacks, graph)
        before = _rule(s, row)
        _apply_weights(s, row, change.weights)
        policy = {k: v for k, v in (row.settings or {}).items() if k not in POLICY_KEYS}
        values: dict[str, Any] = {
            "fallbacks": list(fallbacks),
            "retries": change.retries,
            "backoff_ms": change.backoff_ms,
            "retry_after_cap_s": change.retry_after_cap_s,
            "timeouts": dict(change.timeouts),
            "engine_fallback": change.engine_fallback,
        }
        policy.update({k: v for k, v in values.items() if v not in (None, [], {})})
        row.settings, row.strategy = policy, change.strategy
        s.add(row)
        s.flush()
        after = _rule(s, row)
        if _described(before) == _described(after):
            s.rollback()
            return False
        record(
            s,
            actor=actor,
            action="route.update",
            target_type="model_alias",
            target_id=alias[:100],
            before=_described(before),
            after=_described(after),
        )
        s.commit()
        return True


def _set_links(engine: Engine, alias: str, actor: str, action: str, edit: Any) -> Rule:
    """Change one link of an alias through `edit(weights)` and audit the rule before and after."""
    with session(engine) as s:
        row = _alias_row(s, alias)
        before = _rule(s, row)
        weights = {x.deployment_id: x.weight for x in before.links}
        edit(weights)
        _apply_weights(s, row, weights)
        after = _rule(s, row)
        record(
            s,
            actor=actor,
            action=action,
            target_type="model_alias",
            target_id=alias[:100],
            before=_described(before),
            after=_described(after),
        )
        s.commit()
        return after


def add_link(engine: Engine, *, alias: str, deployment_id: int, actor: str, weight: int = 1) -> Rule:
    """Route `alias` to one more deployment (an existing link just gets the new weight)."""
    validate_change(RuleChange("weighted", {deployment_id: weight}))
    return _set_links(engine, alias, actor, "route.link.add", lambda w: w.__setitem__(deployment_id, weight))


def remove_link(engine: Engine, *, alias: str, deployment_id: int, actor: str) -> Rule:
    def edit(weights: dict[int, int]) -> None:
        if weights.pop(deployment_id, None) is None:
            raise ConfigError("That deployment is not linked to this alias.")

    return _set_links(engine, alias, actor, "route.link.remove", edit)


def set_weight(engine: Engine, *, alias: str, deployment_id: int, weight: int, actor: str) -> Rule:
    """Change one link's weight; 0 drains the deployment (linked, but sent nothing)."""
    validate_change(RuleChange("weighted", {deployment_id: weight}))

    def edit(weights: dict[int, int]) -> None:
        if deployment_id not in weights:
            raise ConfigError("That deployment is not linked to this alias.")
        weights[deployment_id] = weight

    return _set_links(engine, alias, actor, "route.weight", edit)
