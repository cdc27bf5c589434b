"""Budgets as the gateway enforces them, for every page and alert that shows budget use.

An entity's budget is its own where set, else its tier's, plus its active temporary increases; after an
admin's reset in the current day or month, the budget counts the period's spend from the reset on (the
same rules as limits/plan.py and the limiter). `BudgetUse.spend` holds that counted spend and those budgets,
so its share and status are what the gateway acts on; `reset_at` and the increases say why they differ from
the plain figures. Actual spend is never changed: the Costs page and the logs keep every dollar.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.queries.spend import Spend, spend_by_entity
from llm_console.db.tier_tables import LimitTier, TierAssignment
from llm_console.limits.periods import day_bounds, month_bounds
from llm_console.limits.plan import PeriodKey, Reset, load_increases, load_resets, own_or

Entity = tuple[str, int]


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One entity's budget use as enforced, and what shaped it."""

    spend: Spend  # spend as the budgets count it, against the effective budgets (increases included)
    tier: str | None = None
    day_increase_usd: float = 0.0
    month_increase_usd: float = 0.0
    day_reset_at: datetime | None = None  # the day's budget counts from this reset on (None: the whole day)
    month_reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Budgets:
    """Tiers, this month's resets and the active increases of every entity, read once per page or check."""

    tiers: dict[Entity, LimitTier]
    resets: dict[PeriodKey, Reset]
    increases: dict[PeriodKey, float]
    starts: tuple[float, float]  # epoch seconds: the current day's and month's start

    def use(self, entity_type: str, spend: Spend) -> BudgetUse:
        entity = (entity_type, spend.entity_id)
        tier = self.tiers.get(entity)
        day = self._period(entity, "day", spend.day_usd, spend.daily_budget_usd, getattr(tier, "daily_usd", None))
        month = self._period(
            entity, "month", spend.month_usd, spend.monthly_budget_usd, getattr(tier, "monthly_usd", None)
        )
        counted = replace(
            spend, day_usd=day[0], daily_budget_usd=day[1], month_usd=month[0], monthly_budget_usd=month[1]
        )
        return BudgetUse(counted, None if tier is None else tier.name, day[2], month[2], day[3], month[3])

    def _period(
        self, entity: Entity, period: str, spent: float, own: float | None, tier: float | None
    ) -> tuple[float, float | None, float, datetime | None]:
        """(spent as the budget counts it, the budget with increases, the increase, the reset it counts from)."""
        budget = own_or(own, tier) or None
        increase = self.increases.get((*entity, period), 0.0) if budget else 0.0
        limit = None if budget is None else budget + increase
        reset = self.resets.get((*entity, period))
        if reset is None or reset.at < self.starts[period == "month"]:
            return spent, limit, increase, None
        return max(0.0, spent - reset.spent_before_usd), limit, increase, datetime.fromtimestamp(reset.at, UTC)


def load_budgets(engine: Engine, now: datetime, tz: str) -> Budgets:
    month_start = month_bounds(now, tz)[0]
    with session(engine) as s:
        tiers = {
            (a.entity_type, a.entity_id): t
            for a, t in s.exec(select(TierAssignment, LimitTier).where(TierAssignment.tier_id == LimitTier.id))
        }
        resets = load_resets(s.connection(), None, month_start)
        increases, _ = load_increases(s.connection(), None, now)
    return Budgets(tiers, resets, increases, (day_bounds(now, tz)[0].timestamp(), month_start.timestamp()))


def budget_use(engine: Engine, entity_type: str, now: datetime, tz: str = "UTC") -> list[BudgetUse]:
    """`spend_by_entity` as enforced: every `entity_type` that spent or has a budget of its own or a tier's."""
    budgets = load_budgets(engine, now, tz)
    spent = {s.entity_id: s for s in spend_by_entity(engine, entity_type, now, tz=tz)}
    for kind, entity_id in budgets.tiers:
        if kind == entity_type and entity_id not in spent:
            spent[entity_id] = Spend(entity_id, 0.0, 0.0, None, None)
    return [budgets.use(entity_type, spent[i]) for i in sorted(spent)]
