"""What exporting calls to Langfuse and an OTLP collector costs the gateway process, beside baselines measured
in the same process, the variants interleaved in rounds so that machine noise hits them alike.

1. Hand-off: microseconds per `offer(batch)` on the event loop, both sinks off (the baseline), both on in a
   worker thread (`TelemetryExporter`), both on in a child process (`ExportProcess`, the gateway's default).
2. Export CPU: this process's CPU (all its threads) per call from the first offer until the receiver holds every
   span, Langfuse only, OTLP only and both in a thread, and both in a child process (the child's CPU is not the
   gateway's), beside `logstore.write_batch` (rollups on) of the same records: what the log writer's thread
   already spends per call.
3. The hot path: latency of a fixed unit of request-like work on the event loop (uvloop, as the gateway's)
   while the exporter is idle (the baseline) and while it exports 1,000 calls per second from a thread, or
   from a child process: a thread competes with the event loop for the GIL, a child does not.

The receiver is the tests' (`tests/telemetry/receiver.py`), run in a child process that counts spans, so its
decoding is neither in the CPU figures nor on the GIL. `.venv/bin/python benchmarks/telemetry_export.py`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `llm_console` importable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy.engine import Engine

from benchmarks.log_writer import records
from llm_console.crypto import SecretBox
from llm_console.db import logstore
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.db.records import LogRecord
from llm_console.services import telemetry_admin as admin
from llm_console.settings import Settings
from llm_console.telemetry import langfuse_sink, otlp_sink
from llm_console.telemetry.convert import DeploymentInfo
from llm_console.telemetry.pipeline import TelemetryExporter
from llm_console.telemetry.process import ExportProcess
from tests.telemetry.receiver import PUBLIC_KEY, SECRET_KEY, Receiver, Running

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

LF_PATH, OTLP_PATH = "/api/public/otel/v1/traces", "/v1/traces"
VARIANTS = {"Langfuse only": (True, False), "OTLP only": (False, True), "both": (True, True)}
PROCESS = "both, child process"  # the "both" database, exported by ExportProcess
DEPLOYMENTS = {i: DeploymentInfo.of(f"model-{i}@bench", "openai", f"http://10.0.0.{i}:8000/v1") for i in range(1, 14)}
ARRIVAL_S, HOT_S, STREAM_EVERY_S = 0.002, 4.0, 0.1  # part 3: a unit every 2 ms; a batch offered every 100 ms
UNIT_REPS = 10  # part 3's unit: json.loads + json.dumps of BODY ten times, ~0.3 ms of request-like work
TURNS = [
    {"role": ("user", "assistant")[i % 2], "content": f"Turn {i}: " + "lorem ipsum dolor sit amet " * 6}
    for i in range(12)
]
BODY = json.dumps({"model": "chat", "max_tokens": 256, "stream": False, "messages": TURNS})


def serve(conn: Connection, lf: Synchronized[int], otlp: Synchronized[int]) -> None:
    """The child process: the tests' receiver, counting the spans it decodes per path instead of keeping them."""
    counts = {LF_PATH: lf, OTLP_PATH: otlp}

    class Counting(Receiver):
        def _keep(self, path: str, request: ExportTraceServiceRequest) -> None:
            with counts[path].get_lock():
                counts[path].value += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)

    running = Running(Counting())
    conn.send(running.receiver.port)
    with contextlib.suppress(EOFError):
        conn.recv()  # until the parent says stop or goes away
    running.stop()


