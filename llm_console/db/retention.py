"""Retention cleanup: old request rows and spans, old bodies, old rollups, old feedback scores; each run is
recorded.

Deletes go in small chunks (by primary key) so neither database holds a long write lock while the
gateway's log writer is inserting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, desc, insert, select, update
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore, MaintenanceRun, RequestLog, Span
from llm_console.db.queries.filters import utc
from llm_console.db.rollups import usage_rollups

R = RequestLog.__table__  # type: ignore[attr-defined]
S = Span.__table__  # type: ignore[attr-defined]
M = MaintenanceRun.__table__  # type: ignore[attr-defined]
F = FeedbackScore.__table__  # type: ignore[attr-defined]
JOB = "retention"
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    request_days: float
    body_days: float
    minute_rollup_days: float
    rollup_days: float
    feedback_days: float = 400.0  # scores (and their comments) are read by the analytics like rollups


@dataclass(frozen=True, slots=True)
class RetentionRun:
    started_at: datetime
    duration_ms: float
    status: str
    requests: int = 0
    spans: int = 0
    bodies: int = 0
    rollups: int = 0
    feedback: int = 0
    error: str = ""


def _delete_requests(engine: Engine, before: datetime) -> tuple[int, int]:
    requests = spans = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(select(R.c.id).where(R.c.created_at < before).limit(CHUNK)).scalars().all()
            if not ids:
                return requests, spans
            spans += conn.execute(delete(S).where(S.c.request_id.in_(ids))).rowcount or 0
            requests += conn.execute(delete(R).where(R.c.id.in_(ids))).rowcount or 0


def _drop_bodies(engine: Engine, before: datetime) -> int:
    cleared = 0
    while True:
        with engine.begin() as conn:
            ids = (
                conn.execute(
                    select(R.c.id)
                    .where(R.c.created_at < before)
                    .where((R.c.request_body.is_not(None)) | (R.c.response_body.is_not(None)))
                    .limit(CHUNK)
                )
                .scalars()
                .all()
            )
            if not ids:
                return cleared
            cleared += (
                conn.execute(update(R).where(R.c.id.in_(ids)).values(request_body=None, response_body=None)).rowcount
                or 0
            )


def _delete_feedback(engine: Engine, before: datetime) -> int:
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(select(F.c.id).where(F.c.created_at < before).limit(CHUNK)).scalars().all()
            if not ids:
                return removed
            removed += conn.execute(delete(F).where(F.c.id.in_(ids))).rowcount or 0


def _delete_rollups(engine: Engine, grains: tuple[str, ...], before: datetime) -> int:
    T = usage_rollups
    with engine.begin() as conn:
        return conn.execute(delete(T).where(T.c.grain.in_(grains), T.c.bucket < before)).rowcount or 0


def run_cleanup(engine: Engine, policy: RetentionPolicy, now: datetime) -> RetentionRun:
    """Apply `policy` as of `now` and record the run (also when it fails)."""
    now = utc(now)
    started = time.perf_counter()
    counts = {"requests": 0, "spans": 0, "bodies": 0, "rollups": 0, "feedback": 0}
    status, error = "ok", ""
    try:
        counts["requests"], counts["spans"] = _delete_requests(engine, now - timedelta(days=policy.request_days))
        counts["bodies"] = _drop_bodies(engine, now - timedelta(days=policy.body_days))
        counts["rollups"] = _delete_rollups(engine, ("m",), now - timedelta(days=policy.minute_rollup_days))
        counts["rollups"] += _delete_rollups(engine, ("h", "d"), now - timedelta(days=policy.rollup_days))
        counts["feedback"] = _delete_feedback(engine, now - timedelta(days=policy.feedback_days))
    except Exception as exc:  # recorded and shown; the next run tries again
        status, error = "error", f"{type(exc).__name__}: {str(exc)[:300]}"
    duration = (time.perf_counter() - started) * 1000
    run = RetentionRun(now, round(duration, 1), status, error=error, **counts)
    detail = {**counts, "error": error} if error else dict(counts)
    with engine.begin() as conn:
        conn.execute(
            insert(M).values(job=JOB, started_at=now, duration_ms=run.duration_ms, status=status, detail=detail)
        )
    return run


def last_runs(engine: Engine, limit: int = 10) -> list[RetentionRun]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(M.c.started_at, M.c.duration_ms, M.c.status, M.c.detail)
            .where(M.c.job == JOB)
            .order_by(desc(M.c.started_at), desc(M.c.id))
            .limit(limit)
        ).all()
    out = []
    for r in rows:
        d = dict(r.detail or {})
        out.append(
            RetentionRun(
                utc(r.started_at),
                float(r.duration_ms),
                r.status,
                requests=int(d.get("requests", 0)),
                spans=int(d.get("spans", 0)),
                bodies=int(d.get("bodies", 0)),
                rollups=int(d.get("rollups", 0)),
                feedback=int(d.get("feedback", 0)),
                error=str(d.get("error", "")),
            )
        )
    return out
