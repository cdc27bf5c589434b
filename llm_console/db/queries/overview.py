"""Overview figures from the per-minute rollups; the latest requests from the log's time index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from llm_console.db.models import LATENCY_BUCKETS_MS, RequestLog, UsageMinute


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    avg_latency_ms: float
    p95_latency_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Point:
    minute: datetime
    requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class RecentRequest:
    id: str
    created_at: datetime
    alias: str
    status: str
    status_code: int
    tokens: int
    cost_usd: float
    latency_ms: float
    stream: bool


def percentile_from_hist(hist: list[int], q: float) -> float:
    """Approximate percentile `q` (0..1) from counts per LATENCY_BUCKETS_MS bucket, interpolating inside."""
    total = sum(hist)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = LATENCY_BUCKETS_MS[i - 1] if i > 0 else 0.0
            upper = LATENCY_BUCKETS_MS[i] if i < len(LATENCY_BUCKETS_MS) else LATENCY_BUCKETS_MS[-1] * 2
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return float(LATENCY_BUCKETS_MS[-1])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def summary(engine: Engine, since: datetime) -> Summary:
    t = UsageMinute.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(t.c.requests), 0),
                func.coalesce(func.sum(t.c.errors), 0),
                func.coalesce(func.sum(t.c.prompt_tokens), 0),
                func.coalesce(func.sum(t.c.completion_tokens), 0),
                func.coalesce(func.sum(t.c.cost_usd), 0.0),
                func.coalesce(func.sum(t.c.latency_ms_sum), 0.0),
            ).where(t.c.bucket >= since)
        ).one()
        hist = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for (h,) in conn.execute(select(t.c.latency_hist).where(t.c.bucket >= since)):
            for i, count in enumerate(h or ()):
                if i < len(hist):
                    hist[i] += count
    requests, errors, prompt, completion, cost, latency_sum = row
    return Summary(
        requests=int(requests),
        errors=int(errors),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        cost_usd=float(cost),
        avg_latency_ms=float(latency_sum) / requests if requests else 0.0,
        p95_latency_ms=percentile_from_hist(hist, 0.95),
    )


def requests_per_minute(engine: Engine, now: datetime, minutes: int = 60) -> list[Point]:
    """One point per minute for the last `minutes`, zero-filled."""
    t = UsageMinute.__table__  # type: ignore[attr-defined]
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.bucket, func.sum(t.c.requests), func.sum(t.c.errors))
            .where(t.c.bucket >= start)
            .group_by(t.c.bucket)
        ).all()
    by_minute = {_aware(b): (int(r), int(e)) for b, r, e in rows}
    return [Point(m, *by_minute.get(m, (0, 0))) for m in (start + timedelta(minutes=i) for i in range(minutes))]


def latest_requests(engine: Engine, limit: int = 15) -> list[RecentRequest]:
    t = RequestLog.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.c.id,
                t.c.created_at,
                t.c.alias,
                t.c.status,
                t.c.status_code,
                t.c.prompt_tokens,
                t.c.completion_tokens,
                t.c.cost_usd,
                t.c.latency_ms,
                t.c.stream,
            )
            .order_by(t.c.created_at.desc())
            .limit(limit)
        ).all()
    return [
        RecentRequest(
            r.id,
            _aware(r.created_at),
            r.alias,
            r.status,
            r.status_code,
            r.prompt_tokens + r.completion_tokens,
            r.cost_usd,
            r.latency_ms,
            r.stream,
        )
        for r in rows
    ]