class Bench:
    """Databases with each variant's sinks saved, the receiver's counters, and the figures gathered."""

    def __init__(self, folder: Path, url: str, lf: Synchronized[int], otlp: Synchronized[int]) -> None:
        self.folder, self.counts = folder, {LF_PATH: lf, OTLP_PATH: otlp}
        self.template = folder / "template.db"
        upgrade(f"sqlite:///{self.template}")
        with contextlib.closing(sqlite3.connect(self.template)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file before copying
        key = "telemetry-benchmark-secret-key-0123456789"
        self.box = SecretBox(key)  # the child process builds the same box from the settings' key
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=folder, upstream_allowlist=["127.0.0.1/32"], secret_key=key
        )
        self.engines: dict[str, Engine] = {"off": self.fresh("off")}
        for name, (use_lf, use_otlp) in VARIANTS.items():
            engine = self.engines[name] = self.fresh(name.replace(" ", "-"))
            if use_lf:
                admin.save_langfuse(
                    engine, self.box, self.settings, "bench", enabled=True, host=url, public_key=PUBLIC_KEY,
                    secret_key=SECRET_KEY, include_bodies=self.settings.langfuse_include_bodies, sample_rate=1.0,
                )  # fmt: skip
            if use_otlp:
                admin.save_otlp(
                    engine, self.box, self.settings, "bench", enabled=True, endpoint=url, headers="",
                    service_name="llm-console-bench", include_bodies=self.settings.otel_include_bodies, sample_rate=1.0,
                )  # fmt: skip
        self.figures: dict[str, list[float]] = {}
        self.missing: list[str] = []

    def fresh(self, name: str) -> Engine:
        return make_engine(f"sqlite:///{shutil.copyfile(self.template, self.folder / f'{name}.db')}")

    def add(self, key: str, values: float | Sequence[float]) -> None:
        self.figures.setdefault(key, []).extend([values] if isinstance(values, float) else values)

    async def started(self, variant: str) -> TelemetryExporter | ExportProcess:
        if variant == PROCESS:
            child = ExportProcess(self.engines["both"], self.box, self.settings, lambda: DEPLOYMENTS)
            await child.start()  # returns with the child started (it opens its sinks before its first batch)
            return child
        exp = TelemetryExporter(self.engines[variant], self.box, self.settings, lambda: DEPLOYMENTS)
        await exp.start()
        want, deadline = sum(VARIANTS.get(variant, (False, False))), time.monotonic() + 30
        while len(exp.sinks) < want or (want == 0 and exp.active):  # sinks open, or the settings read (off)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{variant}: the exporter did not open its sinks")
            await asyncio.sleep(0.02)
        return exp

    def expected(self, variant: str, calls: Sequence[LogRecord]) -> dict[str, int]:
        """Receiver counts once every span of `calls` arrived: one per call for Langfuse, 1 + spans for OTLP."""
        use_lf, use_otlp = VARIANTS.get("both" if variant == PROCESS else variant, (False, False))
        return {
            LF_PATH: self.counts[LF_PATH].value + (len(calls) if use_lf else 0),
            OTLP_PATH: self.counts[OTLP_PATH].value + (sum(1 + len(r.spans) for r in calls) if use_otlp else 0),
        }

    async def arrived(self, want: dict[str, int], label: str, stall_s: float = 5.0, dropping: bool = False) -> int:
        """Wait until the receiver holds `want` spans; give up when nothing came for `stall_s` and return how many
        Langfuse generations (one per call) are missing: noted as a failure unless `dropping` is expected."""
        seen, since = -1, time.monotonic()
        while any(self.counts[p].value < n for p, n in want.items()):
            if (now := sum(c.value for c in self.counts.values())) != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since > stall_s:
                short = {p: n - self.counts[p].value for p, n in want.items()}
                if not dropping:
                    self.missing.append(f"{label}: spans not received (dropped: a queue or backlog was full): {short}")
                return short[LF_PATH]
            await asyncio.sleep(0.01)
        return 0

    async def export(self, variant: str, batches: list[list[LogRecord]]) -> None:
        """Parts 1 and 2: offer every batch (timing each hand-off) as fast as the queue and the sinks' backlog
        bounds allow without dropping, then wait until the receiver holds every span. "off": no sink is on."""
        exp = await self.started(variant)
        calls = [r for b in batches for r in b]
        idle_cpu, idle_wall = time.process_time(), time.perf_counter()
        while time.perf_counter() - idle_wall < 0.5:  # noqa: ASYNC110
            await asyncio.sleep(0.005)  # the same polling as below, nothing to export
        idle_rate = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
        want, offers, offered = self.expected(variant, calls), [], 0
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            while not room(exp, self.settings, offered, batch):  # noqa: ASYNC110 (pacing on the worker's threads)
                await asyncio.sleep(0.005)
            start = time.perf_counter()
            exp.offer(batch)
            offers.append((time.perf_counter() - start) * 1e6)
            offered += len(batch) if exp.active else 0  # (off: offer queued nothing)
        await self.arrived(want, variant)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await exp.stop()
        self.add(f"export {variant}", cpu / len(calls) * 1e6)
        self.add(f"export {variant} idle-equivalent", idle_rate * wall / len(calls) * 1e6)
        self.add(f"export {variant} wall s", wall)
        self.add(f"offer {variant}", offers)

    def write(self, batches: list[list[LogRecord]], name: str) -> None:
        """Part 2's baseline: the log writer's `write_batch` (rollups on) of the same records, on a fresh database."""
        engine, cpu = self.fresh(name), time.process_time()
        for batch in batches:
            logstore.write_batch(engine, batch)
        self.add("log writer", (time.process_time() - cpu) / sum(len(b) for b in batches) * 1e6)
        engine.dispose()

    async def hot_path(self, phase: str, stream: list[list[LogRecord]]) -> None:
        """Part 3: a unit of work arrives every ARRIVAL_S; latency is from its arrival to its end (timer, GIL
        waits and the unit), beside the unit alone. While exporting, a batch is offered every STREAM_EVERY_S."""
        variant = PROCESS if phase == "process" else "both"
        exp = await self.started(variant)
        want = self.expected(variant, [r for b in stream for r in b])

        async def feed() -> None:
            t0 = time.perf_counter()
            for i, batch in enumerate(stream):
                await asyncio.sleep(max(0.0, t0 + i * STREAM_EVERY_S - time.perf_counter()))
                exp.offer(batch)

        feeder = asyncio.create_task(feed()) if phase != "idle" else None
        latency, alone = [], []
        due = start = time.perf_counter()
        while due < start + HOT_S:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            begun = time.perf_counter()
            for _ in range(UNIT_REPS):
                json.dumps(json.loads(BODY))
            done = time.perf_counter()
            latency.append((done - due) * 1e3)
            alone.append((done - begun) * 1e3)
            due += ARRIVAL_S
        if feeder is not None:
            await feeder
            lost = await self.arrived(want, "hot path", dropping=True)  # above capacity, calls are dropped
            self.add(f"hot {phase} dropped", lost / sum(len(b) for b in stream))
        await exp.stop()
        self.add(f"hot {phase} latency", latency)
        self.add(f"hot {phase} unit", alone)


