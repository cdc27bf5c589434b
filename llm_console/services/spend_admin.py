"""Spend administration: restart a budget's count for the current period, or raise a budget for a while.

- A reset records what the budget had counted for the current day or month (LLMC_BUDGET_TIMEZONE); from
  then on the budget counts only spend since the reset, until the period ends. Costs and logs never change.
- An increase adds an amount to an entity's daily or monthly budget (its own or its tier's) until it
  expires, by itself, at its time on every replica (limits/plan.py `valid_until`); several add up, and a
  revoke ends one early.

Only LLMC_SPEND_ADMIN_ROLE and above (admins by default, or operators) may do either; every action takes a
reason and is audited in its transaction, then announced to every replica (services/config_bus).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.queries.filters import utc
from llm_console.db.queries.spend import entity_totals
from llm_console.db.tier_tables import BudgetIncrease, SpendReset
from llm_console.limits.periods import bounds, period_id
from llm_console.services.audit import record
from llm_console.services.budgets import MAX_USD
from llm_console.services.config_bus import announce
from llm_console.services.tier_admin import check_entity, effective_budget, entity_label
from llm_console.settings import Settings

PERIODS = {"day": "d", "month": "m"}
BUDGET_NAMES = {"day": "daily", "month": "monthly"}
MIN_REASON, MAX_REASON = 3, 500
MAX_HOURS = 24 * 90
SPEND_ADMIN_ROLES = ("admin", "operator")


class SpendAdminError(ValueError):
    """A readable reason a spend reset or a budget increase was refused."""

    @property
    def message(self) -> str:
        return str(self)


class SpendAdminPermissionError(SpendAdminError):
    """The signed-in user's role may not administer spend."""


@dataclass(frozen=True)
class SpendResetView:
    id: int
    entity_type: str
    entity_id: int
    entity_name: str
    period: str  # day | month
    period_id: str
    reset_at: datetime
    spent_before_usd: float  # what the budget had counted for the period when it was reset
    reason: str
    actor: str


@dataclass(frozen=True)
class IncreaseView:
    id: int
    entity_type: str
    entity_id: int
    entity_name: str
    period: str
    amount_usd: float
    created_at: datetime
    expires_at: datetime
    reason: str
    actor: str
    revoked_at: datetime | None  # None while active (or until it expired)


def may_administer_spend(role: str, settings: Settings) -> bool:
    """True for LLMC_SPEND_ADMIN_ROLE and above; a setting below operator is never honoured."""
    minimum = settings.spend_admin_role if settings.spend_admin_role in SPEND_ADMIN_ROLES else "admin"
    return has_role_name(role, minimum)


def _require(role: str, settings: Settings) -> None:
    if not may_administer_spend(role, settings):
        who = "admins" if settings.spend_admin_role != "operator" else "operators and admins"
        raise SpendAdminPermissionError(f"Only {who} can reset spend or change budgets temporarily.")


