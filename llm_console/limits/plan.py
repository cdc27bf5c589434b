"""What limits one virtual key's requests: its own, its user's and its team's rate limits and budgets.

Loaded with the key (one query each for rate limits and budgets, in the key lookup's thread) and cached
with it, so the hot path never reads the database for limits. A key without a rate-limit row of its own
takes the global default (`rate_limits` row `default`/0) as its key limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from llm_console.db.models import Budget, RateLimit

RL = RateLimit.__table__  # type: ignore[attr-defined]
BU = Budget.__table__  # type: ignore[attr-defined]
DEFAULT_ENTITY = ("default", 0)
RATE_NAMES = ("rpm", "tpm", "rpd", "tpd")


@dataclass(frozen=True, slots=True)
class EntityLimits:
    """The limits of one entity (key, user or team) that apply to a request; None means no limit."""

    kind: str  # key | user | team
    id: int
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None
    from_default: bool = False  # the key's rate limits are the global default

    @property
    def empty(self) -> bool:
        return not any((self.rpm, self.tpm, self.rpd, self.tpd, self.daily_usd, self.monthly_usd))


@dataclass(frozen=True, slots=True)
class LimitPlan:
    entities: tuple[EntityLimits, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.entities


NO_LIMITS = LimitPlan()


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _count(value: float | None) -> int | None:
    positive = _positive(value)
    return None if positive is None else int(positive)


def load_plan(conn: Connection, key_id: int, user_id: int | None, team_id: int | None) -> LimitPlan:
    """The plan for one key: every entity in the chain (key, user, team) that has something to enforce."""
    chain = [("key", key_id)] + ([("user", user_id)] if user_id is not None else [])
    chain += [("team", team_id)] if team_id is not None else []
    wanted = [*chain, DEFAULT_ENTITY]
    rates = {
        (r.entity_type, r.entity_id): r
        for r in conn.execute(
            select(RL).where(or_(*(and_(RL.c.entity_type == t, RL.c.entity_id == i) for t, i in wanted)))
        )
    }
    budgets = {
        (b.entity_type, b.entity_id): b
        for b in conn.execute(
            select(BU).where(or_(*(and_(BU.c.entity_type == t, BU.c.entity_id == i) for t, i in chain)))
        )
    }
    out = []
    for kind, entity_id in chain:
        rate = rates.get((kind, entity_id))
        from_default = False
        if rate is None and kind == "key":
            rate, from_default = rates.get(DEFAULT_ENTITY), DEFAULT_ENTITY in rates
        budget = budgets.get((kind, entity_id))
        rpm, tpm, rpd, tpd = (_count(getattr(rate, n, None)) for n in RATE_NAMES)
        limits = EntityLimits(
            kind,
            entity_id,
            rpm,
            tpm,
            rpd,
            tpd,
            daily_usd=_positive(budget.daily_usd if budget is not None else None),
            monthly_usd=_positive(budget.monthly_usd if budget is not None else None),
            from_default=from_default,
        )
        if not limits.empty:
            out.append(limits)
    return LimitPlan(tuple(out))