def room(exp: TelemetryExporter | ExportProcess, settings: Settings, offered: int, batch: list[LogRecord]) -> bool:
    """True when the calls not yet converted and `batch` fit the exporter's queue and every sink's span backlog
    (else some would be dropped). A child's sinks are out of sight: it gets a batch once it handled the last."""
    queued, otlp_spans = offered - exp.handed + len(batch), 1 + max(len(r.spans) for r in batch)
    if queued > settings.telemetry_queue_size:
        return False
    if isinstance(exp, ExportProcess):
        return queued <= len(batch)
    for sink in exp.sinks.values():
        if isinstance(sink, langfuse_sink.LangfuseSink):
            need, limit = queued, langfuse_sink.MAX_BACKLOG_SPANS
        elif isinstance(sink, otlp_sink.OtlpSink):
            need, limit = queued * otlp_spans, otlp_sink.MAX_BACKLOG_SPANS
        else:
            continue
        if sink.backlog and sink.backlog + need > limit:
            return False
    return True


async def run(args: argparse.Namespace, url: str, lf: Synchronized[int], otlp: Synchronized[int]) -> Bench:
    with tempfile.TemporaryDirectory(prefix="llmc-telemetry-bench-") as folder:
        bench = Bench(Path(folder), url, lf, otlp)
        for variant in VARIANTS:  # warm-up, not counted: first conversions, connections, lazy imports
            await bench.export(variant, records(1, 50, seed=0))
        bench.figures.clear()
        began = time.perf_counter()
        for r in range(args.rounds):
            batches = records(args.batches, args.batch_size, seed=r + 1)
            stream = records(round(HOT_S / STREAM_EVERY_S), max(1, round(args.rate * STREAM_EVERY_S)), seed=100 + r)
            steps = ["writer", "off", *VARIANTS, PROCESS]
            for step in steps[r % len(steps) :] + steps[: r % len(steps)]:  # rotate the order each round
                if step == "writer":
                    bench.write(batches, f"writer-{r}")
                else:
                    await bench.export(step, batches)
            phases = ["idle", "thread", "process"]
            for phase in phases[r % 3 :] + phases[: r % 3]:
                await bench.hot_path(phase, stream)
            print(f"round {r + 1}/{args.rounds} done at {time.perf_counter() - began:.0f} s", file=sys.stderr)
        for engine in bench.engines.values():
            engine.dispose()
    return bench