def _reason(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not MIN_REASON <= len(text) <= MAX_REASON:
        raise SpendAdminError(f"Give a reason of {MIN_REASON} to {MAX_REASON} characters; it goes in the audit log.")
    return text


def _period(period: object) -> str:
    if period not in PERIODS:
        raise SpendAdminError("Choose the daily or the monthly budget (period day or month).")
    return str(period)


def _number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpendAdminError(f"The {what} must be a number.")
    if not low < value <= high:
        raise SpendAdminError(f"The {what} must be above {low:g} and at most {high:g}.")
    return float(value)


def _target(s: Session, entity_type: str, entity_id: int, period: str) -> tuple[str, float]:
    """The entity's label and the budget of `period` that applies to it; readable errors when there is none."""
    label = check_entity(s, entity_type, entity_id, SpendAdminError)
    budget = effective_budget(s, entity_type, entity_id)
    limit = budget.daily_usd if period == "day" else budget.monthly_usd
    if limit is None:
        raise SpendAdminError(
            f"{label} has no {BUDGET_NAMES[period]} budget (of its own or from its tier); set one first."
        )
    return label, limit


def _now(now: datetime | None) -> datetime:
    return utc(now) if now is not None else datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reset_spend(
    engine: Engine,
    settings: Settings,
    *,
    role: str,
    actor: str,
    entity_type: str,
    entity_id: int,
    period: str,
    reason: str,
    now: datetime | None = None,
) -> SpendResetView:
    """Restart the count of an entity's daily or monthly budget at `now`, for the rest of the current period;
    audited as spend.reset with what the budget had counted."""
    _require(role, settings)
    period, reason, at = _period(period), _reason(reason), _now(now)
    p, tz = PERIODS[period], settings.budget_timezone
    start, end = bounds(p, at, tz)
    pid = period_id(p, at, tz)
    with session(engine) as s:
        label, _ = _target(s, entity_type, entity_id, period)
        earlier = s.exec(
            select(func.coalesce(func.sum(SpendReset.spent_before_usd), 0.0)).where(
                SpendReset.entity_type == entity_type,
                SpendReset.entity_id == entity_id,
                SpendReset.period == period,
                SpendReset.period_id == pid,
            )
        ).one()
        total = entity_totals(s.connection(), entity_type, entity_id, start, end).cost_usd
        counted = round(max(0.0, total - float(earlier or 0.0)), 9)
        row = SpendReset(
            entity_type=entity_type,
            entity_id=entity_id,
            period=period,
            period_id=pid,
            reset_at=at,
            spent_before_usd=counted,
            reason=reason,
            actor=actor,
        )
        s.add(row)
        s.flush()
        after = {"period": period, "period_id": pid, "spent_before_usd": counted, "reason": reason}
        target = f"{entity_type}:{entity_id}"
        record(s, actor=actor, action="spend.reset", target_type="spend", target_id=target, after=after)
        s.commit()
        view = _reset_view(row, label)
    announce(settings, "spend")
    return view


def grant_increase(
    engine: Engine,
    settings: Settings,
    *,
    role: str,
    actor: str,
    entity_type: str,
    entity_id: int,
    period: str,
    amount_usd: float,
    hours: float,
    reason: str,
    now: datetime | None = None,
) -> IncreaseView:
    """Add `amount_usd` to an entity's daily or monthly budget for `hours`; audited as budget.increase."""
    _require(role, settings)
    period, reason, at = _period(period), _reason(reason), _now(now)
    amount = _number(amount_usd, "amount in USD", 0, MAX_USD)
    duration = _number(hours, "duration in hours", 0, MAX_HOURS)
    with session(engine) as s:
        label, limit = _target(s, entity_type, entity_id, period)
        row = BudgetIncrease(
            entity_type=entity_type,
            entity_id=entity_id,
            period=period,
            amount_usd=amount,
            created_at=at,
            expires_at=at + timedelta(hours=duration),
            reason=reason,
            actor=actor,
        )
        s.add(row)
        s.flush()
        after = {
            "id": row.id,
            "period": period,
            "amount_usd": amount,
            "budget_usd": limit,
            "expires_at": row.expires_at.isoformat(),
            "reason": reason,
        }
        target = f"{entity_type}:{entity_id}"
        record(s, actor=actor, action="budget.increase", target_type="spend", target_id=target, after=after)
        s.commit()
        view = _increase_view(row, label)
    announce(settings, "spend")
    return view


def revoke_increase(
    engine: Engine,
    settings: Settings,
    *,
    role: str,
    actor: str,
    increase_id: int,
    reason: str,
    now: datetime | None = None,
) -> None:
    """End an active increase now; audited as budget.increase.revoke with the reason."""
    _require(role, settings)
    reason, at = _reason(reason), _now(now)
    if isinstance(increase_id, bool) or not isinstance(increase_id, int):
        raise SpendAdminError("That increase does not exist.")
    with session(engine) as s:
        row = s.get(BudgetIncrease, increase_id)
        if row is None:
            raise SpendAdminError("That increase does not exist.")
        if row.revoked_at is not None:
            raise SpendAdminError("That increase was already revoked.")
        if _aware(row.expires_at) <= at:
            raise SpendAdminError("That increase has already expired.")
        row.revoked_at, row.revoked_by = at, actor
        s.add(row)
        before = {"amount_usd": row.amount_usd, "period": row.period, "expires_at": _aware(row.expires_at).isoformat()}
        after = {"revoked_at": at.isoformat(), "reason": reason}
        target = f"{row.entity_type}:{row.entity_id}"
        record(
            s,
            actor=actor,
            action="budget.increase.revoke",
            target_type="spend",
            target_id=target,
            before={"id": row.id, **before},
            after=after,
        )
        s.commit()
    announce(settings, "spend")


def active_increases(engine: Engine, now: datetime | None = None) -> list[IncreaseView]:
    """Increases neither revoked nor expired at `now`, soonest expiry first."""
    at = _now(now)
    with session(engine) as s:
        rows = s.exec(
            select(BudgetIncrease)
            .where(col(BudgetIncrease.revoked_at).is_(None), BudgetIncrease.expires_at > at)
            .order_by(col(BudgetIncrease.expires_at), col(BudgetIncrease.id))
        ).all()
        return [_increase_view(r, _name(s, r.entity_type, r.entity_id)) for r in rows]


def recent_resets(engine: Engine, limit: int = 20) -> list[SpendResetView]:
    """The newest resets first."""
    with session(engine) as s:
        rows = s.exec(
            select(SpendReset).order_by(col(SpendReset.reset_at).desc(), col(SpendReset.id).desc()).limit(limit)
        ).all()
        return [_reset_view(r, _name(s, r.entity_type, r.entity_id)) for r in rows]


def _name(s: Session, entity_type: str, entity_id: int) -> str:
    return entity_label(s, entity_type, entity_id) or f"{entity_type} #{entity_id} (deleted)"


def _reset_view(row: SpendReset, name: str) -> SpendResetView:
    assert row.id is not None
    return SpendResetView(
        id=row.id,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        entity_name=name,
        period=row.period,
        period_id=row.period_id,
        reset_at=_aware(row.reset_at),
        spent_before_usd=row.spent_before_usd,
        reason=row.reason,
        actor=row.actor,
    )


def _increase_view(row: BudgetIncrease, name: str) -> IncreaseView:
    assert row.id is not None
    return IncreaseView(
        id=row.id,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        entity_name=name,
        period=row.period,
        amount_usd=row.amount_usd,
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
        reason=row.reason,
        actor=row.actor,
        revoked_at=None if row.revoked_at is None else _aware(row.revoked_at),
    )
