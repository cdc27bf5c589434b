"""Export status shared by every process: counts added with one UPDATE per sink every few seconds.

Each process keeps its own `SinkCounters` (touched by the export worker and the SDKs' sender threads) and
adds what changed to the sink's `telemetry_status` row; the console reads the row. Counts are of gateway
calls, not spans: a call is exported when the batch holding its root span was accepted, dropped when it
never left (queue full, the sender backed up) or its batch was refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from llm_console.db.telemetry_tables import TelemetryStatus

MAX_ERROR_CHARS = 500
_STATUS = TelemetryStatus.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SinkStatus:
    """How a sink is doing, as the Telemetry page shows it."""

    state: str  # off | ok | error | waiting
    last_ok_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    exported: int
    dropped: int


@dataclass(frozen=True, slots=True)
class Delta:
    """What one process saw since it last wrote: counts to add, its newest success and error."""

    exported: int = 0
    dropped: int = 0
    last_ok_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.exported or self.dropped or self.last_ok_at or self.last_error_at)


class SinkCounters:
    """Thread-safe tallies for one sink in this process, taken (and reset) by each status write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delta = Delta()
        self.settled_spans = 0  # spans the sender finished with, accepted or not (for the backlog bound)

    def exported(self, calls: int, spans: int) -> None:
        now = datetime.now(UTC)
        with self._lock:
            d = self._delta
            self._delta = Delta(d.exported + calls, d.dropped, now, d.last_error, d.last_error_at)
            self.settled_spans += spans

    def failed(self, calls: int, spans: int, message: str) -> None:
        now = datetime.now(UTC)
        with self._lock:
            d = self._delta
            self._delta = Delta(d.exported, d.dropped + calls, d.last_ok_at, message[:MAX_ERROR_CHARS], now)
            self.settled_spans += spans

    def dropped(self, calls: int, message: str = "") -> None:
        now = datetime.now(UTC)
        with self._lock:
            d = self._delta
            if message:
                self._delta = Delta(d.exported, d.dropped + calls, d.last_ok_at, message[:MAX_ERROR_CHARS], now)
            else:
                self._delta = Delta(d.exported, d.dropped + calls, d.last_ok_at, d.last_error, d.last_error_at)

    def take(self) -> Delta:
        with self._lock:
            delta, self._delta = self._delta, Delta()
        return delta

    def restore(self, delta: Delta) -> None:
        """Put back a delta whose write failed, so the next write carries it."""
        with self._lock:
            d = self._delta
            newer_error = d.last_error_at is not None and (
                delta.last_error_at is None or d.last_error_at >= delta.last_error_at
            )
            self._delta = Delta(
                d.exported + delta.exported,
                d.dropped + delta.dropped,
                max((t for t in (d.last_ok_at, delta.last_ok_at) if t is not None), default=None),
                d.last_error if newer_error else delta.last_error,
                d.last_error_at if newer_error else delta.last_error_at,
            )


def _add(conn: Connection, sink: str, delta: Delta) -> int:
    col = _STATUS.c
    values: dict[str, object] = {"exported": col.exported + delta.exported, "dropped": col.dropped + delta.dropped}
    if delta.last_ok_at is not None:
        newer = or_(col.last_ok_at.is_(None), col.last_ok_at < delta.last_ok_at)
        values["last_ok_at"] = case((newer, delta.last_ok_at), else_=col.last_ok_at)
    if delta.last_error_at is not None:
        newer = or_(col.last_error_at.is_(None), col.last_error_at < delta.last_error_at)
        values["last_error"] = case((newer, delta.last_error), else_=col.last_error)
        values["last_error_at"] = case((newer, delta.last_error_at), else_=col.last_error_at)
    return conn.execute(update(_STATUS).where(col.sink == sink).values(values)).rowcount


def write_status(engine: Engine, deltas: dict[str, Delta]) -> None:
    """Add each sink's delta to its row (created when a migration-less database lacks it)."""
    deltas = {sink: d for sink, d in deltas.items() if not d.empty}
    if not deltas:
        return
    with engine.begin() as conn:
        for sink, delta in deltas.items():
            if _add(conn, sink, delta):
                continue
            try:
                with conn.begin_nested():
                    conn.execute(insert(_STATUS).values(sink=sink, exported=0, dropped=0, last_error=""))
            except IntegrityError:  # another process created it meanwhile
                pass
            _add(conn, sink, delta)


def read_status(engine: Engine) -> dict[str, TelemetryStatus]:
    with engine.connect() as conn:
        rows = conn.execute(select(_STATUS)).all()
    return {r.sink: TelemetryStatus.model_validate(r._mapping) for r in rows}


def as_utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def sink_status(row: TelemetryStatus | None, *, active: bool, since: datetime | None) -> SinkStatus:
    """The state a sink is in: off unless configured and enabled; outcomes older than the last save
    (`since`) no longer count, so a changed sink says "waiting" until its first export or error."""
    ok_at = as_utc(row.last_ok_at) if row else None
    error_at = as_utc(row.last_error_at) if row else None
    since = as_utc(since)
    fresh_ok = ok_at if ok_at is not None and (since is None or ok_at >= since) else None
    fresh_error = error_at if error_at is not None and (since is None or error_at >= since) else None
    if not active:
        state = "off"
    elif fresh_error is not None and (fresh_ok is None or fresh_error > fresh_ok):
        state = "error"
    elif fresh_ok is not None:
        state = "ok"
    else:
        state = "waiting"
    return SinkStatus(
        state=state,
        last_ok_at=ok_at,
        last_error=row.last_error if row else "",
        last_error_at=error_at,
        exported=row.exported if row else 0,
        dropped=row.dropped if row else 0,
    )
