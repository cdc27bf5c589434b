"""LogWriter batches, retries, spills to disk when full and replays later: no submitted record is ever lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

import llm_console.gateway  # noqa: F401  (first: db.logstore alone hits an import cycle, see test_logstore.py)
from llm_console.db.logstore import write_batch
from llm_console.db.models import RequestLog
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.gateway.logwriter import LogWriter

TIMEOUT_S = 10


def record(**fields: object) -> LogRecord:
    return LogRecord(
        id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        endpoint="/v1/chat/completions",
        alias="m",
        latency_ms=12.0,
        spans=[SpanRecord("auth", 0.0, 0.1)],
        **fields,  # type: ignore[arg-type]
    )


def stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(RequestLog.__table__.c.id)).scalars())  # type: ignore[attr-defined]


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequestLog.__table__)).scalar_one())  # type: ignore[attr-defined]


class FlakyWriter:
    """`write_batch`, but failing while `down` (or for the first `fail_times` calls): a database that went away."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.down = False
        self.calls = 0
        self.failures = 0
        self.batches: list[int] = []

    def __call__(self, engine: Engine, batch: Sequence[LogRecord]) -> None:
        self.calls += 1
        if self.down or self.failures < self.fail_times:
            self.failures += 1
            raise ConnectionError("database is away")
        write_batch(engine, batch)
        self.batches.append(len(batch))


def spool_files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.jsonl"))


async def eventually(predicate: Callable[[], object]) -> None:
    """Poll `predicate` until it holds; fail after TIMEOUT_S (the writer offers no event to wait on)."""
    async with asyncio.timeout(TIMEOUT_S):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def wait_for_rows(engine: Engine, n: int) -> None:
    await eventually(lambda: row_count(engine) >= n)


def write_spool(spool: Path, records: Sequence[LogRecord]) -> None:
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "1-1.jsonl").write_bytes(b"".join(orjson.dumps(r.to_json()) + b"\n" for r in records))


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


async def test_batches_respect_the_batch_size_and_flush_writes_everything(engine: Engine, spool: Path) -> None:
    writer = FlakyWriter()
    log = LogWriter(engine, spool_dir=spool, batch_size=3, flush_interval_s=0.05, writer=writer)
    seen: list[int] = []
    log.on_written(lambda batch: seen.append(len(batch)))
    await log.start()
    try:
        records = [record() for _ in range(10)]
        for r in records:
            log.submit(r)
        async with asyncio.timeout(TIMEOUT_S):
            await log.flush()

        assert stored_ids(engine) == {r.id for r in records}
        assert max(writer.batches) <= 3
        assert sum(writer.batches) == 10
        assert len(writer.batches) >= 4
        assert seen == writer.batches
        assert log.written == 10
        assert log.pending == 0
    finally:
        await log.stop()


async def test_a_lone_record_is_written_after_the_flush_interval(engine: Engine, spool: Path) -> None:
    log = LogWriter(engine, spool_dir=spool, batch_size=500, flush_interval_s=0.05)
    await log.start()
    try:
        r = record()
        log.submit(r)
        await wait_for_rows(engine, 1)
        assert stored_ids(engine) == {r.id}
    finally:
        await log.stop()


async def test_a_failing_listener_does_not_stop_the_writer(engine: Engine, spool: Path) -> None:
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=0.01)
    log.on_written(lambda _batch: 1 / 0)  # type: ignore[func-returns-value]
    await log.start()
    try:
        log.submit(record())
        await asyncio.wait_for(log.flush(), TIMEOUT_S)
        log.submit(record())
        await asyncio.wait_for(log.flush(), TIMEOUT_S)
        assert row_count(engine) == 2
    finally:
        await log.stop()


async def test_failed_writes_are_retried_until_they_succeed(engine: Engine, spool: Path) -> None:
    writer = FlakyWriter(fail_times=3)
    log = LogWriter(engine, spool_dir=spool, batch_size=50, flush_interval_s=0.01, writer=writer)
    await log.start()
    try:
        records = [record() for _ in range(5)]
        for r in records:
            log.submit(r)
        async with asyncio.timeout(TIMEOUT_S):
            await log.flush()

        assert writer.failures == 3
        assert stored_ids(engine) == {r.id for r in records}
        assert row_count(engine) == 5  # retried, not duplicated
    finally:
        await log.stop()


