"""Alert rules and the events they fire (registered in the shared metadata by `llm_console.db.models`).

Kept apart from models.py so the alerting schema reads in one place; it imports nothing from models.py,
which imports this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=_now if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class AlertRule(SQLModel, table=True):
    """A condition over rollups, budgets or health checks, and where to say so when it holds.

    `threshold` is a percentage for error rates and milliseconds for latency (unused for budgets and
    deployments, whose levels are fixed); `scope_type`/`scope_value` narrow what is watched ("" value:
    each one of that type, one event apiece). The webhook URL is a secret (Slack's carries its token), so
    only its Fernet ciphertext and a masked form for display are stored.
    """

    __tablename__ = "alert_rules"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=40)  # budget_warning | budget_exceeded | error_rate | latency | deployment_down
    enabled: bool = True
    threshold: float | None = None
    percentile: int | None = None  # latency rules: 50 | 90 | 95 | 99
    window_minutes: int = 5
    min_requests: int = 10
    scope_type: str = Field(default="", max_length=20)  # "" | alias | deployment | user | team | key
    scope_value: str = Field(default="", max_length=300)
    webhook_url_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    webhook_display: str = Field(default="", max_length=300)
    email_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cooldown_minutes: int = 60
    notify_resolved: bool = True
    created_by: str = Field(default="", max_length=320)
    created_at: datetime = _ts()
    updated_by: str = Field(default="", max_length=320)
    updated_at: datetime = _ts()


class AlertEvent(SQLModel, table=True):
    """One episode of a rule's condition for one subject (a team, an alias, a deployment).

    `open_key` equals the fingerprint while the episode is open (pending or firing) and is NULL once it is
    resolved: the unique (rule_id, open_key) pair allows one open episode per subject, and NULLs never
    collide on SQLite or PostgreSQL. `notice` names the notice still owed ("firing" | "resolved" | ""),
    `pending` the channels it is owed on, and `deliveries` each channel's last outcome.
    """

    __tablename__ = "alert_events"
    __table_args__ = (
        UniqueConstraint("rule_id", "open_key", name="uq_alert_events_open"),
        Index("ix_alert_events_rule_id", "rule_id", "id"),
        Index("ix_alert_events_notice", "notice"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="alert_rules.id", ondelete="CASCADE")
    fingerprint: str = Field(max_length=300)
    open_key: str | None = Field(default=None, max_length=300)
    subject: str = Field(default="", max_length=300)
    state: str = Field(default="firing", max_length=20)  # pending | firing | resolved
    value: float | None = None
    threshold: float | None = None
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    first_seen_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    last_notified_at: datetime | None = _ts(nullable=True)
    notifications: int = 0
    notice: str = Field(default="", max_length=20)
    pending: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    deliveries: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
