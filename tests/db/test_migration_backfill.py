"""Migration 0003 rolls the request rows stored under 0002 up into `usage_rollups`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.db.queries.usage import breakdown, series, totals
from llm_console.db.rollups import N_BUCKETS, sqlite_ts
from tests.db.seeding import at, rec, scalar, write

COLUMNS = (
    "id, created_at, endpoint, alias, model, deployment_id, key_id, user_id, team_id, status_code, status, "
    "error_type, error_message, stream, prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, "
    "ttfb_ms, request_body, response_body, client_ip, attempts"
)
INSERT = f"INSERT INTO requests ({COLUMNS}) VALUES ({', '.join(':' + c for c in COLUMNS.split(', '))})"


def old_row(
    id: str,
    created_at: datetime,
    *,
    alias: str = "a",
    deployment_id: int | None = 1,
    key_id: int | None = None,
    user_id: int | None = None,
    status: str = "ok",
    stream: bool = False,
    prompt: int = 0,
    completion: int = 0,
    cached: int = 0,
    cost: float = 0.0,
    latency: float = 0.0,
    ttfb: float | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": created_at,
        "endpoint": "/v1/chat/completions",
        "alias": alias,
        "model": "m",
        "deployment_id": deployment_id,
        "key_id": key_id,
        "user_id": user_id,
        "team_id": None,
        "status_code": 200 if status == "ok" else 500,
        "status": status,
        "error_type": None,
        "error_message": None,
        "stream": stream,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": cached,
        "cost_usd": cost,
        "latency_ms": latency,
        "ttfb_ms": ttfb,
        "request_body": "{}",
        "response_body": None,
        "client_ip": "10.0.0.1",
        "attempts": 1,
    }


OLD_ROWS = [
    old_row("01", at(4, 10, 15, 10), key_id=1, user_id=5, prompt=10, completion=5, cached=2, cost=0.25, latency=40,
            ttfb=12),
    old_row("02", at(4, 10, 15, 50), deployment_id=2, key_id=1, status="error", stream=True, prompt=20, cost=0.5,
            latency=300),
    old_row("03", at(4, 11, 5), alias="b", key_id=2, user_id=5, stream=True, prompt=7, completion=3, cost=0.125,
            latency=70_000, ttfb=250),
    old_row("04", at(5), deployment_id=None, cost=1.0, latency=5),
]  # fmt: skip


def insert_old(url: str, rows: list[dict[str, Any]]) -> None:
    engine = make_engine(url)
    sqlite_db = engine.dialect.name == "sqlite"
    if sqlite_db:  # the text SQLAlchemy's SQLite DateTime wrote under 0002
        rows = [{**r, "created_at": sqlite_ts(r["created_at"]), "stream": int(r["stream"])} for r in rows]
    with engine.begin() as conn:
        conn.execute(text(INSERT), rows)
    engine.dispose()


FILLER = [old_row(f"f{i:05d}", at(6, 8, i % 60), cost=0.5, latency=10) for i in range(5003)]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backfilled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database migrated to 0002, given the old rows (and 5003 more on 6 March), then upgraded to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path_factory.mktemp('backfill') / 'old.db').as_posix()}"
    else:
        url = request.getfixturevalue("postgres_module_database")
    upgrade(url, "0002")
    insert_old(url, OLD_ROWS + FILLER)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_backfill_matches_the_old_rows(backfilled: Engine) -> None:
    db = backfilled
    assert "usage_minutes" not in inspect(db).get_table_names()

    minute = totals(db, at(4, 10, 15), at(4, 10, 16), grain="m")
    # Rows 01 and 02: 2 requests, 1 error, 1 streamed, 30 + 5 tokens, 0.75 USD, 40 + 300 ms, one TTFB of 12 ms.
    assert (minute.requests, minute.errors, minute.stream_requests) == (2, 1, 1)
    assert (minute.prompt_tokens, minute.completion_tokens, minute.cached_tokens) == (30, 5, 2)
    assert (minute.cost_usd, minute.latency_ms_sum, minute.ttfb_ms_sum, minute.ttfb_count) == (0.75, 340.0, 12.0, 1)
    lat = [0] * N_BUCKETS
    lat[4], lat[9] = 1, 1  # 40 ms: 35..50; 300 ms: 200..300
    assert list(minute.lat_hist) == lat
    assert totals(db, at(4, 10), at(4, 11), grain="h") == minute

    day = totals(db, at(4), at(5), grain="d")
    # Rows 01-03: 3 requests, 0.875 USD, 37 + 8 tokens, 2 streamed, latencies 40 + 300 + 70000.
    assert (day.requests, day.errors, day.stream_requests, day.cost_usd) == (3, 1, 2, 0.875)
    assert (day.prompt_tokens, day.completion_tokens, day.latency_ms_sum) == (37, 8, 70_340.0)
    assert (day.ttfb_count, day.ttfb_ms_sum, day.lat_hist[25], day.ttfb_hist[9]) == (2, 262.0, 1, 1)  # 250 ms: 200..300
    assert totals(db, at(4, 11), at(4, 12), grain="m").requests == 1
    both = totals(db, at(4), at(6), grain="d")
    assert (both.requests, both.cost_usd) == (4, 1.875)

    assert [(v, t.requests) for v, t in breakdown(db, at(4), at(6), "key", grain="d")] == [
        ("", 1),  # 1.0 USD
        ("1", 2),  # 0.75 USD
        ("2", 1),  # 0.125 USD
    ]
    assert [(v, t.requests) for v, t in breakdown(db, at(4), at(6), "user", grain="h")] == [("", 2), ("5", 2)]
    assert [(v, t.cost_usd) for v, t in breakdown(db, at(4), at(6), "deployment", grain="m")] == [
        ("", 1.0),
        ("2", 0.5),
        ("1", 0.375),
    ]
    assert [(v, t.requests) for v, t in breakdown(db, at(4), at(6), "stream", grain="d")] == [("0", 2), ("1", 2)]
    assert scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE dim = 'embed_dims'") == 0


def test_backfill_pages_through_more_than_5000_rows(backfilled: Engine) -> None:
    # The backfill reads 5000 rows a page: 5007 rows take two pages, none counted twice.
    t = totals(backfilled, at(6), at(7), grain="d")
    assert (t.requests, t.cost_usd, t.lat_hist[1]) == (5003, 2501.5, 5003)  # 10 ms: 5..10
    assert totals(backfilled, at(6, 8), at(6, 8, 1)).requests == 84  # i % 60 == 0: i = 0, 60, ..., 4980


def test_new_writes_add_to_backfilled_buckets(backfilled: Engine) -> None:
    db = backfilled
    write(db, rec(at(4, 10, 15, 30), alias="a", cost=0.125, key_id=1))
    # Still one row for the minute: the backfill wrote its bucket exactly as the log writer does.
    (point,) = series(db, at(4, 10, 15), at(4, 10, 16), "m")
    assert (point.bucket, point.totals.requests, point.totals.cost_usd) == (at(4, 10, 15), 3, 0.875)
    assert [(v, t.requests) for v, t in breakdown(db, at(4), at(5), "key", grain="d")] == [("1", 3), ("2", 1)]
