"""Writes batches of gateway log records: request rows, spans and per-minute rollups, in one transaction."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from llm_console.db.models import LATENCY_BUCKETS_MS, RequestLog, Span, UsageMinute
from llm_console.db.records import LogRecord

RollupKey = tuple[datetime, str, int, int, int, int]


@dataclass(slots=True)
class _Agg:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms_sum: float = 0.0
    ttfb_ms_sum: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))


def latency_bucket(latency_ms: float) -> int:
    """Index into LATENCY_BUCKETS_MS (upper bounds); the last slot is the overflow."""
    return bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)


def aggregate(records: Sequence[LogRecord]) -> dict[RollupKey, _Agg]:
    out: dict[RollupKey, _Agg] = {}
    for r in records:
        key = (
            r.created_at.replace(second=0, microsecond=0),
            r.alias,
            r.deployment_id or 0,
            r.key_id or 0,
            r.team_id or 0,
            r.user_id or 0,
        )
        agg = out.get(key)
        if agg is None:
            agg = out[key] = _Agg()
        agg.requests += 1
        agg.errors += r.status != "ok"
        agg.prompt_tokens += r.prompt_tokens
        agg.completion_tokens += r.completion_tokens
        agg.cost_usd += r.cost_usd
        agg.latency_ms_sum += r.latency_ms
        agg.ttfb_ms_sum += r.ttfb_ms or 0.0
        agg.hist[latency_bucket(r.latency_ms)] += 1
    return out


def _insert_ignore(conn: Connection, values: dict[str, object]) -> None:
    table = UsageMinute.__table__  # type: ignore[attr-defined]
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    conn.execute(stmt)


def _merge_rollups(conn: Connection, aggs: dict[RollupKey, _Agg]) -> None:
    """Insert-if-missing then lock-and-add, so concurrent writers on either database never lose counts."""
    t = UsageMinute.__table__  # type: ignore[attr-defined]
    for (bucket, alias, dep, key, team, user), agg in sorted(aggs.items(), key=lambda kv: kv[0]):
        dims = {"bucket": bucket, "alias": alias, "deployment_id": dep, "key_id": key, "team_id": team, "user_id": user}
        _insert_ignore(conn, {**dims, "latency_hist": [0] * len(agg.hist)})
        where = [t.c[name] == value for name, value in dims.items()]
        row = conn.execute(select(t).where(*where).with_for_update()).mappings().one()
        old_hist = list(row["latency_hist"] or []) + [0] * (len(agg.hist) - len(row["latency_hist"] or []))
        conn.execute(
            update(t)
            .where(t.c.id == row["id"])
            .values(
                requests=row["requests"] + agg.requests,
                errors=row["errors"] + agg.errors,
                prompt_tokens=row["prompt_tokens"] + agg.prompt_tokens,
                completion_tokens=row["completion_tokens"] + agg.completion_tokens,
                cost_usd=row["cost_usd"] + agg.cost_usd,
                latency_ms_sum=row["latency_ms_sum"] + agg.latency_ms_sum,
                ttfb_ms_sum=row["ttfb_ms_sum"] + agg.ttfb_ms_sum,
                latency_hist=[a + b for a, b in zip(old_hist, agg.hist, strict=True)],
            )
        )


def existing_ids(engine: Engine, ids: Sequence[str]) -> set[str]:
    t = RequestLog.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return set(conn.execute(select(t.c.id).where(t.c.id.in_(list(ids)))).scalars())


def write_batch(engine: Engine, records: Sequence[LogRecord]) -> None:
    """Write `records` atomically: all rows, spans and rollup increments, or nothing."""
    if not records:
        return
    spans = [
        {
            "request_id": r.id,
            "name": s.name,
            "start_ms": s.start_ms,
            "duration_ms": s.duration_ms,
            "status": s.status,
            "attributes": s.attributes,
        }
        for r in records
        for s in r.spans
    ]
    with engine.begin() as conn:
        conn.execute(insert(RequestLog.__table__), [r.row() for r in records])  # type: ignore[attr-defined]
        if spans:
            conn.execute(insert(Span.__table__), spans)  # type: ignore[attr-defined]
        _merge_rollups(conn, aggregate(records))
