"""The limit tiers page's figures: how holders spread over the tiers, and which holders keep hitting their
limits (upgrade suggestions, each with the figures behind it); and the assign dialog's by-name assignment.

A suggestion is made per holder (a user, team or key on a tier) and per limit that refused their calls in
the range, when the limiter refused at least MIN_REFUSED of their calls on that limit, on at least MIN_DAYS
different UTC days or as at least MIN_SHARE of all their calls. It names the next tier by rank whose value
for that limit is higher than the holder's current effective value (their own value where set, else their
tier's); "no limit" counts as higher. Refusals are read from the usage rollups' `throttle` dimension
("<entity>:<id>|<limit>", per hour and day) and calls from `key` / `user` / `team`: never from `requests`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Budget, RateLimit
from llm_console.db.queries import usage
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.rollups import truncate
from llm_console.services.limits_admin import EntityRef, find_entity
from llm_console.services.throttle_analytics import parse_throttle
from llm_console.services.tier_admin import (
    TierError,
    TierPermissionError,
    TierView,
    assign_tier,
    list_tiers,
    tier_assignments,
)
from llm_console.settings import Settings

MIN_REFUSED = 20
MIN_DAYS = 2
MIN_SHARE = 0.05
RULE = (
    f"A holder is suggested an upgrade for a limit when the limiter refused at least {MIN_REFUSED} of their "
    f"calls on it in the range, on at least {MIN_DAYS} different days (UTC) or as at least {MIN_SHARE:.0%} "
    "of all their calls."
)
ENTITY_TYPES = ("user", "team", "key")
LIMITS = ("rpm", "tpm", "rpd", "tpd", "daily_usd", "monthly_usd")
HOUR_GRAIN_SPAN = timedelta(days=92)  # hour rows up to a quarter (as the rollup queries read them), then days
Entity = tuple[str, int]


@dataclass(frozen=True, slots=True)
class DistributionRow:
    """Holders of one tier by kind; `tier_id` None is "No tier": entities with limits of their own only."""

    tier_id: int | None
    name: str
    users: int
    teams: int
    keys: int

    @property
    def total(self) -> int:
        return self.users + self.teams + self.keys


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One holder that keeps hitting one limit, the figures behind it, and what to move them to.

    `target_tier` None: no tier ranked above theirs is higher for this limit, or (`own_override`) their own
    value for it overrides any tier, so only raising their own limit helps."""

    entity_type: str
    entity_id: int
    name: str
    tier: str
    limit: str  # rpm | tpm | rpd | tpd | daily_usd | monthly_usd
    refused: int
    calls: int
    days: int
    current: float
    own_override: bool
    target_tier: str | None
    target_value: float | None  # None with a target tier: that tier sets no such limit

    @property
    def share(self) -> float:
        return self.refused / self.calls if self.calls else 1.0


@dataclass(frozen=True, slots=True)
class TiersPage:
    tiers: list[TierView]
    distribution: list[DistributionRow]
    suggestions: list[Suggestion]
    start: datetime
    end: datetime
    can_edit: bool  # admins change tiers and assignments
    as_of: datetime


def tier_value(tier: TierView, limit: str) -> float | None:
    """A tier's value for one limit (None: no limit)."""
    if limit in ("daily_usd", "monthly_usd"):
        return getattr(tier.budget, limit)
    value: float | None = getattr(tier.limits, limit)
    return value


def _own_values(engine: Engine) -> dict[Entity, dict[str, float]]:
    """Every user's, team's and key's own limit values (only those set)."""
    out: dict[Entity, dict[str, float]] = defaultdict(dict)
    with session(engine) as s:
        for r in s.exec(select(RateLimit).where(RateLimit.entity_type.in_(ENTITY_TYPES))):  # type: ignore[attr-defined]
            out[(r.entity_type, r.entity_id)] |= {
                n: v for n in LIMITS[:4] if (v := getattr(r, n)) is not None and v > 0
            }
        for b in s.exec(select(Budget).where(Budget.entity_type.in_(ENTITY_TYPES))):  # type: ignore[attr-defined]
            out[(b.entity_type, b.entity_id)] |= {
                n: v for n in LIMITS[4:] if (v := getattr(b, n)) is not None and v > 0
            }
    return out


def distribution(
    tiers: Sequence[TierView], assigned: dict[Entity, int], own: dict[Entity, dict[str, float]]
) -> list[DistributionRow]:
    """Holders per tier (rank order), then "No tier": entities with own limits or budgets and no tier."""
    rows = [
        DistributionRow(t.id, t.name, t.holders.get("user", 0), t.holders.get("team", 0), t.holders.get("key", 0))
        for t in tiers
    ]
    loose = {kind: 0 for kind in ENTITY_TYPES}
    for entity, values in own.items():
        if values and entity not in assigned:
            loose[entity[0]] += 1
    rows.append(DistributionRow(None, "No tier", loose["user"], loose["team"], loose["key"]))
    return rows


