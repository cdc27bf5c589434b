"""write_batch stores rows, spans and rollups atomically, and rollups add up across batches."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

import llm_console.gateway  # noqa: F401  (first, to dodge the import cycle: see test_logstore_imports_on_its_own)
from llm_console.db.engine import make_engine
from llm_console.db.logstore import existing_ids, write_batch
from llm_console.db.models import RequestLog, Span
from llm_console.db.queries.usage import totals
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.db.rollups import LAT_COLS, LATENCY_BOUNDS_MS, TTFB_COLS, aggregate, usage_rollups
from llm_console.db.rollups import bucket_index as latency_bucket
from llm_console.db.rollups import percentile as percentile_from_hist

from .conftest import upgrade

MINUTE = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


def record(
    *,
    at: datetime = MINUTE,
    alias: str = "m",
    status: str = "ok",
    latency_ms: float = 100.0,
    ttfb_ms: float | None = 10.0,
    prompt: int = 10,
    completion: int = 5,
    cost: float = 0.001,
    key_id: int | None = 1,
    spans: int = 2,
) -> LogRecord:
    return LogRecord(
        id=str(uuid.uuid4()),
        created_at=at,
        endpoint="/v1/chat/completions",
        alias=alias,
        model="upstream",
        deployment_id=3,
        key_id=key_id,
        status=status,
        status_code=200 if status == "ok" else 502,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        latency_ms=latency_ms,
        ttfb_ms=ttfb_ms,
        request_body='{"model": "m"}',
        spans=[SpanRecord(f"step{i}", float(i), 1.5, attributes={"i": i}) for i in range(spans)],
    )


def rollups(engine: Engine, grain: str = "m", dim: str = "all") -> list[dict[str, object]]:
    """Rollup rows of one grain and dimension, each with its latency histogram as `hist`."""
    t = usage_rollups
    with engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                select(t).where(t.c.grain == grain, t.c.dim == dim).order_by(t.c.bucket, t.c.value)
            ).mappings()
        ]
    for r in rows:
        r["hist"] = [r[c] for c in LAT_COLS]
        r["ttfb_hist"] = [r[c] for c in TTFB_COLS]
    return rows


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(model.__table__)).all())  # type: ignore[attr-defined]


def test_write_batch_writes_rows_spans_and_a_rollup(engine: Engine) -> None:
    recs = [record(latency_ms=40), record(latency_ms=300, status="error", cost=0.5, ttfb_ms=None, spans=3)]

    write_batch(engine, recs)

    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(RequestLog.__table__))}  # type: ignore[attr-defined]
        spans = conn.execute(select(Span.__table__).where(Span.__table__.c.request_id == recs[1].id)).all()  # type: ignore[attr-defined]
    assert set(rows) == {r.id for r in recs}
    stored = rows[recs[1].id]
    assert (stored.status, stored.status_code, stored.cost_usd, stored.ttfb_ms) == ("error", 502, 0.5, None)
    assert (stored.prompt_tokens, stored.completion_tokens, stored.request_body) == (10, 5, '{"model": "m"}')
    assert sorted((s.name, s.start_ms, s.duration_ms, s.attributes["i"]) for s in spans) == [
        ("step0", 0.0, 1.5, 0),
        ("step1", 1.0, 1.5, 1),
        ("step2", 2.0, 1.5, 2),
    ]
    assert count(engine, Span) == 5
    (roll,) = rollups(engine)
    assert [(r["value"], r["requests"]) for r in rollups(engine, "m", "alias")] == [("m", 2)]
    assert [(r["value"], r["requests"]) for r in rollups(engine, "h", "key")] == [("1", 2)]
    assert [(r["value"], r["requests"]) for r in rollups(engine, "d", "deployment")] == [("3", 2)]
    assert rollups(engine, "m", "key") == []  # keys are rolled up per hour and day only
    assert (roll["requests"], roll["errors"]) == (2, 1)
    assert (roll["prompt_tokens"], roll["completion_tokens"]) == (20, 10)
    assert roll["cost_usd"] == pytest.approx(0.501)
    assert roll["latency_ms_sum"] == pytest.approx(340.0)
    assert roll["ttfb_ms_sum"] == pytest.approx(10.0)
    hist = roll["hist"]
    assert isinstance(hist, list) and len(hist) == len(LATENCY_BOUNDS_MS) + 1
    assert hist[latency_bucket(40)] == 1 and hist[latency_bucket(300)] == 1 and sum(hist) == 2
    assert roll["ttfb_count"] == 1 and sum(roll["ttfb_hist"]) == 1  # type: ignore[arg-type]


def test_two_batches_in_the_same_minute_add_up(engine: Engine) -> None:
    write_batch(engine, [record(latency_ms=4, cost=0.25), record(latency_ms=4, status="error")])
    write_batch(engine, [record(at=MINUTE + timedelta(seconds=59), latency_ms=70_000, prompt=1, completion=1)])

    (roll,) = rollups(engine)
    assert (roll["requests"], roll["errors"]) == (3, 1)
    assert (roll["prompt_tokens"], roll["completion_tokens"]) == (21, 11)
    assert roll["cost_usd"] == pytest.approx(0.25 + 0.001 + 0.001)
    assert roll["latency_ms_sum"] == pytest.approx(70_008)
    assert roll["ttfb_ms_sum"] == pytest.approx(30.0)
    hist = roll["hist"]
    assert hist[0] == 2 and hist[-1] == 1 and sum(hist) == 3  # type: ignore[index,arg-type]
    assert count(engine, RequestLog) == 3


def test_rollups_split_by_minute_and_dimension(engine: Engine) -> None:
    write_batch(
        engine,
        [
            record(),
            record(at=MINUTE + timedelta(minutes=1)),
            record(alias="other"),
            record(key_id=None),
        ],
    )

    assert [(r["bucket"].minute, r["requests"]) for r in rollups(engine)] == [(15, 3), (16, 1)]  # type: ignore[attr-defined]
    assert [(r["value"], r["requests"]) for r in rollups(engine, "h", "alias")] == [("m", 3), ("other", 1)]
    assert [(r["value"], r["requests"]) for r in rollups(engine, "h", "key")] == [("", 1), ("1", 3)]


def test_a_failed_batch_writes_nothing(engine: Engine) -> None:
    first = record()
    write_batch(engine, [first])
    duplicate = record()
    duplicate.id = first.id  # the primary key clash makes the whole batch fail

    with pytest.raises(IntegrityError):
        write_batch(engine, [record(), duplicate])

    assert count(engine, RequestLog) == 1
    assert count(engine, Span) == 2
    (roll,) = rollups(engine)
    assert roll["requests"] == 1


def test_empty_batch_is_a_no_op(engine: Engine) -> None:
    write_batch(engine, [])
    assert count(engine, RequestLog) == 0
    assert rollups(engine) == []


def test_existing_ids(engine: Engine) -> None:
    recs = [record(), record()]
    write_batch(engine, recs)
    assert existing_ids(engine, [recs[0].id, "missing", recs[1].id]) == {recs[0].id, recs[1].id}
    assert existing_ids(engine, []) == set()


def test_totals_read_the_rollups(engine: Engine) -> None:
    write_batch(engine, [record(latency_ms=80), record(latency_ms=80), record(latency_ms=120, status="error")])

    s = totals(engine, MINUTE - timedelta(hours=1), MINUTE + timedelta(hours=1))

    assert (s.requests, s.errors, s.prompt_tokens, s.completion_tokens) == (3, 1, 30, 15)
    assert s.avg_latency_ms == pytest.approx(280 / 3)
    assert s.error_rate == pytest.approx(1 / 3)
    assert 100 < s.latency_p(0.95) <= 150  # the 95th percentile falls in the 100-150 ms bucket
    assert totals(engine, MINUTE + timedelta(minutes=1), MINUTE + timedelta(hours=1)).requests == 0


@pytest.mark.parametrize(
    ("latency", "bucket"),
    [
        (-1.0, 0),
        (0.0, 0),
        (5.0, 0),  # upper bounds are inclusive
        (5.0001, 1),
        (10.0, 1),
        (99.9, 6),
        (100.0, 6),
        (100.1, 7),
        (60_000.0, len(LATENCY_BOUNDS_MS) - 1),
        (60_000.1, len(LATENCY_BOUNDS_MS)),  # the overflow slot
        (1e12, len(LATENCY_BOUNDS_MS)),
    ],
)
def test_latency_bucket_boundaries(latency: float, bucket: int) -> None:
    assert latency_bucket(latency) == bucket


def test_every_bucket_upper_bound_lands_in_its_own_bucket() -> None:
    for i, upper in enumerate(LATENCY_BOUNDS_MS):
        assert latency_bucket(upper) == i
        assert latency_bucket(upper + 0.001) == i + 1


def test_aggregate_counts_non_ok_statuses_as_errors() -> None:
    aggs = aggregate([record(status="ok"), record(status="error"), record(status="incomplete")])
    agg = aggs[("m", "all", MINUTE, "")]
    assert (agg.requests, agg.errors) == (3, 2)


def hist_with(**counts: int) -> list[int]:
    hist = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for index, n in counts.items():
        hist[int(index.removeprefix("b"))] = n
    return hist


def test_percentile_of_an_empty_histogram_is_zero() -> None:
    assert percentile_from_hist(hist_with(), 0.95) == 0.0


def test_percentile_interpolates_inside_a_bucket() -> None:
    hist = hist_with(b6=10)  # ten requests between 75 and 100 ms
    assert percentile_from_hist(hist, 0.5) == pytest.approx(87.5)
    assert percentile_from_hist(hist, 0.95) == pytest.approx(98.75)
    assert percentile_from_hist(hist, 1.0) == pytest.approx(100.0)


def test_percentile_picks_the_right_bucket() -> None:
    hist = hist_with(b0=90, b8=10)  # 90 fast (<= 5 ms), 10 between 150 and 200 ms
    assert percentile_from_hist(hist, 0.5) == pytest.approx(5 * 50 / 90)
    assert percentile_from_hist(hist, 0.9) == pytest.approx(5.0)
    assert percentile_from_hist(hist, 0.95) == pytest.approx(150 + 50 * 0.5)
    assert percentile_from_hist(hist, 0.99) == pytest.approx(150 + 50 * 0.9)


def test_percentile_in_the_overflow_bucket_stays_finite() -> None:
    hist = hist_with(**{f"b{len(LATENCY_BOUNDS_MS)}": 4})
    p = percentile_from_hist(hist, 0.5)
    assert LATENCY_BOUNDS_MS[-1] <= p <= 2 * LATENCY_BOUNDS_MS[-1]


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    eng = make_engine(postgres_url)
    yield eng
    eng.dispose()


@pytest.mark.postgres
def test_rollups_add_up_on_postgres(pg_engine: Engine) -> None:
    write_batch(pg_engine, [record(latency_ms=4), record(latency_ms=300, status="error")])
    write_batch(pg_engine, [record(latency_ms=4, cost=0.5)])

    (roll,) = rollups(pg_engine)
    assert (roll["requests"], roll["errors"], roll["prompt_tokens"]) == (3, 1, 30)
    assert roll["cost_usd"] == pytest.approx(0.502)
    assert roll["hist"][0] == 2  # type: ignore[index]
    assert count(pg_engine, RequestLog) == 3
    assert count(pg_engine, Span) == 6


def test_logstore_imports_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import llm_console.db.logstore"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
