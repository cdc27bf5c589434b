"""Measuring one system under test: load cells (wrk or aiohttp), the streaming probe, the gap cell, the soak.

Every cell also reads the server's CPU time and RSS, and how much CPU the rest of the machine used meanwhile.
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import psutil

from benchmarks.load import StreamStats, Target, drive_fresh, pct, probe_streams
from benchmarks.report import MIB, Row, Soak
from benchmarks.servers import BenchError
from benchmarks.targets import Fleet, Sut
from benchmarks.wrk import LoadResult, finish_wrk, run_wrk, start_wrk, write_mixed_script, write_script, wrk_command

SOAK_SAMPLE_S = 5.0
MIN_LATENCIES = 10  # a measured window is at least this many mean latencies long (up to a cap)
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """The Python client on uvloop when present: the cheaper the client, the less it steals from the upstream."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)


STARTED = time.monotonic()


def elapsed() -> str:
    s = int(time.monotonic() - STARTED)
    return f"{s // 60}:{s % 60:02d}"


def cpu_of_ours(fleet: Fleet) -> float:
    """CPU seconds of everything this benchmark runs: servers, this process, and finished children (wrk, CLI)."""
    own = psutil.Process().cpu_times()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(s.cpu_s() for s in fleet.servers.values()) + own.user + own.system + kids.ru_utime + kids.ru_stime


def machine_busy_s() -> float:
    """All CPU time spent on the machine. Interrupt time is included: with tick-based accounting (no
    IRQ_TIME_ACCOUNTING, as here) a tick in a softirq, such as loopback TCP, is charged to the interrupted
    process's system time too, so leaving it out here would make our processes look busier than the machine."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq


class Runner:
    """Measures cells against one system under test at a time."""

    def __init__(self, args: argparse.Namespace, fleet: Fleet, wrk: str | None) -> None:
        self.args, self.fleet, self.wrk = args, fleet, wrk
        self.sent: dict[str, int] = {}

    def load(self, sut: Sut, target: Target, stream: bool, conc: int, seconds: int) -> LoadResult:
        if self.wrk:
            body = target.body_stream if stream else target.body_nonstream
            script = write_script(self.fleet.root / f"{sut.name}-{stream}.lua", body, target.headers)
            result = run_wrk(self.wrk, target.url, script, conc, seconds, self.fleet.layout.client)
        else:
            sl = run_async(drive_fresh(target, stream, conc, seconds))
            lat = sl.latencies_ms
            result = LoadResult(
                sl.ok, sl.elapsed_s, pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(lat, 1.0),
                sum(lat) / len(lat) if lat else None, dict(sl.errors), tool="python",
            )  # fmt: skip
        self.sent[sut.name] = self.sent.get(sut.name, 0) + result.ok + result.n_errors
        return result

    def cell(self, sut: Sut, mode: str, conc: int) -> Row:
        stream, target = mode == "stream", sut.target()
        warm = self.load(sut, target, stream, conc, self.args.warmup) if self.args.warmup else None
        seconds = self.window_s(warm, conc)
        cpu0, ours0, busy0, t0 = sut.server.cpu_s(), cpu_of_ours(self.fleet), machine_busy_s(), time.monotonic()
        result = self.load(sut, target, stream, conc, seconds)
        cpu1, ours1, busy1, t1 = sut.server.cpu_s(), cpu_of_ours(self.fleet), machine_busy_s(), time.monotonic()
        row = Row(sut.name, mode, conc, result, rss_mib=sut.server.rss_bytes() / MIB, seconds=seconds)
        row.cpu_ms = 1000 * (cpu1 - cpu0) / result.ok if result.ok else None
        row.other_pct = 100 * max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0)
        if stream:
            row.ttfb = run_async(probe_streams(target, conc, self.args.probe))
            self.sent[sut.name] += len(row.ttfb.ttfb_ms) + sum(row.ttfb.errors.values())
        errors = result.n_errors + (sum(row.ttfb.errors.values()) if row.ttfb else 0)
        print(f"    {sut.name:>8} {mode:>9} c={conc:<3} {result.rps:9.0f} RPS  p50 {result.p50_ms or 0:7.2f} ms"
              f"  cpu {row.cpu_ms or 0:6.3f} ms/req  errors {errors}  [{seconds}s, at {elapsed()}]",
              file=sys.stderr)  # fmt: skip
        return row

    def window_s(self, warm: LoadResult | None, conc: int) -> int:
        """The measured seconds: `--duration`, stretched (up to a cap) for a slow target so the window holds at
        least MIN_LATENCIES latencies; wrk drops requests in flight at the end, so a short window undercounts.
        The latency is the larger of the warm-up's mean and Little's law (connections / throughput), since a
        short warm-up of a slow server sees mostly its first, fastest answers."""
        base = self.args.duration
        if warm is None:
            return base
        cap = max(8, 4 * base)
        if not warm.ok:
            return cap
        latency_s = max((warm.mean_ms or 0) / 1000, conc / warm.rps if warm.rps else 0)
        if MIN_LATENCIES * latency_s <= base:
            return base
        return min(cap, max(base, math.ceil(MIN_LATENCIES * latency_s)))

    def safe_cell(self, sut: Sut, mode: str, conc: int) -> Row:
        """A cell whose load run broke (wrk crashed, the server died) becomes a skipped row, not a lost run."""
        try:
            return self.cell(sut, mode, conc)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"    {sut.name} {mode} c={conc} failed: {exc}", file=sys.stderr)
            return Row(sut.name, mode, conc, skipped=str(exc).splitlines()[0][:60])

    def gaps(self, sut: Sut) -> StreamStats | None:
        target = sut.slow_target()
        if target is None:
            return None
        return run_async(probe_streams(target, 1, self.args.gap))

    def soak(self, sut: Sut) -> Soak:
        """c=64 for `--soak` minutes, streaming and not interleaved, sampling the gateway's RSS as it runs."""
        soak, seconds = Soak(self.args.soak), max(1, round(self.args.soak * 60))
        target = sut.target()
        if self.wrk is None:
            raise BenchError("the soak needs wrk (the Python client cannot hold c=64 for minutes on one core)")
        script = write_mixed_script(
            self.fleet.root / "soak.lua", [target.body_nonstream, target.body_stream], target.headers
        )
        t0 = time.monotonic()

        def sample() -> None:
            s = sut.server
            soak.samples.append((time.monotonic() - t0, s.worker_rss_bytes() / MIB, s.rss_bytes() / MIB))

        sample()
        proc = start_wrk(wrk_command(self.wrk, target.url, script, 64, seconds), self.fleet.layout.client)
        try:
            while proc.poll() is None:
                time.sleep(SOAK_SAMPLE_S)
                sample()
            soak.load = finish_wrk(proc, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.sent[sut.name] += soak.load.ok + soak.load.n_errors
        print(f"    soak: {soak.load.rps:.0f} RPS over {seconds}s; worker RSS "
              f"{soak.samples[0][1]:.0f} -> {soak.samples[-1][1]:.0f} MiB", file=sys.stderr)  # fmt: skip
        return soak
