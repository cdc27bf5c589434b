"""What fired: alert events newest first, paginated on the server by id (a keyset cursor, never OFFSET)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from llm_console.db.alert_tables import AlertEvent, AlertRule
from llm_console.db.engine import session
from llm_console.db.queries.filters import utc

PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    rule_id: int
    rule_name: str
    rule_kind: str
    subject: str
    state: str  # pending | firing | resolved
    value: float | None
    threshold: float | None
    message: str
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    last_notified_at: datetime | None
    notifications: int
    notice: str
    pending: tuple[str, ...]
    deliveries: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[EventView]
    next_cursor: int | None  # the id to continue below, None on the last page
    open_count: int


def _maybe(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def list_events(engine: Engine, *, before_id: int | None = None, limit: int = PAGE_SIZE) -> EventPage:
    """A page of events, newest first, starting below `before_id`; plus how many are open now."""
    limit = max(1, min(limit, 200))
    stmt = (
        select(AlertEvent, AlertRule.name, AlertRule.kind)
        .join(AlertRule, col(AlertRule.id) == AlertEvent.rule_id)
        .order_by(col(AlertEvent.id).desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(col(AlertEvent.id) < before_id)
    with session(engine) as s:
        rows = s.exec(stmt).all()
        open_count = s.exec(select(func.count()).where(col(AlertEvent.open_key).is_not(None))).one()
    views = [
        EventView(
            e.id or 0,
            e.rule_id,
            name,
            kind,
            e.subject,
            e.state,
            e.value,
            e.threshold,
            e.message,
            utc(e.first_seen_at),
            utc(e.last_seen_at),
            _maybe(e.resolved_at),
            _maybe(e.last_notified_at),
            e.notifications,
            e.notice,
            tuple(e.pending),
            dict(e.deliveries),
        )
        for e, name, kind in rows[:limit]
    ]
    more = len(rows) > limit
    return EventPage(views, views[-1].id if more and views else None, int(open_count))
