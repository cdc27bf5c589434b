"""Spend per user, team or key for the current UTC day and month, against their budgets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from llm_console.db.models import Budget
from llm_console.db.queries.filters import utc
from llm_console.db.rollups import truncate, usage_rollups

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


def month_start(now: datetime) -> datetime:
    return truncate(utc(now), "d").replace(day=1)


def spend_by_entity(engine: Engine, entity: str, now: datetime) -> list[Spend]:
    """Today's and this month's spend of every `entity` (user | team | key) that spent or has a budget."""
    day = truncate(utc(now), "d")
    month = month_start(now)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                T.c.value,
                func.sum(T.c.cost_usd),
                func.sum(func.coalesce(T.c.cost_usd, 0.0)).filter(T.c.bucket >= day),
            )
            .where(T.c.grain == "d", T.c.dim == entity, T.c.bucket >= month, T.c.bucket < day + timedelta(days=1))
            .group_by(T.c.value)
        ).all()
        budgets = {
            b.entity_id: (b.daily_usd, b.monthly_usd)
            for b in conn.execute(
                select(B.c.entity_id, B.c.daily_usd, B.c.monthly_usd).where(B.c.entity_type == entity)
            )
        }
    spent = {int(v): (float(m or 0.0), float(d or 0.0)) for v, m, d in rows if str(v).isdigit()}
    out = []
    for entity_id in sorted(set(spent) | set(budgets)):
        month_usd, day_usd = spent.get(entity_id, (0.0, 0.0))
        daily, monthly = budgets.get(entity_id, (None, None))
        out.append(Spend(entity_id, day_usd, month_usd, daily or None, monthly or None))
    return out
