"""The export pipeline in a child process of its own, so converting and sending calls never competes with
the gateway's event loop for the GIL (`LLMC_TELEMETRY_PROCESS`, on by default).

In one interpreter the SDKs cost the gateway more than the calls they describe: about 1.5 ms of CPU per
call with both sinks on (`benchmarks/telemetry_export.py`), all of it holding the GIL the event loop needs, so
at a few hundred calls a second the gateway's latency climbed with the export. Here the gateway process only
hands each committed batch to a `multiprocessing` queue (its feeder thread pickles it: tens of microseconds a
call) and the child, started with `spawn`, runs the same `TelemetryExporter` on another core.

The child is started only while a sink is on: the parent reads the sinks' settings at start and on every
`config_changed`, starts the child when one is enabled and stops it when none is. It is told of every
configuration change, gets the deployments' names from the parent's route table, writes the sinks' status
to the database itself, and exits when the parent is gone. Calls beyond `LLMC_TELEMETRY_QUEUE_SIZE` not yet
handled by the child are dropped in the parent and counted in the child's status.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.process
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.records import LogRecord
from llm_console.settings import Settings
from llm_console.telemetry.config import load_config
from llm_console.telemetry.convert import DeploymentInfo, ScoreRecord
from llm_console.telemetry.pipeline import CONFIG_RETRY_S, STOP_GRACE_S, Deployments, TelemetryExporter

log = logging.getLogger("llm_console.telemetry")
POLL_S = 0.5  # the child's wait for a message, between checks that its parent still runs
RESTART_AFTER_S = 10.0  # a child that died is started again this long after it was noticed
CONTEXT = multiprocessing.get_context("spawn")  # no fork: the parent runs threads and an event loop


def _child(url: str, settings: Settings, inbox: Any, handled: Any) -> None:  # pragma: no cover
    """The child's whole life (run by `spawn`, so coverage of the parent does not see it; the tests check
    what it sends)."""
    from llm_console.db.engine import make_engine

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    engine = make_engine(url)
    deployments: dict[int, DeploymentInfo] = {}
    exporter = TelemetryExporter(engine, SecretBox(settings.resolved_secret_key()), settings, lambda: deployments)
    exporter.start_thread()
    parent = multiprocessing.parent_process()
    try:
        while parent is None or parent.is_alive():
            handled.value = exporter.handed
            try:
                message = inbox.get(timeout=POLL_S)
            except queue.Empty:
                continue
            kind = message[0]
            if kind == "calls":
                _, batch, dropped = message
                if dropped:
                    exporter.queue_full(dropped)
                exporter.offer(batch)
            elif kind == "scores":
                exporter.offer_scores(message[1])
            elif kind == "deployments":
                deployments = dict(message[1])
            elif kind == "reload":
                exporter.config_changed()
            elif kind == "stop":
                break
    finally:
        exporter.stop_thread(STOP_GRACE_S + settings.telemetry_export_timeout_s)
        handled.value = exporter.handed
        engine.dispose()


class ExportProcess:
    """The gateway runtime's exporter when `LLMC_TELEMETRY_PROCESS` is on: the same `offer`, `offer_scores`,
    `config_changed`, `start` and `stop` as `TelemetryExporter`, with the work in a child process."""

    def __init__(self, engine: Engine, box: SecretBox, settings: Settings, deployments: Deployments) -> None:
        self._engine = engine
        self._box = box
        self._settings = settings
        self._deployments = deployments
        self._url = engine.url.render_as_string(hide_password=False)
        self._limit = settings.telemetry_queue_size
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._inbox: Any = None
        self._handled: Any = None  # a shared c_longlong: calls the child has handled
        self._sent = 0  # calls put in the inbox of the current child
        self._dropped = 0  # calls refused since the last batch that went through (reported with the next one)
        self._sent_deployments: Mapping[int, DeploymentInfo] | None = None
        self._died_at = 0.0
        self._lock = threading.Lock()  # start/stop from the supervisor thread against `offer` on the loop
        self._check = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.active = False  # a sink is on: calls are handed to the child

    # The event loop's side: never blocks, never raises.

    def offer(self, batch: Sequence[LogRecord]) -> None:
        if not self.active or not batch:
            return
        proc = self._proc
        if proc is None or not proc.is_alive():
            self._dropped += len(batch)  # reported by the next child with its first batch
            self._child_gone()
            return
        assert self._handled is not None
        in_flight = self._sent - self._handled.value
        room = self._limit - in_flight
        if room < len(batch):
            self._dropped += len(batch) - max(room, 0)
            batch = batch[: max(room, 0)]
            if not batch:
                return
        self._send_deployments()
        self._put(("calls", list(batch), self._dropped))
        self._sent += len(batch)
        self._dropped = 0

    def offer_scores(self, scores: Sequence[ScoreRecord]) -> None:
        if self.active and scores:
            self._put(("scores", list(scores)))

    def config_changed(self) -> None:
        """Tell the child, and check whether a sink is still (or now) on (callable from any thread: the console's
        handlers may run in one)."""
        if self._proc is not None:
            self._put(("reload",))
        self._wake_supervisor()

    def _wake_supervisor(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._check.set)

    def _send_deployments(self) -> None:
        current = self._deployments()
        if current is not self._sent_deployments:
            self._put(("deployments", dict(current)))
            self._sent_deployments = current

    def _put(self, message: tuple[Any, ...]) -> None:
        try:
            self._inbox.put_nowait(message)
        except Exception as exc:  # the queue was closed (the child is stopping): the message is lost
            log.warning("telemetry: the export process did not take a message (%s)", type(exc).__name__)

    def _child_gone(self) -> None:
        if self._proc is not None and not self._proc.is_alive() and self._died_at == 0.0:
            self._died_at = time.monotonic()
            log.warning("telemetry: the export process exited (code %s); it is started again", self._proc.exitcode)
            self._wake_supervisor()

    # Starting and stopping the child (the supervisor task, off the hot path).

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self._apply()  # the child is running before the first call when a sink is on
        except Exception as exc:  # the database may be away: the supervisor tries again
            log.warning("telemetry: the export settings could not be read (%s)", type(exc).__name__)
            self._check.set()
        self._task = asyncio.create_task(self._supervise(), name="llmc-telemetry-process")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await asyncio.to_thread(self._stop_child)

    async def _supervise(self) -> None:
        while True:
            await self._check.wait()
            self._check.clear()
            if self._died_at:  # a child that died is started again, at most once per RESTART_AFTER_S
                await asyncio.sleep(max(0.0, self._died_at + RESTART_AFTER_S - time.monotonic()))
            try:
                await self._apply()
            except Exception as exc:  # the database may be away: try again after a while, or at the next change
                log.warning("telemetry: the export settings could not be read (%s)", type(exc).__name__)
                await asyncio.sleep(CONFIG_RETRY_S)
                self._check.set()

    async def _apply(self) -> None:
        wanted = await asyncio.to_thread(self._wanted)
        running = self._proc is not None and self._proc.is_alive()
        if wanted and not running:
            await asyncio.to_thread(self._start_child)
        elif not wanted and self._proc is not None:
            await asyncio.to_thread(self._stop_child)

    def _wanted(self) -> bool:
        """A sink is enabled (its settings may still fail in the child: the child records why)."""
        langfuse, otlp = load_config(self._engine, self._box, self._settings)
        return langfuse.enabled or otlp.enabled

    def _start_child(self) -> None:
        with self._lock:
            self._stop_child_locked()
            inbox = CONTEXT.Queue()
            handled = CONTEXT.Value("q", 0, lock=False)
            proc = CONTEXT.Process(
                target=_child,
                args=(self._url, self._settings, inbox, handled),
                name="llmc-telemetry",
                daemon=True,
            )
            proc.start()
            self._inbox, self._handled, self._proc = inbox, handled, proc
            self._sent, self._sent_deployments, self._died_at = 0, None, 0.0
            self.active = True
            log.info("telemetry: export process %s started", proc.pid)

    def _stop_child(self) -> None:
        with self._lock:
            self._stop_child_locked()

    def _stop_child_locked(self) -> None:
        proc, inbox = self._proc, self._inbox
        self.active = False
        self._proc = None
        if proc is None:
            return
        if proc.is_alive():
            try:
                inbox.put(("stop",))
            except Exception:
                pass
            proc.join(STOP_GRACE_S + self._settings.telemetry_export_timeout_s + 2.0)
            if proc.is_alive():
                log.warning("telemetry: the export process did not stop in time; terminated")
                proc.terminate()
                proc.join(2.0)
        # The child read everything before "stop", or is dead: nothing left in the pipe is wanted, and waiting
        # for the feeder thread to flush it into a pipe nobody reads would hang this process's shutdown.
        inbox.cancel_join_thread()
        inbox.close()

    @property
    def handed(self) -> int:
        """Calls the current child has finished with (exported, sampled out or dropped)."""
        return int(self._handled.value) if self._handled is not None else 0

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once the child handled every call sent to it (tests; the SDKs may still be sending)."""
        deadline = time.monotonic() + timeout_s
        while self.handed < self._sent:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
