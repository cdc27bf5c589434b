"""What limits one virtual key's requests: its own, its user's and its team's rate limits and budgets.

Loaded with the key (one query each for rate limits, budgets, tiers, spend resets and budget increases, in
the key lookup's thread) and cached with it, so the hot path never reads the database for limits.

Per limit, an entity's own `rate_limits` / `budgets` value wins where set; else its tier's value applies.
A key with neither a rate-limit row of its own nor a tier takes the global default (`rate_limits` row
`default`/0) as its key rate limits. Active budget increases add to the budget they raise (one with no
budget raises nothing), and the plan is valid only until the first of them expires (`valid_until`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, true
from sqlalchemy.engine import Connection

from llm_console.db.models import Budget, RateLimit
from llm_console.db.tier_tables import BudgetIncrease, LimitTier, SpendReset, TierAssignment
from llm_console.limits.periods import month_bounds

RL = RateLimit.__table__  # type: ignore[attr-defined]
BU = Budget.__table__  # type: ignore[attr-defined]
TI = LimitTier.__table__  # type: ignore[attr-defined]
TA = TierAssignment.__table__  # type: ignore[attr-defined]
SR = SpendReset.__table__  # type: ignore[attr-defined]
BI = BudgetIncrease.__table__  # type: ignore[attr-defined]
BUDGET_PERIODS = {"daily_usd": "day", "monthly_usd": "month"}
DEFAULT_ENTITY = ("default", 0)
RATE_NAMES = ("rpm", "tpm", "rpd", "tpd")


@dataclass(frozen=True, slots=True)
class Reset:
    """An admin restarted a budget's count at `at` (epoch seconds); `spent_before_usd` is what the period
    had recorded then (over every reset in it), so the budget counts the period's spend less that."""

    at: float
    spent_before_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class EntityLimits:
    """The limits of one entity (key, user or team) that apply to a request; None means no limit.

    `daily_usd` / `monthly_usd` are the budgets before increases; the limiter enforces budget + increase.
    A reset is the latest of this month (the limiter ignores one from before the current day or month)."""

    kind: str  # key | user | team
    id: int
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None
    from_default: bool = False  # the key's rate limits are the global default
    tier: str | None = None  # the name of the tier the entity is on
    daily_increase_usd: float = 0.0  # active temporary increases, summed
    monthly_increase_usd: float = 0.0
    daily_reset: Reset | None = None
    monthly_reset: Reset | None = None

    @property
    def empty(self) -> bool:
        return not any((self.rpm, self.tpm, self.rpd, self.tpd, self.daily_usd, self.monthly_usd))

    def increase(self, name: str) -> float:
        """The active increase of the budget `name` (daily_usd | monthly_usd)."""
        return self.daily_increase_usd if name == "daily_usd" else self.monthly_increase_usd

    def reset_since(self, name: str, period_start: float) -> Reset | None:
        """The reset of the budget `name` within the period starting at `period_start`, if any."""
        reset = self.daily_reset if name == "daily_usd" else self.monthly_reset
        return reset if reset is not None and reset.at >= period_start else None


@dataclass(frozen=True, slots=True)
class LimitPlan:
    entities: tuple[EntityLimits, ...] = ()
    valid_until: float | None = None  # epoch seconds: when the first budget increase in it expires

    @property
    def empty(self) -> bool:
        return not self.entities

    def entity(self, kind: str, entity_id: int) -> EntityLimits | None:
        return next((e for e in self.entities if e.kind == kind and e.id == entity_id), None)


NO_LIMITS = LimitPlan()


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _count(value: float | None) -> int | None:
    positive = _positive(value)
    return None if positive is None else int(positive)


