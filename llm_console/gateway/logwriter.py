"""Bounded, batched log writer. The hot path only does `submit()`; rows reach the DB in batches.

When the database is away, batches are retried with backoff and, if the queue fills up meanwhile,
spilled to JSONL files under the spool folder, which are replayed once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
from sqlalchemy.engine import Engine

from llm_console.db.logstore import existing_ids, prepare, write_batch
from llm_console.db.records import LogRecord

log = logging.getLogger("llm_console.gateway.logwriter")
MAX_BACKOFF_S = 5.0
STOP_WRITE_GRACE_S = 10.0
REPLAY_CHECK_S = 5.0


class LogWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        spool_dir: Path,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        writer: Callable[[Engine, Sequence[LogRecord]], None] = write_batch,
    ) -> None:
        self._engine = engine
        self._spool_dir = spool_dir
        self._queue: asyncio.Queue[LogRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._write = writer
        self._sqlite = engine.dialect.name == "sqlite"
        self._prepare = writer is write_batch
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Sequence[LogRecord]], None]] = []
        self._batch: list[LogRecord] = []
        self._writing = False
        self.submitted = 0
        self.written = 0
        self.spilled = 0

    def submit(self, record: LogRecord) -> None:
        """Never blocks and never raises: a full queue spills the record to disk.

        The driver-ready rows are built here, a few microseconds per call, rather than all at once in the
        batch thread, where building hundreds of them held the GIL and stalled the event loop.
        """
        self.submitted += 1
        if self._prepare:
            record.prepared = prepare(record, self._sqlite)
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._spill([record])

    def on_written(self, listener: Callable[[Sequence[LogRecord]], None]) -> None:
        """Call `listener(batch)` after each batch is committed (used for live updates)."""
        self._listeners.append(listener)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="llmc-log-writer")

    async def stop(self) -> None:
        """Write everything taken or queued; what cannot be written now is spilled to disk."""
        if self._task is not None:
            deadline = time.monotonic() + STOP_WRITE_GRACE_S
            while self._writing and time.monotonic() < deadline:  # noqa: ASYNC110 (let a commit finish)
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._batch += self._drain_nowait(10**9)
        if self._batch and not await self._write_batch():
            log.warning("log writer: database unavailable at shutdown; spilling %d rows", len(self._batch))
            batch, self._batch = self._batch, []
            self._spill(batch)

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written (tests, shutdown)."""
        target = self.submitted
        while self.written + self.spilled < target:  # noqa: ASYNC110 (a test and shutdown helper)
            await asyncio.sleep(0.01)

    def _drain_nowait(self, limit: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        while len(out) < limit:
            try:
                out.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return out

    async def _collect(self) -> bool:
        """Fill `self._batch` until it is full or the flush interval has passed since its first row.

        Returns False when nothing arrived within REPLAY_CHECK_S (a chance to replay the spool).
        """
        # asyncio.timeout, not wait_for: cancelling a wait_for around Queue.get can hang on Python 3.11.
        try:
            async with asyncio.timeout(REPLAY_CHECK_S):
                self._batch.append(await self._queue.get())
        except TimeoutError:
            return False
        deadline = time.monotonic() + self._interval
        while len(self._batch) < self._batch_size:
            self._batch += self._drain_nowait(self._batch_size - len(self._batch))
            remaining = deadline - time.monotonic()
            if len(self._batch) >= self._batch_size or remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    self._batch.append(await self._queue.get())
            except TimeoutError:
                break
        return True

    async def _write_batch(self) -> bool:
        """One attempt; the batch stays in `self._batch` (where stop() finds it) until it is committed."""
        self._writing = True
        try:
            await asyncio.to_thread(self._write, self._engine, self._batch)
        except Exception as exc:
            log.warning("log writer: write of %d rows failed (%s)", len(self._batch), type(exc).__name__)
            return False
        finally:
            self._writing = False
        batch, self._batch = self._batch, []
        self.written += len(batch)
        self._notify(batch)
        return True

    async def _run(self) -> None:
        replay_due = not await self._replay_spool()
        while True:
            if not await self._collect():
                if replay_due or self._spool_has_files():
                    replay_due = not await self._replay_spool()
                continue
            backoff = 0.1
            while not await self._write_batch():
                replay_due = True
                if self._queue.full():  # the database is away and rows keep coming: keep them on disk
                    batch, self._batch = self._batch, []
                    self._spill(batch)
                    break
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            if replay_due and not self._batch:  # the database just took a write: bring the spool back
                replay_due = not await self._replay_spool()

    def _spool_has_files(self) -> bool:
        return any(self._spool_dir.glob("*.jsonl"))

    def _notify(self, batch: Sequence[LogRecord]) -> None:
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:
                log.exception("log writer listener failed")

    def _spill(self, records: Sequence[LogRecord]) -> None:
        """Write a whole spool file under a temporary name, then rename it, so replayers never see half."""
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        path = self._spool_dir / f"{time.time_ns()}-{os.getpid()}.jsonl"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            for r in records:
                fh.write(orjson.dumps(r.to_json()) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
        self.spilled += len(records)

    async def _replay_spool(self) -> bool:
        """Write every spool file (skipping rows already stored); False when the database refused."""
        for path in sorted(self._spool_dir.glob("*.jsonl")):
            try:
                records = [LogRecord.from_json(orjson.loads(line)) for line in path.read_bytes().splitlines() if line]
                done = await asyncio.to_thread(existing_ids, self._engine, [r.id for r in records])
                todo = [r for r in records if r.id not in done]
                for i in range(0, len(todo), self._batch_size):
                    chunk = todo[i : i + self._batch_size]
                    await asyncio.to_thread(self._write, self._engine, chunk)
                    self._notify(chunk)
                path.unlink()
                log.info("log writer: replayed %d spooled rows from %s", len(todo), path.name)
            except Exception as exc:
                log.warning("log writer: spool replay deferred (%s)", type(exc).__name__)
                return False
        return True
