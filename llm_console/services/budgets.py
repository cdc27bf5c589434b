"""Spend budgets per user, team or key (USD per UTC day and month), set with an audit event.

A limit of None (or 0, as the table reads it) means "no limit"; clearing both limits removes the row.
Spend against these budgets is read in `db/queries/spend.py`; nothing here blocks traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.db.engine import session
from llm_console.db.models import Budget, Team, User, VirtualKey, utcnow
from llm_console.services.audit import record
from llm_console.services.config_bus import announce

ENTITY_TYPES = ("user", "team", "key")
MAX_USD = 1e12
_TABLES: dict[str, type[User] | type[Team] | type[VirtualKey]] = {"user": User, "team": Team, "key": VirtualKey}


class BudgetError(ValueError):
    """A readable reason a budget could not be set."""


@dataclass(frozen=True, slots=True)
class BudgetView:
    entity_type: str
    entity_id: int
    daily_usd: float | None
    monthly_usd: float | None
    updated_at: datetime


def _limit(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BudgetError(f"{name} must be a number of USD or None")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise BudgetError(f"{name} must be a non-negative, finite number of USD")
    if number > MAX_USD:
        raise BudgetError(f"{name} is larger than {MAX_USD:.0e} USD")
    return number


def _view(row: Budget) -> BudgetView:
    return BudgetView(row.entity_type, row.entity_id, row.daily_usd, row.monthly_usd, row.updated_at)


def set_budget(
    engine: Engine,
    entity_type: str,
    entity_id: int,
    daily_usd: float | None,
    monthly_usd: float | None,
    actor: str,
) -> BudgetView | None:
    """Set both limits of one entity (None clears a limit); returns the stored budget, or None once cleared."""
    if entity_type not in ENTITY_TYPES:
        raise BudgetError(f"entity type must be one of {', '.join(ENTITY_TYPES)}")
    if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id < 0:
        raise BudgetError("entity id must be a non-negative integer")
    daily, monthly = _limit(daily_usd, "daily budget"), _limit(monthly_usd, "monthly budget")
    with session(engine) as s:
        if s.get(_TABLES[entity_type], entity_id) is None:
            raise BudgetError(f"no {entity_type} with id {entity_id}")
        row = put_budget(s, entity_type, entity_id, daily, monthly, actor=actor)
        s.commit()
        view = None if row is None else _view(row)
    announce(what="budget")  # every replica applies it now, not at its next refresh
    return view


def put_budget(
    s: Session, entity_type: str, entity_id: int, daily: float | None, monthly: float | None, *, actor: str
) -> Budget | None:
    """Store or clear (both None) one entity's budget in the caller's transaction, audited; limits already
    validated. Nothing is written when nothing changes. Returns the row, or None when there is none."""
    row = s.get(Budget, (entity_type, entity_id))
    before = None if row is None else {"daily_usd": row.daily_usd, "monthly_usd": row.monthly_usd}
    after = {"daily_usd": daily, "monthly_usd": monthly}
    target_id = f"{entity_type}:{entity_id}"
    if before == after or (row is None and daily is None and monthly is None):
        return row
    if daily is None and monthly is None:
        s.delete(row)
        record(s, actor=actor, action="budget.clear", target_type="budget", target_id=target_id, before=before)
        return None
    row = row or Budget(entity_type=entity_type, entity_id=entity_id)
    row.daily_usd, row.monthly_usd, row.updated_at = daily, monthly, utcnow()
    s.add(row)
    record(s, actor=actor, action="budget.set", target_type="budget", target_id=target_id, before=before, after=after)
    return row


def get_budgets(engine: Engine, entity_type: str | None = None) -> list[BudgetView]:
    """Every budget (of one entity type when given), by type then id."""
    if entity_type is not None and entity_type not in ENTITY_TYPES:
        raise BudgetError(f"entity type must be one of {', '.join(ENTITY_TYPES)}")
    stmt = select(Budget)
    if entity_type is not None:
        stmt = stmt.where(Budget.entity_type == entity_type)
    with session(engine) as s:
        rows = s.exec(stmt.order_by(Budget.entity_type, Budget.entity_id)).all()  # type: ignore[arg-type]
    return [_view(r) for r in rows]


def get_budget(engine: Engine, entity_type: str, entity_id: int) -> BudgetView | None:
    with session(engine) as s:
        row = s.get(Budget, (entity_type, entity_id))
    return None if row is None else _view(row)