def report(bench: Bench, args: argparse.Namespace) -> None:
    f, median = bench.figures, statistics.median
    med, p99 = (lambda key: median(f[key])), (lambda values: sorted(values)[round(0.99 * (len(values) - 1))])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds of {args.batches} batches of {args.batch_size}")
    print(f"\n1. hand-off on the event loop: offer(batch of {args.batch_size}), {len(f['offer both'])} offers each")
    print(f"{'sinks':<22}{'median µs':>10}{'p99':>10}")
    for label, key in (
        ("both off (baseline)", "offer off"),
        ("both on, thread", "offer both"),
        ("both on, child", f"offer {PROCESS}"),
    ):
        print(f"{label:<22}{med(key):>10.2f}{p99(f[key]):>10.2f}")
    print("\n2. export CPU per call: process CPU, all threads, first offer to last span received; median of rounds")
    print(f"{'what':<32}{'CPU µs/call':>12}{'x writer':>10}{'idle-eq µs':>12}{'wall s':>8}")
    base = med("log writer")
    print(f"{'log writer write_batch (baseline)':<32}{base:>12.1f}{1.0:>10.2f}{'':>12}{'':>8}")
    for v in [*VARIANTS, PROCESS]:
        cpu = med(f"export {v}")
        print(f"{v:<32}{cpu:>12.1f}{cpu / base:>10.2f}{med(f'export {v} idle-equivalent'):>12.1f}"
              f"{med(f'export {v} wall s'):>8.2f}")  # fmt: skip
    print("   idle-eq: the started exporter's CPU doing nothing, over the same wall time (included, not subtracted)")
    print(f"\n3. hot path: {UNIT_REPS} x json.loads+dumps of a {len(BODY)} B body every {ARRIVAL_S * 1e3:.0f} ms, ms")
    print(f"{'exporter':<26}{'units':>7}{'latency p50':>12}{'p99':>10}{'unit p50':>10}{'p99':>8}{'dropped':>9}")
    for label, phase in (
        ("idle (baseline)", "idle"),
        (f"{args.rate:,} calls/s, thread", "thread"),
        (f"{args.rate:,} calls/s, child", "process"),
    ):
        lat, unit = f[f"hot {phase} latency"], f[f"hot {phase} unit"]
        lost = f"{median(f[f'hot {phase} dropped']):>8.0%}" if phase != "idle" else ""
        print(
            f"{label:<26}{len(lat):>7}{median(lat):>12.3f}{p99(lat):>10.3f}{median(unit):>10.3f}{p99(unit):>8.3f}{lost:>9}"
        )
    print("   dropped: share of the calls offered that never reached Langfuse (counted in the sinks' status)")
    for line in bench.missing:
        print(f"MISSING: {line}")
    if args.json:
        out = {"args": vars(args), "load": os.getloadavg(), "figures": f, "missing": bench.missing}
        Path(args.json).write_text(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="calls per second exported in part 3")
    parser.add_argument("--json", metavar="PATH", help="write every figure (all rounds, all samples) here")
    args = parser.parse_args()
    if min(args.batches, args.batch_size, args.rounds) < 1 or args.batch_size > 1500:
        parser.error("--batches and --rounds must be at least 1, --batch-size 1 to 1500 (the sinks' backlogs)")
    for name in [n for n in os.environ if n.startswith(("LLMC_", "LANGFUSE_", "OTEL_"))]:
        del os.environ[name]  # the settings and SDKs would read them
    ctx = multiprocessing.get_context("spawn")
    lf, otlp = ctx.Value("q", 0), ctx.Value("q", 0)
    parent, child = ctx.Pipe()
    receiver = ctx.Process(target=serve, args=(child, lf, otlp), name="telemetry-receiver", daemon=True)
    receiver.start()
    try:
        port = parent.recv()
        bench = uvloop.run(run(args, f"http://127.0.0.1:{port}", lf, otlp))
    finally:
        parent.send("stop")
        receiver.join(10)
    report(bench, args)
    return 1 if bench.missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
