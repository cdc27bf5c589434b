"""Browsing the audit trail: filters from the URL, keyset pages newest first, before/after masked again.

Events are written already masked (services/audit.py); they are masked once more on the way out, at every
depth, so a secret that slipped into an old event or a nested field still never reaches the browser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, utcnow
from llm_console.db.queries.filters import utc
from llm_console.services.audit import mask

PAGE_SIZE = 50
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
ALL_TIME = "all"
PARAMS = ("actor", "action", "type", "target", "range", "from", "to")
MAX_VALUE = 2000
MAX_OPTIONS = 200


@dataclass(frozen=True, slots=True)
class AuditFilters:
    actor: str = ""
    action: str = ""  # a prefix: "user." matches user.role, user.create, ...
    target_type: str = ""
    target_id: str = ""
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedAudit:
    filters: AuditFilters
    range_name: str
    params: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def query_string(self, **changes: str | None) -> str:
        merged = dict(self.params)
        for name, value in changes.items():
            if value:
                merged[name] = value
            else:
                merged.pop(name, None)
        return urlencode([(k, merged[k]) for k in (*PARAMS, "cursor", "id") if k in merged])


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    created_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditEntry]
    next_cursor: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class DiffLine:
    field: str
    before: str
    after: str
    change: str  # added | removed | changed | same


def _when(raw: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return utc(value)


def parse_params(raw: Mapping[str, str], now: datetime | None = None) -> ParsedAudit:
    """Validated filters from the page's query; unusable values are dropped with a readable message."""
    now = now or utcnow()
    errors: list[str] = []
    p = {k: str(raw[k])[:320] for k in (*PARAMS, "cursor", "id") if raw.get(k)}
    for name in [k for k, v in p.items() if not v.isprintable()]:
        errors.append(f"Ignored {name}: it contains control characters.")
        del p[name]
    start: datetime | None = None
    end: datetime | None = None
    range_name = p.get("range", ALL_TIME)
    if range_name == "custom" or "from" in p:
        start, end = _when(p.get("from", "")), _when(p["to"]) if p.get("to") else now
        if start is None or end is None or start >= end:
            errors.append("Ignored the custom range: give a start before the end, like 2026-11-30T14:00.")
            start, end, range_name = None, None, ALL_TIME
            p.pop("from", None), p.pop("to", None)
        else:
            range_name = "custom"
            p["from"], p["to"] = start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")
    elif range_name in RANGES:
        start = now - RANGES[range_name]
    elif range_name != ALL_TIME:
        errors.append(f"Unknown range {range_name[:20]!r}: use 1h, 24h, 7d, 30d or all.")
        range_name = ALL_TIME
    p["range"] = range_name
    if range_name == ALL_TIME:
        del p["range"]
    for name in ("cursor", "id"):
        if name in p and not (p[name].isascii() and p[name].isdigit() and len(p[name]) <= 18):
            errors.append(f"Ignored {name}: expected a number.")
            del p[name]
    filters = AuditFilters(
        actor=p.get("actor", ""),
        action=p.get("action", ""),
        target_type=p.get("type", ""),
        target_id=p.get("target", ""),
        start=start,
        end=end,
    )
    return ParsedAudit(filters, range_name, p, errors)


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(
        row.id or 0,
        utc(row.created_at),
        row.actor,
        row.action,
        row.target_type,
        row.target_id,
        mask(row.before),
        mask(row.after),
    )


def browse(engine: Engine, filters: AuditFilters, *, cursor: str = "", limit: int = PAGE_SIZE) -> AuditPage:
    """One page of events matching `filters`, newest first; `cursor` is the previous page's next_cursor."""
    limit = max(1, min(int(limit), 500))
    stmt = select(AuditEvent)
    if filters.actor:
        stmt = stmt.where(func.lower(AuditEvent.actor) == filters.actor.lower())
    if filters.action:
        stmt = stmt.where(col(AuditEvent.action).startswith(filters.action, autoescape=True))
    if filters.target_type:
        stmt = stmt.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        stmt = stmt.where(AuditEvent.target_id == filters.target_id)
    if filters.start is not None:
        stmt = stmt.where(AuditEvent.created_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(AuditEvent.created_at < filters.end)
    if cursor.isascii() and cursor.isdigit() and len(cursor) <= 18:
        stmt = stmt.where(col(AuditEvent.id) < int(cursor))
    with session(engine) as s:
        rows = s.exec(stmt.order_by(col(AuditEvent.id).desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage([_entry(r) for r in rows], str(rows[-1].id) if more and rows else "")


def get_event(engine: Engine, event_id: int) -> AuditEntry | None:
    with session(engine) as s:
        row = s.get(AuditEvent, event_id)
    return None if row is None else _entry(row)


def filter_options(engine: Engine) -> dict[str, list[str]]:
    """The actors and target types that occur, for the filter selects (at most 200 each)."""
    with session(engine) as s:
        actors = s.exec(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor).limit(MAX_OPTIONS)).all()
        types = s.exec(
            select(AuditEvent.target_type).distinct().order_by(AuditEvent.target_type).limit(MAX_OPTIONS)
        ).all()
    return {"actor": list(actors), "type": list(types)}


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[DiffLine]:
    """Field by field, before → after (both masked again here), in the order the fields first appear."""
    old, new = mask(before) or {}, mask(after) or {}
    lines = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in new:
            change = "removed"
        elif key not in old:
            change = "added"
        else:
            change = "same" if old[key] == new[key] else "changed"
        lines.append(DiffLine(str(key), _text(old.get(key)), _text(new.get(key)), change))
    return lines