async def test_full_queue_while_the_database_is_away_spills_to_disk_and_replays(engine: Engine, spool: Path) -> None:
    writer = FlakyWriter()
    writer.down = True
    log = LogWriter(engine, spool_dir=spool, queue_size=3, batch_size=2, flush_interval_s=0.01, writer=writer)
    await log.start()
    try:
        submitted: list[LogRecord] = []
        for _ in range(25):
            r = record()
            submitted.append(r)
            log.submit(r)  # never blocks, never raises
            await asyncio.sleep(0.01)
        assert log.spilled > 0
        assert spool_files(spool), "a full queue must spill to the spool folder"
        assert row_count(engine) == 0

        writer.down = False
        for _ in range(3):  # traffic after the outage triggers the replay
            r = record()
            submitted.append(r)
            log.submit(r)
        await eventually(lambda: stored_ids(engine) == {r.id for r in submitted})

        assert row_count(engine) == len(submitted)
        assert spool_files(spool) == []
    finally:
        await log.stop()
    assert row_count(engine) == len(submitted)


async def test_spooled_records_are_replayed_at_start_without_duplicates(engine: Engine, spool: Path) -> None:
    already = record()
    write_batch(engine, [already])
    pending = [record(prompt_tokens=4) for _ in range(3)]
    write_spool(spool, [already, *pending])

    log = LogWriter(engine, spool_dir=spool, batch_size=2, flush_interval_s=0.01)
    await log.start()
    try:
        await wait_for_rows(engine, 4)
        await eventually(lambda: not spool_files(spool))
    finally:
        await log.stop()

    assert stored_ids(engine) == {already.id, *(r.id for r in pending)}
    assert row_count(engine) == 4


async def test_a_failed_replay_keeps_the_spool_file(engine: Engine, spool: Path) -> None:
    spooled = record()
    write_spool(spool, [spooled])
    writer = FlakyWriter(fail_times=1)  # the database is away when the writer starts
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=0.01, writer=writer)
    await log.start()
    try:
        await eventually(lambda: writer.failures == 1)
        fresh = record()
        log.submit(fresh)
        await asyncio.wait_for(log.flush(), TIMEOUT_S)
        assert fresh.id in stored_ids(engine)
    finally:
        await log.stop()
    assert spooled.id in stored_ids(engine) or spool_files(spool), "a spooled row was dropped"


async def test_spool_is_replayed_once_the_database_is_back(engine: Engine, spool: Path) -> None:
    spooled = record()
    write_spool(spool, [spooled])
    writer = FlakyWriter(fail_times=1)
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=0.01, writer=writer)
    await log.start()
    try:
        await eventually(lambda: writer.failures == 1)
        for _ in range(3):  # the database is back and serving writes
            log.submit(record())
            await asyncio.wait_for(log.flush(), TIMEOUT_S)
        await asyncio.sleep(0.2)
        assert spooled.id in stored_ids(engine)
    finally:
        await log.stop()


async def test_stop_drains_what_is_queued(engine: Engine, spool: Path) -> None:
    log = LogWriter(engine, spool_dir=spool, batch_size=5, flush_interval_s=10)
    await log.start()
    records = [record() for _ in range(12)]
    for r in records:
        log.submit(r)
    await log.stop()

    assert stored_ids(engine) == {r.id for r in records}


async def test_stop_with_the_database_away_spills_the_queue(engine: Engine, spool: Path) -> None:
    writer = FlakyWriter()
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=10, writer=writer)
    await log.start()
    writer.down = True
    records = [record() for _ in range(4)]
    for r in records:
        log.submit(r)
    await log.stop()
    assert row_count(engine) == 0
    spilled = [
        orjson.loads(line)["id"] for path in spool_files(spool) for line in path.read_bytes().splitlines() if line
    ]
    assert sorted(spilled) == sorted(r.id for r in records)

    again = LogWriter(engine, spool_dir=spool, flush_interval_s=0.01)
    await again.start()
    try:
        await wait_for_rows(engine, 4)
    finally:
        await again.stop()
    assert stored_ids(engine) == {r.id for r in records}


async def test_stop_while_a_batch_is_being_collected_loses_nothing(engine: Engine, spool: Path) -> None:
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=1.0)
    await log.start()
    r = record()
    log.submit(r)
    await asyncio.sleep(0.05)  # the writer has taken `r` and waits up to 1 s for more
    await log.stop()

    assert r.id in stored_ids(engine) or spool_files(spool)


async def test_stop_while_retrying_loses_nothing(engine: Engine, spool: Path) -> None:
    writer = FlakyWriter()
    writer.down = True
    log = LogWriter(engine, spool_dir=spool, flush_interval_s=0.01, writer=writer)
    await log.start()
    r = record()
    log.submit(r)
    await eventually(lambda: writer.failures >= 2)
    await log.stop()

    assert spool_files(spool), "the batch being retried must be spilled for replay"
