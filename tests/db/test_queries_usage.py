"""Usage aggregates from the rollups, on SQLite and PostgreSQL, against figures worked out by hand."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from llm_console.db.queries.usage import (
    aligned,
    breakdown,
    bucket_starts,
    choose_grain,
    counter_by_value,
    daily_cost,
    series,
    totals,
)
from llm_console.db.rollups import N_BUCKETS
from tests.db.seeding import at, backends_fixture, db_fixture, rec, scalar, write  # noqa: F401

H10 = at(4, 10)
H11 = at(4, 11)


def seed_boundary(db: Engine) -> None:
    """A at 10:59:59 (ok) and B at 11:00:00 (error), either side of the hour boundary."""
    write(
        db,
        rec(at(4, 10, 59, 59), prompt=100, completion=20, cost=0.25, latency=40, ttfb=10, key_id=7),
        rec(H11, status="error", prompt=10, completion=5, cost=0.5, latency=120, key_id=7),
    )


@pytest.mark.parametrize("grain", ["m", "h", "d", ""])
def test_the_boundary_second_belongs_to_the_next_bucket(db: Engine, grain: str) -> None:
    seed_boundary(db)
    before = totals(db, H10, H11, grain=grain or "h")
    after = totals(db, H11, at(4, 12), grain=grain or "h")
    if grain == "d":  # one day bucket holds both
        assert (before.requests, after.requests) == (2, 2)
        return
    assert (before.requests, before.errors, before.prompt_tokens, before.completion_tokens) == (1, 0, 100, 20)
    assert before.cost_usd == 0.25
    assert (after.requests, after.errors, after.prompt_tokens, after.completion_tokens) == (1, 1, 10, 5)
    assert after.cost_usd == 0.5


def test_minute_ranges_widen_to_whole_minutes(db: Engine) -> None:
    seed_boundary(db)
    assert totals(db, at(4, 10, 59), at(4, 11, 1)).requests == 2
    assert totals(db, at(4, 10, 59, 30), H11).requests == 1  # start widened back to 10:59
    assert totals(db, H10, at(4, 11, 0, 1)).requests == 2  # end widened forward to 11:01
    assert totals(db, at(4, 11, 0, 1), at(4, 11, 0, 2)).requests == 1  # inside 11:00's minute
    assert totals(db, at(4, 11, 1), at(4, 12)).requests == 0
    assert aligned(at(4, 10, 59, 30), at(4, 11, 0, 1), "m") == (at(4, 10, 59), at(4, 11, 1))
    assert aligned(H10, H11, "m") == (H10, H11)
    assert aligned(at(4, 10, 30), at(4, 11, 30), "h") == (H10, at(4, 12))
    assert aligned(at(4, 10, 30), at(4, 11, 30), "d") == (at(4), at(5))


def test_non_utc_bounds_are_the_same_instants(db: Engine) -> None:
    seed_boundary(db)
    plus2 = timezone(timedelta(hours=2))
    start, end = H10.astimezone(plus2), H11.astimezone(plus2)  # 12:00+02:00 .. 13:00+02:00
    assert totals(db, start, end).requests == 1
    assert totals(db, H10.replace(tzinfo=None), H11.replace(tzinfo=None)).requests == 1  # naive means UTC


@pytest.mark.parametrize(
    ("span", "dim", "grain"),
    [
        (timedelta(hours=1), "all", "m"),
        (timedelta(hours=48), "all", "m"),
        (timedelta(hours=48, seconds=1), "all", "h"),
        (timedelta(days=92), "alias", "h"),
        (timedelta(days=92, seconds=1), "alias", "d"),
        (timedelta(hours=1), "alias", "m"),
        (timedelta(hours=1), "key", "h"),
        (timedelta(hours=1), "user", "h"),
        (timedelta(hours=1), "team", "h"),
        (timedelta(hours=1), "embed_dims", "h"),
        (timedelta(days=100), "key", "d"),
    ],
)
def test_choose_grain(span: timedelta, dim: str, grain: str) -> None:
    assert choose_grain(H10, H10 + span, dim) == grain


def test_ranges_over_48_hours_read_hourly_rollups(db: Engine) -> None:
    write(db, rec(at(2, 10, 10), cost=0.5))
    with db.begin() as conn:  # without minute rows, only the hour rows can answer
        conn.execute(text("DELETE FROM usage_rollups WHERE grain = 'm'"))
    # 48.5 h starting at 10:30 reads hours: the start widens to 10:00, so the 10:10 record counts.
    assert totals(db, at(2, 10, 30), at(4, 11)).requests == 1
    # Exactly 48 h reads minutes, of which there are none now.
    assert totals(db, at(2, 10, 30), at(4, 10, 30)).requests == 0


def test_key_user_and_team_are_per_hour_only(db: Engine) -> None:
    write(db, rec(at(4, 10, 10), key_id=7, user_id=8, team_id=9, cost=0.25))
    assert scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE grain = 'm' AND dim IN ('key', 'user', 'team')") == 0
    # A 10:30-11:30 range for a key is answered per hour, so it covers 10:00-12:00 and the 10:10 record.
    for dim, value in (("key", "7"), ("user", "8"), ("team", "9")):
        t = totals(db, at(4, 10, 30), at(4, 11, 30), dim=dim, value=value)
        assert (t.requests, t.cost_usd) == (1, 0.25)
        assert totals(db, at(4, 10, 30), at(4, 11, 30), dim=dim, value="999").requests == 0
        assert totals(db, H10, H11, dim=dim, value=value, grain="m").requests == 0
    # Per minute, the alias still narrows to the minute: 10:30-11:30 misses 10:10.
    assert totals(db, at(4, 10, 30), at(4, 11, 30), dim="alias", value="gpt").requests == 0
    with pytest.raises(ValueError, match="not rolled up"):
        series(db, H10, H11, "m", dim="key")


LATENCIES = [3, 4, 8, 30, 30, 30, 30, 90, 180, 70_000]
TTFBS = [2, None, None, 12, None, 12, None, 400, None, None]
STATUSES = ["ok", "error", "ok", "ok", "incomplete", "ok", "ok", "ok", "error", "ok"]


def seed_ten(db: Engine) -> None:
    """Ten requests in 10:15 and 10:16, written in two batches."""
    records = [
        rec(
            at(4, 10, 15 + (i >= 6), i),
            latency=lat,
            ttfb=ttfb,
            status=status,
            stream=i % 2 == 0,
            prompt=10 * i,
            completion=i,
            cached=1,
            cost=0.125,
        )
        for i, (lat, ttfb, status) in enumerate(zip(LATENCIES, TTFBS, STATUSES, strict=True))
    ]
    write(db, *records[:6])
    write(db, *records[6:])


@pytest.mark.parametrize("grain", ["m", "h", "d"])
def test_totals_averages_and_percentiles(db: Engine, grain: str) -> None:
    seed_ten(db)

    t = totals(db, H10, H11, grain=grain)

    assert (t.requests, t.errors, t.stream_requests) == (10, 3, 5)  # incomplete counts as an error
    assert (t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.tokens) == (450, 45, 10, 495)
    assert t.cost_usd == 1.25 and t.cost_per_request == 0.125
    assert t.error_rate == 0.3
    # 3+4+8+4*30+90+180+70000 = 70405 over 10 requests; TTFB 2+12+12+400 = 426 over the 4 that had one.
    assert t.latency_ms_sum == 70_405 and t.avg_latency_ms == 7040.5
    assert (t.ttfb_ms_sum, t.ttfb_count, t.avg_ttfb_ms) == (426, 4, 106.5)
    # Latency histogram: <=5: 3,4 | 5-10: 8 | 20-35: 30 x4 | 75-100: 90 | 150-200: 180 | >60000: 70000.
    expected = [0] * N_BUCKETS
    expected[0], expected[1], expected[3], expected[6], expected[8], expected[25] = 2, 1, 4, 1, 1, 1
    assert list(t.lat_hist) == expected
    # p10: rank 1, bucket 0 (0..5 ms, 2 there, 0 before): 0 + 5 * 1/2 = 2.5
    assert t.latency_p(0.10) == pytest.approx(2.5)
    # p50: rank 5, bucket 3 (20..35, 4 there, 3 before): 20 + 15 * (5-3)/4 = 27.5
    assert t.latency_p(0.50) == pytest.approx(27.5)
    # p90: rank 9, bucket 8 (150..200, 1 there, 8 before): 150 + 50 * 1/1 = 200
    assert t.latency_p(0.90) == pytest.approx(200.0)
    # p95: rank 9.5, overflow (60000..120000, 1 there, 9 before): 60000 + 60000 * 0.5 = 90000
    assert t.latency_p(0.95) == pytest.approx(90_000.0)
    # p99: rank 9.9, overflow: 60000 + 60000 * 0.9 = 114000
    assert t.latency_p(0.99) == pytest.approx(114_000.0)
    # p0: rank 0 falls at the lower bound of the first non-empty bucket
    assert t.latency_p(0.0) == 0.0
    # TTFB histogram: 2 -> <=5, 12 and 12 -> 10..20, 400 -> 300..400.
    # p50: rank 2, bucket 10..20 (2 there, 1 before): 10 + 10 * (2-1)/2 = 15
    assert t.ttfb_p(0.5) == pytest.approx(15.0)
    # p95: rank 3.8, bucket 300..400 (1 there, 3 before): 300 + 100 * 0.8 = 380
    assert t.ttfb_p(0.95) == pytest.approx(380.0)


def test_an_empty_range_is_all_zeros(db: Engine) -> None:
    seed_ten(db)
    t = totals(db, at(5), at(6))
    assert (t.requests, t.cost_usd, t.error_rate, t.avg_latency_ms, t.avg_ttfb_ms) == (0, 0.0, 0.0, 0.0, 0.0)
    assert (t.latency_p(0.95), t.ttfb_p(0.5), t.cost_per_request) == (0.0, 0.0, 0.0)


def test_averages_when_no_request_had_a_ttfb(db: Engine) -> None:
    write(db, rec(at(4, 10, 1), latency=10, ttfb=None), rec(at(4, 10, 2), latency=30, ttfb=None, status="error"))
    t = totals(db, H10, H11)
    assert (t.avg_latency_ms, t.error_rate, t.ttfb_count, t.avg_ttfb_ms, t.ttfb_p(0.95)) == (20.0, 0.5, 0, 0.0, 0.0)


def test_two_batches_into_the_same_buckets_add_up(db: Engine) -> None:
    write(db, rec(at(4, 10, 5, 1), cost=0.5, prompt=3, key_id=1), rec(at(4, 10, 5, 2), cost=0.25, key_id=2))
    write(db, rec(at(4, 10, 5, 59), cost=0.125, prompt=4, status="error", key_id=1))
    t = totals(db, H10, H11)
    assert (t.requests, t.errors, t.prompt_tokens, t.cost_usd) == (3, 1, 7, 0.875)
    assert scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE grain = 'm' AND dim = 'all'") == 1
    assert [(v, x.requests, x.cost_usd) for v, x in breakdown(db, H10, H11, "key")] == [("1", 2, 0.625), ("2", 1, 0.25)]


def seed_aliases(db: Engine) -> None:
    """alias: requests, cost -> a: 2, 0.75 | b: 1, 1.0 | c: 4, 1.0 | d: 1, 0.125"""
    write(
        db,
        rec(at(4, 10, 1), alias="a", cost=0.5, latency=10),
        rec(at(4, 10, 2), alias="a", cost=0.25, latency=30),
        rec(at(4, 10, 3), alias="b", cost=1.0),
        *[rec(at(4, 10, 4), alias="c", cost=0.25, status="error" if i == 0 else "ok") for i in range(4)],
        rec(at(4, 10, 5), alias="d", cost=0.125),
    )


def test_breakdown_order_limit_and_values(db: Engine) -> None:
    seed_aliases(db)

    by_cost = [(v, t.requests, t.cost_usd) for v, t in breakdown(db, H10, H11, "alias")]
    assert by_cost == [("b", 1, 1.0), ("c", 4, 1.0), ("a", 2, 0.75), ("d", 1, 0.125)]  # ties by value
    assert [v for v, _ in breakdown(db, H10, H11, "alias", limit=2)] == ["b", "c"]
    assert [v for v, _ in breakdown(db, H10, H11, "alias", order_by="requests")] == ["c", "a", "b", "d"]
    assert [v for v, _ in breakdown(db, H10, H11, "alias", order_by="errors", limit=1)] == ["c"]
    assert [v for v, _ in breakdown(db, H10, H11, "alias", values=["d", "a", "zz"])] == ["a", "d"]
    a = dict(breakdown(db, H10, H11, "alias"))["a"]
    assert (a.avg_latency_ms, a.lat_hist[1], a.lat_hist[3]) == (20.0, 1, 1)  # 10 ms and 30 ms
    assert breakdown(db, at(5), at(6), "alias") == []
    with pytest.raises(ValueError, match="cannot order by"):
        breakdown(db, H10, H11, "alias", order_by="lat_00; DROP TABLE requests")


def test_breakdown_by_endpoint_stream_and_embedding_size(db: Engine) -> None:
    write(
        db,
        rec(at(4, 10, 1), endpoint="/v1/embeddings", embedding_dims=1536, cost=0.5),
        rec(at(4, 10, 2), endpoint="/v1/embeddings", embedding_dims=768, cost=0.25),
        rec(at(4, 10, 3), endpoint="/v1/embeddings", embedding_dims=1536, cost=0.5),
        rec(at(4, 10, 4), stream=True, cost=0.125),
    )
    assert [(v, t.requests) for v, t in breakdown(db, H10, H11, "endpoint")] == [
        ("/v1/embeddings", 3),
        ("/v1/chat/completions", 1),
    ]
    assert [(v, t.requests) for v, t in breakdown(db, H10, H11, "embed_dims")] == [("1536", 2), ("768", 1)]
    assert [(v, t.requests) for v, t in breakdown(db, H10, H11, "stream")] == [("0", 3), ("1", 1)]
    assert [(v, t.requests) for v, t in breakdown(db, H10, H11, "endpoint_alias", limit=1)] == [
        ("/v1/embeddings|gpt", 3)
    ]


def test_series_per_bucket_and_per_value(db: Engine) -> None:
    write(
        db,
        rec(at(4, 10, 1, 5), alias="a", cost=0.5),
        rec(at(4, 10, 1, 50), alias="b", cost=0.25, status="error"),
        rec(at(4, 10, 3), alias="a", cost=0.125),
        rec(at(4, 11, 30), alias="b", cost=1.0),
    )
    end = at(4, 10, 10)

    points = series(db, H10, end, "m")
    assert [(p.bucket, p.value, p.totals.requests, p.totals.errors) for p in points] == [
        (at(4, 10, 1), "", 2, 1),
        (at(4, 10, 3), "", 1, 0),
    ]
    assert all(p.bucket.tzinfo is not None for p in points)
    per_value = series(db, H10, end, "m", dim="alias", per_value=True)
    assert [(p.bucket, p.value, p.totals.cost_usd) for p in per_value] == [
        (at(4, 10, 1), "a", 0.5),
        (at(4, 10, 1), "b", 0.25),
        (at(4, 10, 3), "a", 0.125),
    ]
    only_a = series(db, H10, end, "m", dim="alias", value="a")
    assert [(p.bucket, p.totals.requests) for p in only_a] == [(at(4, 10, 1), 1), (at(4, 10, 3), 1)]
    hourly = series(db, at(4), at(5), "h")
    assert [(p.bucket, p.totals.requests, p.totals.cost_usd) for p in hourly] == [(H10, 3, 0.875), (H11, 1, 1.0)]

    # Zero-filled per minute: buckets 10:00 .. 10:09
    seen = {p.bucket: p.totals.requests for p in points}
    assert [seen.get(b, 0) for b in bucket_starts(H10, end, "m")] == [0, 2, 0, 1, 0, 0, 0, 0, 0, 0]


def test_bucket_starts() -> None:
    assert bucket_starts(at(4, 10, 0, 30), at(4, 10, 3), "m") == [at(4, 10, 0), at(4, 10, 1), at(4, 10, 2)]
    assert bucket_starts(H10, at(4, 10, 3, 1), "m") == [at(4, 10, m) for m in range(4)]
    assert bucket_starts(at(4, 22, 30), at(5, 1), "h") == [at(4, 22), at(4, 23), at(5, 0)]
    assert bucket_starts(at(1, 12), at(3), "d") == [at(1), at(2)]
    assert bucket_starts(H10, H10, "m") == []
    assert len(bucket_starts(at(4), at(5), "m")) == 1440


def test_daily_cost(db: Engine) -> None:
    write(
        db,
        rec(at(2, 23, 59, 59), cost=0.5, alias="a"),
        rec(at(3, 0, 0), cost=0.25, alias="a"),
        rec(at(3, 18), cost=0.25, alias="b"),
        rec(at(5), cost=8.0, alias="a"),
    )
    assert daily_cost(db, at(1), at(5)) == {at(2): 0.5, at(3): 0.5}
    assert daily_cost(db, at(1), at(6), dim="alias", value="a") == {at(2): 0.5, at(3): 0.25, at(5): 8.0}
    assert daily_cost(db, at(6), at(7)) == {}


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_concurrent_writers_lose_no_counts(db: Engine) -> None:
    """Two threads upsert the same rollup rows at once; every increment survives."""
    batches, per_batch = 20, 25
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            start.wait()
            for b in range(batches):
                records = [
                    rec(at(4, 10, 15, (b + i) % 60), key_id=thread, cost=0.5, latency=40, prompt=3, ttfb=12)
                    for i in range(per_batch)
                ]
                write(db, *records)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []

    n = 2 * batches * per_batch  # 1000 requests, all in 10:15
    for grain in ("m", "h", "d"):
        t = totals(db, H10, H11, grain=grain)
        assert (t.requests, t.prompt_tokens, t.cost_usd, t.latency_ms_sum) == (n, 3 * n, 0.5 * n, 40.0 * n)
        assert (t.lat_hist[4], t.ttfb_hist[2], t.ttfb_count) == (n, n, n)  # 40 ms: 35..50, 12 ms: 10..20
    assert [(v, t.requests) for v, t in breakdown(db, H10, H11, "key")] == [("1", n // 2), ("2", n // 2)]
    assert scalar(db, "SELECT COUNT(*) FROM requests") == n
    assert scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE grain = 'm' AND dim = 'all'") == 1


def test_results_are_utc(db: Engine) -> None:
    write(db, rec(at(4, 10, 1)))
    (point,) = series(db, H10, H11, "m")
    assert point.bucket.utcoffset() == timedelta(0) and point.bucket == at(4, 10, 1).astimezone(UTC)


def test_long_ranges_read_whole_days_from_day_rows_and_the_edges_from_hours(db: Engine) -> None:
    """3 days 13:30 .. 8 days 09:10: hours 13:00-24:00 on the 3rd, days 4-7, hours 00:00-10:00 on the 8th."""
    inside = [
        rec(at(3, 13, 45), cost=1.0, latency=40, key_id=1),  # the first (partial) day, from hour rows
        rec(at(5, 2), cost=2.0, latency=300, key_id=1),  # whole days, from day rows
        rec(at(6, 23, 59, 59), cost=4.0, latency=3000, key_id=2),
        rec(at(8, 9, 5), cost=8.0, latency=40, key_id=2),  # the last (partial) day, from hour rows
    ]
    outside = [rec(at(3, 12, 59, 59), cost=100.0, key_id=1), rec(at(8, 10, 0), cost=200.0, key_id=2)]
    write(db, *inside, *outside)
    start, end = at(3, 13, 30), at(8, 9, 10)
    t = totals(db, start, end)
    assert (t.requests, t.cost_usd) == (4, 15.0)
    assert sum(t.lat_hist) == 4 and t.lat_hist[4] == 2  # 40 ms twice in the 35-50 ms bucket
    assert [(v, x.requests, x.cost_usd) for v, x in breakdown(db, start, end, "key")] == [("2", 2, 12.0), ("1", 2, 3.0)]
    hourly = series(db, start, end, "h")  # a series never mixes grains
    assert sum(p.totals.requests for p in hourly) == 4 and all(p.bucket.minute == 0 for p in hourly)
    no_hist = breakdown(db, start, end, "key", hist=False)
    assert [(v, x.cost_usd) for v, x in no_hist] == [("2", 12.0), ("1", 3.0)]
    assert all(sum(x.lat_hist) == 0 for _, x in no_hist)


def test_counter_by_value_reads_rollup_rows_as_they_are(db: Engine) -> None:
    write(
        db,
        rec(at(4, 10, 1, 5), alias="a"),
        rec(at(4, 10, 1, 50), alias="a"),
        rec(at(4, 10, 2), alias="b", cost=0.5),
        rec(at(4, 11, 0), alias="a"),  # outside [10:00, 11:00)
    )
    rows = sorted(counter_by_value(db, H10, H11, "m", "alias"))
    assert rows == [(at(4, 10, 1), "a", 2), (at(4, 10, 2), "b", 1)]
    assert sorted(counter_by_value(db, H10, H11, "h", "alias", "cost_usd")) == [(H10, "a", 0.0), (H10, "b", 0.5)]
    with pytest.raises(ValueError):
        counter_by_value(db, H10, H11, "m", "key")  # keys have no minute rows
    with pytest.raises(ValueError):
        counter_by_value(db, H10, H11, "h", "alias", "lat_00; DROP TABLE requests")


def test_minute_ranges_read_whole_hours_from_hour_rows_and_the_edges_from_minutes(db: Engine) -> None:
    """10:30 .. 14:20 at minute grain: minutes 10:30-11:00, hours 11-14, minutes 14:00-14:20."""
    inside = [
        rec(at(4, 10, 30), cost=1.0, latency=40),
        rec(at(4, 12, 15), cost=2.0, latency=300),
        rec(at(4, 13, 59, 59), cost=4.0, latency=3000, alias="other"),
        rec(at(4, 14, 19, 59), cost=8.0, latency=40),
    ]
    write(db, *inside, rec(at(4, 10, 29, 59), cost=100.0), rec(at(4, 14, 20), cost=200.0))
    start, end = at(4, 10, 30), at(4, 14, 20)
    assert choose_grain(start, end) == "m"
    t = totals(db, start, end)
    assert (t.requests, t.cost_usd, sum(t.lat_hist), t.lat_hist[4]) == (4, 15.0, 4, 2)
    assert [(v, x.requests, x.cost_usd) for v, x in breakdown(db, start, end, "alias")] == [
        ("gpt", 3, 11.0),
        ("other", 1, 4.0),
    ]
    assert sum(p.totals.requests for p in series(db, start, end, "m")) == 4