def _epoch(value: datetime) -> float:
    """SQLite hands datetimes back without a zone; they are stored as UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def own_or(own: float | None, tier: float | None) -> float | None:
    """An entity's own value where it sets one (a positive number), else its tier's."""
    return own if own is not None and own > 0 else tier


PeriodKey = tuple[str, int, str]  # (entity type, entity id, "day" | "month")


def _among(table: Any, entities: list[tuple[str, int]] | None) -> Any:
    if entities is None:
        return true()
    return or_(*(and_(table.c.entity_type == t, table.c.entity_id == i) for t, i in entities))


def load_resets(conn: Connection, entities: list[tuple[str, int]] | None, since: datetime) -> dict[PeriodKey, Reset]:
    """The latest budget reset since `since` (the month's start) per entity and period (every entity when
    `entities` is None). Each reset stores what the budget counted since the one before it in its period;
    summed, they are what the period had recorded at the latest one."""
    resets: dict[PeriodKey, Reset] = {}
    periods: dict[PeriodKey, str] = {}
    stmt = select(SR).where(_among(SR, entities), SR.c.reset_at >= since).order_by(SR.c.reset_at, SR.c.id)
    for r in conn.execute(stmt):
        key = (r.entity_type, r.entity_id, r.period)
        earlier = resets[key].spent_before_usd if key in resets and periods[key] == r.period_id else 0.0
        resets[key] = Reset(_epoch(r.reset_at), earlier + float(r.spent_before_usd))
        periods[key] = r.period_id
    return resets


def load_increases(
    conn: Connection, entities: list[tuple[str, int]] | None, at: datetime
) -> tuple[dict[PeriodKey, float], list[float]]:
    """The budget increases active at `at`, summed per entity and period, and when each expires (epoch s)."""
    increases: dict[PeriodKey, float] = {}
    expiries: list[float] = []
    active = (BI.c.revoked_at.is_(None), BI.c.expires_at > at, BI.c.created_at <= at)
    for r in conn.execute(select(BI).where(_among(BI, entities), *active)):
        key = (r.entity_type, r.entity_id, r.period)
        increases[key] = increases.get(key, 0.0) + float(r.amount_usd)
        expiries.append(_epoch(r.expires_at))
    return increases, expiries


def load_plan(
    conn: Connection,
    key_id: int,
    user_id: int | None,
    team_id: int | None,
    *,
    now: float | None = None,
    tz: str = "UTC",
) -> LimitPlan:
    """The plan for one key at `now` (epoch seconds): every entity in the chain (key, user, team) that has
    something to enforce, with its tier, this month's latest resets and its active budget increases."""
    now = time.time() if now is None else now
    at = datetime.fromtimestamp(now, UTC)
    chain = [("key", key_id)] + ([("user", user_id)] if user_id is not None else [])
    chain += [("team", team_id)] if team_id is not None else []
    rates = {
        (r.entity_type, r.entity_id): r for r in conn.execute(select(RL).where(_among(RL, [*chain, DEFAULT_ENTITY])))
    }
    budgets = {(b.entity_type, b.entity_id): b for b in conn.execute(select(BU).where(_among(BU, chain)))}
    tiers = {
        (r.entity_type, r.entity_id): r
        for r in conn.execute(
            select(TA.c.entity_type, TA.c.entity_id, TI).join(TI, TI.c.id == TA.c.tier_id).where(_among(TA, chain))
        )
    }
    resets = load_resets(conn, chain, month_bounds(at, tz)[0])
    increases, expiries = load_increases(conn, chain, at)
    out = []
    for kind, entity_id in chain:
        tier = tiers.get((kind, entity_id))
        rate = rates.get((kind, entity_id))
        from_default = False
        if rate is None and tier is None and kind == "key":
            rate, from_default = rates.get(DEFAULT_ENTITY), DEFAULT_ENTITY in rates
        budget = budgets.get((kind, entity_id))
        rpm, tpm, rpd, tpd = (_count(own_or(getattr(rate, n, None), getattr(tier, n, None))) for n in RATE_NAMES)
        daily, monthly = (_positive(own_or(getattr(budget, n, None), getattr(tier, n, None))) for n in BUDGET_PERIODS)
        limits = EntityLimits(
            kind,
            entity_id,
            rpm,
            tpm,
            rpd,
            tpd,
            daily_usd=daily,
            monthly_usd=monthly,
            from_default=from_default,
            tier=None if tier is None else tier.name,
            daily_increase_usd=increases.get((kind, entity_id, "day"), 0.0) if daily else 0.0,
            monthly_increase_usd=increases.get((kind, entity_id, "month"), 0.0) if monthly else 0.0,
            daily_reset=resets.get((kind, entity_id, "day")),
            monthly_reset=resets.get((kind, entity_id, "month")),
        )
        if not limits.empty:
            out.append(limits)
    return LimitPlan(tuple(out), min(expiries) if expiries else None)
