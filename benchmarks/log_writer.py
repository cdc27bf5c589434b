"""What the log writer's thread spends per logged request: rows, spans and rollups, against rows and spans alone.

The writer runs beside the gateway's event loop, so its CPU time (most of it holding the GIL) is time the
hot path cannot use. Both variants write the same batches of realistic records, in the same process, to
fresh databases; the difference is the cost of keeping the dashboards' rollups.

    .venv/bin/python benchmarks/log_writer.py                 # SQLite, 40 batches of 500
    .venv/bin/python benchmarks/log_writer.py --postgres      # also PostgreSQL (a throw-away database)
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `llm_console` importable

import psycopg
from sqlalchemy.engine import Engine

from llm_console.db import logstore
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.db.rollups import aggregate, upsert_rows

TAGS = ("prod", "beta", "checkout", "support", "search", "batch")


def records(batches: int, size: int, seed: int = 1) -> list[list[LogRecord]]:
    """Batches spread over ~10 minutes of traffic: 12 aliases, 200 keys, 120 users, 20 teams, spans, and
    end users, sessions and tags on most calls."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for b in range(batches):
        batch = []
        for i in range(size):
            user = rng.randrange(1, 121)
            stream = rng.random() < 0.4
            named = rng.random() < 0.7
            batch.append(
                LogRecord(
                    id=str(uuid.uuid4()),
                    created_at=start + timedelta(milliseconds=(b * size + i) * 30),
                    endpoint="/v1/chat/completions",
                    alias=f"model-{rng.randrange(12)}",
                    model="upstream",
                    deployment_id=rng.randrange(1, 14),
                    key_id=rng.randrange(1, 201),
                    user_id=user,
                    team_id=user % 20 + 1,
                    status="ok" if rng.random() > 0.03 else "error",
                    stream=stream,
                    prompt_tokens=rng.randrange(20, 2000),
                    completion_tokens=rng.randrange(1, 800),
                    cost_usd=rng.random() / 100,
                    latency_ms=rng.lognormvariate(6.5, 0.8),
                    ttfb_ms=rng.lognormvariate(5, 0.5) if stream else None,
                    request_body='{"model": "m", "messages": [{"role": "user", "content": "hello there"}]}',
                    response_body="x" * 300,
                    # 70% of calls name an end user (1,000 of them), a session and one or two of six tags
                    end_user=f"user-{rng.randrange(1000)}" if named else None,
                    session_id=f"s-{rng.randrange(5000)}" if named else None,
                    tags=",".join(sorted({rng.choice(TAGS) for _ in range(rng.randint(1, 2))})) if named else None,
                    spans=[
                        SpanRecord("auth", 0.0, 0.1),
                        SpanRecord("route", 0.1, 0.05),
                        SpanRecord("upstream", 0.2, 120.0, attributes={"attempt": 1}),
                        SpanRecord("stream", 120.2, 800.0),
                    ],
                )
            )
        out.append(batch)
    return out


def rows_and_spans_only(engine: Engine, batch: list[LogRecord]) -> None:
    """The baseline: `write_batch` with the rollups switched off (nothing aggregated, nothing upserted)."""
    saved = logstore.aggregate, logstore.upsert_rows
    logstore.aggregate = lambda records: {}  # type: ignore[assignment]
    logstore.upsert_rows = lambda aggs, sqlite_db: []  # type: ignore[assignment]
    try:
        logstore.write_batch(engine, batch)
    finally:
        logstore.aggregate, logstore.upsert_rows = saved


def timed(
    write: Callable[[Engine, list[LogRecord]], None], engine: Engine, batches: list[list[LogRecord]]
) -> tuple[float, float]:
    """(wall, CPU) microseconds per record."""
    n = sum(len(b) for b in batches)
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        write(engine, batch)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


@contextlib.contextmanager
def databases(postgres_url: str | None) -> Iterator[list[tuple[str, Callable[[], Engine]]]]:
    folder = tempfile.TemporaryDirectory(prefix="llmc-writer-")
    made: list[str] = []

    def sqlite() -> Engine:
        url = f"sqlite:///{folder.name}/w{len(made)}.db"
        made.append(url)
        upgrade(url)
        return make_engine(url)

    def postgres() -> Engine:
        assert postgres_url is not None
        name = f"llmc_writer_{len(made)}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        return make_engine(url)

    try:
        yield [("sqlite", sqlite)] + ([("postgresql", postgres)] if postgres_url else [])
    finally:
        folder.cleanup()
        if postgres_url:
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                for name in made:
                    if not name.startswith("sqlite"):
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.batches < 1 or args.batch_size < 1:
        parser.error("--batches and --batch-size must be at least 1")
    batches = records(args.batches, args.batch_size)
    agg_cpu = time.process_time()
    for batch in batches:
        upsert_rows(aggregate(batch), True)
    agg_us = (time.process_time() - agg_cpu) / (args.batches * args.batch_size) * 1e6
    print(f"{args.batches} batches of {args.batch_size} records; microseconds per record")
    print(f"{'database':<11} {'variant':<26} {'wall':>8} {'CPU':>8}")
    with databases(args.postgres_url if args.postgres else None) as dbs:
        for name, make in dbs:
            for label, write in (("rows + spans (baseline)", rows_and_spans_only), ("+ rollups", logstore.write_batch)):
                engine = make()
                wall, cpu = timed(write, engine, batches)
                engine.dispose()
                print(f"{name:<11} {label:<26} {wall:8.1f} {cpu:8.1f}")
    print(f"aggregating the rollups alone (Python, holds the GIL): {agg_us:.1f} us CPU per record")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
