"""The export pipeline of one gateway process: a bounded queue fed by the log writer, and one worker thread.

`offer` is the log writer's listener: it runs on the event loop after each committed batch and only
appends to a deque (dropping, and counting, what does not fit), so the hot path never waits on an export.
The worker thread turns calls into Langfuse generations and OTel spans; the SDKs batch and send from
their own threads. The worker also reloads the configuration when told (`config_changed`, on any audit
event) and adds this process's counts to the shared status every `telemetry_status_interval_s`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.records import LogRecord
from llm_console.settings import Settings
from llm_console.telemetry.config import LANGFUSE, OTLP, SINKS, LangfuseConfig, OtlpConfig, load_config
from llm_console.telemetry.convert import DeploymentInfo, ScoreRecord, sampled
from llm_console.telemetry.status import SinkCounters, write_status

if TYPE_CHECKING:
    from llm_console.gateway.routing import RouteTable

log = logging.getLogger("llm_console.telemetry")
STOP_GRACE_S = 5.0
CONFIG_RETRY_S = 30.0


class Sink(Protocol):
    name: str

    def export(self, rec: LogRecord, dep: DeploymentInfo | None) -> bool: ...

    def export_score(self, score: ScoreRecord) -> None: ...

    def close(self) -> None: ...


Deployments = Callable[[], Mapping[int, DeploymentInfo]]


def route_deployments(table: Callable[[], RouteTable]) -> Deployments:
    """Deployment names, providers and addresses from the gateway's current route table, rebuilt only when
    the table object changes (each reload replaces it). Each rebuild is a new mapping, so a reader can tell
    by identity that it changed (the export process is sent it again)."""
    seen: list[RouteTable] = []
    infos: list[Mapping[int, DeploymentInfo]] = [{}]

    def current() -> Mapping[int, DeploymentInfo]:
        routes = table()
        if not seen or seen[0] is not routes:
            targets = routes.targets()
            infos[0] = {i: DeploymentInfo.of(t.deployment, t.kind, t.api_base) for i, t in targets.items()}
            seen[:] = [routes]
        return infos[0]

    return current


class TelemetryExporter:
    """Created by the gateway runtime; `start`/`stop` run the worker, `offer` feeds it."""

    def __init__(
        self, engine: Engine, box: SecretBox, settings: Settings, deployments: Deployments | None = None
    ) -> None:
        self._engine = engine
        self._box = box
        self._settings = settings
        self._deployments = deployments or dict
        self._queue: collections.deque[LogRecord] = collections.deque()
        self._scores: collections.deque[ScoreRecord] = collections.deque()
        self._limit = settings.telemetry_queue_size
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters = {name: SinkCounters() for name in SINKS}
        self.sinks: dict[str, Sink] = {}
        self._configs: dict[str, LangfuseConfig | OtlpConfig] = {}
        self._rates: dict[str, float] = {}
        # Read by `offer` on the event loop: nothing to queue while no sink is on. True from `start` until the
        # first configuration load says otherwise, so calls made while the SDKs load are not lost.
        self.active = False
        self.handed = 0  # calls the worker finished with (exported, sampled out or dropped), for tests
        self._offered = 0
        self._pending_drops = 0  # dropped before the sinks' settings were read
        self._drops_lock = threading.Lock()

    def offer(self, batch: Sequence[LogRecord]) -> None:
        """The log writer's listener: queue the batch for the worker; never blocks, never raises."""
        if not self.active:
            return
        room = self._limit - len(self._queue)
        if room < len(batch):
            self.queue_full(len(batch) - max(room, 0))
            batch = batch[: max(room, 0)]
        self._queue.extend(batch)
        self._offered += len(batch)
        self._wake.set()

    def queue_full(self, calls: int) -> None:
        """Count `calls` dropped for want of room (here, or in the gateway process feeding a child) against
        every sink that is on; until the sinks' settings are read, keep the count for then."""
        with self._drops_lock:
            if not self._configs:
                self._pending_drops += calls
                return
            calls, self._pending_drops = calls + self._pending_drops, 0
        for name in self._rates:
            self.counters[name].dropped(calls, f"The export queue ({self._limit} calls) was full; calls were dropped.")

    def offer_scores(self, scores: Sequence[ScoreRecord]) -> None:
        """Queue feedback scores for Langfuse (the feedback endpoint calls it after committing them);
        never blocks: past the queue bound they are dropped."""
        cfg = self._configs.get(LANGFUSE)
        if not self.active or (cfg is not None and not cfg.active):
            return  # (until Langfuse's settings are read, or while its sink opens, queue them: the worker decides)
        room = max(self._limit - len(self._scores), 0)
        self._scores.extend(scores[:room])
        if len(scores) > room:
            self.counters[LANGFUSE].dropped(0, f"{len(scores) - room} feedback scores were dropped (queue full).")
        self._wake.set()

    def config_changed(self) -> None:
        """Some configuration changed (an audit event was written): re-read the sinks' settings."""
        self._reload.set()
        self._wake.set()

    async def start(self) -> None:
        self.start_thread()

    def start_thread(self) -> None:
        self._stopping.clear()
        self._reload.set()
        self.active = True
        self._thread = threading.Thread(target=self._run, name="llmc-telemetry", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Export what is queued, flush the SDKs and write the status; gives up after STOP_GRACE_S plus the
        exporters' timeout (the thread is a daemon: an unreachable endpoint cannot hold the exit)."""
        await asyncio.to_thread(self.stop_thread, STOP_GRACE_S + self._settings.telemetry_export_timeout_s)

    def stop_thread(self, timeout_s: float) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout_s)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once every offered call was handled by the worker (tests; the SDKs may still be sending)."""
        deadline = time.monotonic() + timeout_s
        while self.handed < self._offered or self._queue:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        interval = self._settings.telemetry_status_interval_s
        next_status = time.monotonic() + interval
        next_config_retry = 0.0
        while True:
            stopping = self._stopping.is_set()
            if self._reload.is_set() or (self._configs == {} and time.monotonic() >= next_config_retry):
                self._reload.clear()
                if not self.apply_config():
                    next_config_retry = time.monotonic() + CONFIG_RETRY_S
            self._drain()
            if stopping:
                break
            if time.monotonic() >= next_status:
                self._write_status()
                next_status = time.monotonic() + interval
            self._wake.wait(timeout=max(0.05, min(1.0, next_status - time.monotonic())))
            self._wake.clear()
        self._close_sinks(list(self.sinks))
        self._write_status()

    def _drain_scores(self) -> None:
        sink = self.sinks.get(LANGFUSE)
        if sink is None and LANGFUSE not in self._configs:
            return  # the settings are not read yet (or could not be): keep the scores until they are
        while self._scores:
            try:
                score = self._scores.popleft()
            except IndexError:
                break
            if sink is None or (score.request_id and not sampled(score.request_id, self._rates[LANGFUSE])):
                continue  # a score for a call that was sampled out would point at a trace Langfuse never got
            try:
                sink.export_score(score)
            except Exception as exc:
                self.counters[LANGFUSE].dropped(0, f"A feedback score could not be exported: {type(exc).__name__}")

    def _drain(self) -> None:
        self._drain_scores()
        if not self._queue:
            return
        deployments = self._deployments()
        while self._queue:
            try:
                rec = self._queue.popleft()
            except IndexError:
                break
            dep = deployments.get(rec.deployment_id) if rec.deployment_id is not None else None
            for name, sink in list(self.sinks.items()):
                if not sampled(rec.id, self._rates[name]):
                    continue
                try:
                    sink.export(rec, dep)
                except Exception as exc:  # one bad record must not stop the export of the others
                    self.counters[name].dropped(1, f"A call could not be converted ({type(exc).__name__}).")
                    log.warning("telemetry %s: call %s not exported (%s)", name, rec.id, type(exc).__name__)
            self.handed += 1

    def apply_config(self) -> bool:
        """Load the sinks' settings and rebuild the sinks that changed; False when they could not be read.

        The worker thread calls it (at start and after `config_changed`); tests may call it directly."""
        try:
            langfuse, otlp = load_config(self._engine, self._box, self._settings)
        except Exception as exc:
            message = f"The telemetry settings could not be read from the database ({type(exc).__name__})."
            for counters in self.counters.values():
                counters.dropped(0, message)
            log.warning("telemetry settings not loaded: %s", type(exc).__name__)
            self.active = bool(self.sinks)  # keep what runs; queue nothing for sinks that never opened
            return False
        for name, cfg in ((LANGFUSE, langfuse), (OTLP, otlp)):
            if self._configs.get(name) == cfg:
                continue
            self._configs[name] = cfg
            self._close_sinks([name])
            if cfg.problem and cfg.enabled:
                self.counters[name].dropped(0, cfg.problem)
            elif cfg.active:
                self._open_sink(name, cfg)
        self._rates = {name: self._configs[name].sample_rate for name in self.sinks}
        self.active = bool(self.sinks)
        if self._pending_drops:
            self.queue_full(0)
        return True

    def _open_sink(self, name: str, cfg: LangfuseConfig | OtlpConfig) -> None:
        timeout = self._settings.telemetry_export_timeout_s
        try:
            if isinstance(cfg, LangfuseConfig):
                from llm_console.telemetry.langfuse_sink import LangfuseSink

                self.sinks[name] = LangfuseSink(cfg, self.counters[name], timeout)
            else:
                from llm_console.telemetry.otlp_sink import OtlpSink

                self.sinks[name] = OtlpSink(cfg, self.counters[name], timeout)
        except Exception as exc:
            self.counters[name].dropped(0, f"The {name} exporter could not start: {exc}"[:300])
            log.warning("telemetry %s: exporter not started (%s)", name, type(exc).__name__)

    def _close_sinks(self, names: Sequence[str]) -> None:
        for name in names:
            sink = self.sinks.pop(name, None)
            if sink is None:
                continue
            try:
                sink.close()
            except Exception as exc:
                log.warning("telemetry %s: exporter did not close cleanly (%s)", name, type(exc).__name__)

    def _write_status(self) -> None:
        deltas = {name: c.take() for name, c in self.counters.items()}
        try:
            write_status(self._engine, deltas)
        except Exception as exc:  # kept for the next round
            for name, delta in deltas.items():
                self.counters[name].restore(delta)
            log.warning("telemetry status not written: %s", type(exc).__name__)