def _refusals(
    engine: Engine, start: datetime, end: datetime, grain: str
) -> tuple[dict[tuple[Entity, str], int], dict[tuple[Entity, str], set[datetime]]]:
    """Refused calls and the UTC days with refusals, per (entity, limit), from the `throttle` rows."""
    refused: dict[tuple[Entity, str], int] = defaultdict(int)
    days: dict[tuple[Entity, str], set[datetime]] = defaultdict(set)
    for bucket, value, n in usage.counter_by_value(engine, start, end, grain, "throttle"):
        throttle = parse_throttle(value)
        if throttle is None or throttle.entity not in ENTITY_TYPES or not n:
            continue
        key = ((throttle.entity, throttle.entity_id), throttle.limit)
        refused[key] += int(n)
        days[key].add(truncate(bucket, "d"))
    return refused, days


def _calls(engine: Engine, start: datetime, end: datetime, grain: str, entities: set[Entity]) -> dict[Entity, int]:
    """All calls (refused ones included) of each entity in the range, from the `key` / `user` / `team` rows."""
    out: dict[Entity, int] = {}
    for kind in ENTITY_TYPES:
        ids = sorted(str(i) for t, i in entities if t == kind)
        if not ids:
            continue
        rows = usage.breakdown(
            engine, start, end, kind, order_by="requests", limit=len(ids), grain=grain, values=ids, hist=False
        )
        out |= {(kind, int(v)): t.requests for v, t in rows}
    return out


def _target(tiers: Sequence[TierView], current: TierView, limit: str, value: float) -> TierView | None:
    """The lowest-ranked tier above `current` whose value for `limit` is higher than `value` (or unlimited)."""
    above = sorted((t for t in tiers if t.rank > current.rank), key=lambda t: (t.rank, t.name.lower()))
    for tier in above:
        theirs = tier_value(tier, limit)
        if theirs is None or theirs > value:
            return tier
    return None


def upgrade_suggestions(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    tiers: Sequence[TierView],
    assigned: dict[Entity, int],
    own: dict[Entity, dict[str, float]],
    directory: Directory,
) -> list[Suggestion]:
    """Holders meeting the rule in [start, end), most refused first. A limit the holder no longer has (its
    value removed since) gives no suggestion."""
    grain = "h" if end - start <= HOUR_GRAIN_SPAN else "d"
    by_id = {t.id: t for t in tiers}
    refused, days = _refusals(engine, start, end, grain)
    held = {key: n for key, n in refused.items() if key[0] in assigned and assigned[key[0]] in by_id}
    calls = _calls(engine, start, end, grain, {entity for entity, _ in held})
    out: list[Suggestion] = []
    for (entity, limit), n in held.items():
        tier = by_id[assigned[entity]]
        share = n / calls[entity] if calls.get(entity) else 1.0
        if n < MIN_REFUSED or (len(days[(entity, limit)]) < MIN_DAYS and share < MIN_SHARE) or limit not in LIMITS:
            continue
        mine = own.get(entity, {}).get(limit)
        current = mine if mine is not None else tier_value(tier, limit)
        if current is None:
            continue
        target = None if mine is not None else _target(tiers, tier, limit, current)
        out.append(
            Suggestion(
                entity[0],
                entity[1],
                directory.name(entity[0], str(entity[1])),
                tier.name,
                limit,
                n,
                calls.get(entity, 0),
                len(days[(entity, limit)]),
                current,
                mine is not None,
                None if target is None else target.name,
                None if target is None else tier_value(target, limit),
            )
        )
    out.sort(key=lambda s: (-s.refused, s.entity_type, s.name.lower(), LIMITS.index(s.limit)))
    return out


def load_tiers_page(
    engine: Engine, *, role: str, start: datetime, end: datetime, now: datetime | None = None
) -> TiersPage:
    """Everything the tiers page shows, from one call: the tiers, the distribution and the suggestions."""
    tiers = list_tiers(engine)
    assigned = tier_assignments(engine)
    own = _own_values(engine)
    return TiersPage(
        tiers=tiers,
        distribution=distribution(tiers, assigned, own),
        suggestions=upgrade_suggestions(
            engine, start, end, tiers=tiers, assigned=assigned, own=own, directory=load_directory(engine)
        ),
        start=start,
        end=end,
        can_edit=has_role_name(role, "admin"),
        as_of=now or datetime.now(UTC),
    )


def assign_by_name(
    engine: Engine,
    *,
    role: str,
    actor: str,
    entity_type: str,
    name: str,
    tier_id: int | None,
    settings: Settings | None = None,
) -> tuple[EntityRef, str | None]:
    """Put the user (email), team (name) or key (prefix or name) that `name` names on a tier, or on none
    (admins only, as `assign_tier` checks again). Returns the entity and the tier's name."""
    if not has_role_name(role, "admin"):
        raise TierPermissionError("Only admins can assign tiers.")
    if entity_type not in ENTITY_TYPES:
        raise TierError("Choose a user, a team or a key.")
    tiers = {t.id: t.name for t in list_tiers(engine)}
    if tier_id is not None and tier_id not in tiers:
        raise TierError("That tier no longer exists: reload the page.")
    with session(engine) as s:
        ref = find_entity(s, entity_type, name)
    entity_id = ref.entity_id
    assign_tier(
        engine, role=role, actor=actor, entity_type=entity_type, entity_id=entity_id, tier_id=tier_id, settings=settings
    )
    return ref, None if tier_id is None else tiers[tier_id]
