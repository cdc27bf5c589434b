"""Spend per user, team or key for the current day and month (in the budget time zone), against their budgets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from llm_console.db.models import Budget
from llm_console.db.queries.filters import utc
from llm_console.db.rollups import truncate, usage_rollups
from llm_console.limits.periods import day_bounds, month_bounds

T = usage_rollups
B = Budget.__table__  # type: ignore[attr-defined]
WARNING_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Spend:
    entity_id: int
    day_usd: float
    month_usd: float
    daily_budget_usd: float | None
    monthly_budget_usd: float | None

    @property
    def day_share(self) -> float | None:
        return self.day_usd / self.daily_budget_usd if self.daily_budget_usd else None

    @property
    def month_share(self) -> float | None:
        return self.month_usd / self.monthly_budget_usd if self.monthly_budget_usd else None

    @property
    def status(self) -> str:
        """OK below 80% of every budget, Warning from 80%, Exceeded at 100% or more of any."""
        return share_status(max((s for s in (self.day_share, self.month_share) if s is not None), default=0.0))


def share_status(share: float) -> str:
    """ok below 80% of a budget, warning from 80%, exceeded from 100%.

    Rounded first: ten $0.10 requests sum to 0.9999999999999999 of a $1 budget, which is spent.
    """
    share = round(share, 9)
    return "exceeded" if share >= 1.0 else "warning" if share >= WARNING_SHARE else "ok"


def month_start(now: datetime, tz: str = "UTC") -> datetime:
    return month_bounds(now, tz)[0]


def _ceil_day(at: datetime) -> datetime:
    floor = truncate(at, "d")
    return floor if floor == at else floor + timedelta(days=1)


def _ranges(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) as rollup grains: whole UTC days from day rows, the edges (a time zone's midnight that is
    not UTC's) from hour rows. Zones whose offset is not a whole hour are counted from the first whole hour
    after their midnight."""
    start, end = utc(start), utc(end)
    first_day, last_day = _ceil_day(start), truncate(end, "d")
    if first_day >= last_day:  # no whole UTC day inside: hour rows only
        ranges = [("h", start, end)]
    else:
        ranges = [("h", start, first_day), ("d", first_day, last_day), ("h", last_day, end)]
    return [(grain, lo, hi) for grain, lo, hi in ranges if lo < hi]


def spend_between(conn: Connection, entity: str, start: datetime, end: datetime) -> dict[int, float]:
    """Spend per entity id (user | team | key) in [start, end)."""
    out: dict[int, float] = {}
    for grain, lo, hi in _ranges(start, end):
        rows = conn.execute(
            select(T.c.value, func.sum(T.c.cost_usd))
            .where(T.c.grain == grain, T.c.dim == entity, T.c.bucket >= lo, T.c.bucket < hi)
            .group_by(T.c.value)
        )
        for value, cost in rows:
            if str(value).isdigit():
                out[int(value)] = out.get(int(value), 0.0) + float(cost or 0.0)
    return out


@dataclass(frozen=True, slots=True)
class Totals:
    """What one entity used in a period: requests that succeeded, tokens in and out, cost."""

    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


def entity_totals(conn: Connection, entity: str, entity_id: int, start: datetime, end: datetime) -> Totals:
    """One entity's totals in [start, end): what the limit counters start from when they have no state
    (a new process, a restarted Redis). Failed requests are not counted: most of them are refusals."""
    requests = tokens = 0
    cost = 0.0
    for grain, lo, hi in _ranges(start, end):
        row = conn.execute(
            select(
                func.sum(T.c.requests - T.c.errors),
                func.sum(T.c.prompt_tokens + T.c.completion_tokens),
                func.sum(T.c.cost_usd),
            ).where(
                T.c.grain == grain, T.c.dim == entity, T.c.value == str(entity_id), T.c.bucket >= lo, T.c.bucket < hi
            )
        ).one()
        requests += int(row[0] or 0)
        tokens += int(row[1] or 0)
        cost += float(row[2] or 0.0)
    return Totals(requests, tokens, cost)


def spend_by_entity(engine: Engine, entity: str, now: datetime, tz: str = "UTC") -> list[Spend]:
    """Today's and this month's spend of every `entity` (user | team | key) that spent or has a budget; the
    day and the month are those of the time zone `tz` (LLMC_BUDGET_TIMEZONE)."""
    day, day_end = day_bounds(now, tz)
    month, _ = month_bounds(now, tz)
    with engine.connect() as conn:
        monthly = spend_between(conn, entity, month, day_end)  # month to date
        daily = spend_between(conn, entity, day, day_end)
        budgets = {
            b.entity_id: (b.daily_usd, b.monthly_usd)
            for b in conn.execute(
                select(B.c.entity_id, B.c.daily_usd, B.c.monthly_usd).where(B.c.entity_type == entity)
            )
        }
    out = []
    for entity_id in sorted(set(monthly) | set(daily) | set(budgets)):
        daily_limit, monthly_limit = budgets.get(entity_id, (None, None))
        out.append(
            Spend(
                entity_id,
                daily.get(entity_id, 0.0),
                monthly.get(entity_id, 0.0),
                daily_limit or None,
                monthly_limit or None,
            )
        )
    return out
