"""Limit tiers and spend administration.

Registered in the shared metadata by `llm_console.db.models` (which imports this module); nothing here
imports models.py.

- `limit_tiers`: named presets of rate limits and budgets ("Free", "Team", "Enterprise"); `rank` orders them
  from smallest to largest (upgrade suggestions point at a higher rank).
- `tier_assignments`: which tier a user, team or key is on (at most one each). The entity's own
  `rate_limits` / `budgets` values, where set, override the tier's value for that one limit.
- `spend_resets`: an admin restarted an entity's budget count for the current day or month; the budget
  counts spend from `reset_at` to the end of that period. Spend itself (costs, logs) is never changed.
- `budget_increases`: a temporary addition to an entity's daily or monthly budget, valid until `expires_at`
  (or until revoked).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=None if nullable else _now,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class LimitTier(SQLModel, table=True):
    """A named preset of RPM, TPM, RPD, TPD and daily/monthly budgets (None: no limit)."""

    __tablename__ = "limit_tiers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60, unique=True)
    description: str = Field(default="", max_length=300)
    rank: int = 0
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    updated_by: str = Field(default="", max_length=320)


class TierAssignment(SQLModel, table=True):
    """The tier one user, team or key is on."""

    __tablename__ = "tier_assignments"
    __table_args__ = (Index("ix_tier_assignments_tier", "tier_id"),)

    entity_type: str = Field(primary_key=True, max_length=10)  # user | team | key
    entity_id: int = Field(primary_key=True)
    tier_id: int = Field(sa_column=Column(Integer, ForeignKey("limit_tiers.id"), nullable=False))
    assigned_at: datetime = _ts()
    assigned_by: str = Field(default="", max_length=320)


class SpendReset(SQLModel, table=True):
    """The budget count of one entity restarted at `reset_at` for the day or month `period_id` holds."""

    __tablename__ = "spend_resets"
    __table_args__ = (Index("ix_spend_resets_entity", "entity_type", "entity_id", "period", "reset_at"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=10)
    entity_id: int
    period: str = Field(max_length=5)  # day | month
    period_id: str = Field(max_length=10)  # 2026-12-07 | 2026-12 (in LLMC_BUDGET_TIMEZONE)
    reset_at: datetime = _ts()
    spent_before_usd: float = 0.0  # what the budget had counted for the period when it was reset
    reason: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(default="", max_length=320)


class BudgetIncrease(SQLModel, table=True):
    """A temporary amount added to one entity's daily or monthly budget until `expires_at`."""

    __tablename__ = "budget_increases"
    __table_args__ = (
        Index("ix_budget_increases_entity", "entity_type", "entity_id", "expires_at"),
        Index("ix_budget_increases_expires", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=10)
    entity_id: int
    period: str = Field(max_length=5)  # day | month: which budget it raises
    amount_usd: float
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    reason: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(default="", max_length=320)
    revoked_at: datetime | None = _ts(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=320)
