"""Gateway overhead: latency and throughput through the standalone gateway vs. the simulator called directly.

Starts the simulator (fast mode) and `llm-console gateway` on 127.0.0.1, drives both with the same aiohttp
load for each mode x concurrency cell, alternating direct and gateway slices, and prints one table.
Run `.venv/bin/python benchmarks/gateway_overhead.py --help`; benchmarks/README.md explains the columns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.load import MAX_TOKENS, Slice, Target, drive, make_target, new_session, pct
from benchmarks.servers import ALIAS, UPSTREAM_MODEL, BenchError, Server, Stack, running_stack

MAX_ERROR_RATE = 0.01
# A connection sits idle for two slices; uvicorn drops keep-alive connections idle for 5 s, and reusing one
# just as the server closes it fails the request, so slices stay short enough never to get near that.
MAX_IDLE_S = 3.0
TARGETS = ("direct", "gateway")
LEGEND = """\
Latencies in ms; '+' columns are gateway minus direct (difference of percentiles); ttfb = first body chunk
(streams only); gw cpu = gateway CPU ms per request; other = CPU of processes not started here, in % of one
core (noise: distrust rows where it is high); RPS counts only 200s; err = failed requests direct/gateway."""
SHARED_CORES_CAVEAT = """\
Caveat: client, simulator and gateway share these cores: gateway runs put three busy processes on them, direct
runs two. The added latency and the RPS drop include that contention; where the gateway has its own core(s) the
overhead is smaller. 'gw cpu' is the figure that does not depend on the machine's load."""


def cpu_snapshot(servers: dict[str, Server]) -> dict[str, float]:
    t = psutil.Process().cpu_times()
    return {"client": t.user + t.system, **{name: s.cpu_s() for name, s in servers.items()}}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have run (user + nice + system; interrupts left out, since
    loopback traffic is charged there rather than to our processes)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system


@dataclass
class Cell:
    mode: str
    concurrency: int
    results: dict[str, Slice]
    requests_sent: dict[str, int]
    gateway_cpu_s: float
    other_cpu_pct: float  # processes that are not ours, in % of one core: noise in this row


async def run_cell(
    stack: Stack, targets: dict[str, Target], mode: str, concurrency: int, duration: float, warmup: float
) -> Cell:
    """Warm both targets, then A B B A ... slices (A = direct, B = gateway) so drift hits both equally."""
    stream = mode == "stream"
    results = {name: Slice() for name in TARGETS}
    sent = dict.fromkeys(TARGETS, 0)
    async with contextlib.AsyncExitStack() as exits:
        sessions = {name: await exits.enter_async_context(new_session()) for name in TARGETS}
        gw_before = stack.servers["gateway"].cpu_s()
        ours_before, busy_before, t_before = cpu_snapshot(stack.servers), machine_busy_s(), time.monotonic()
        for name in TARGETS:
            warm = await drive(sessions[name], targets[name], stream, concurrency, warmup)
            sent[name] += warm.ok + warm.n_errors
        rounds = slice_rounds(duration)
        for name in ("direct", "gateway", "gateway", "direct") * rounds:
            before = cpu_snapshot(stack.servers)
            part = await drive(sessions[name], targets[name], stream, concurrency, duration / (2 * rounds))
            part.cpu_s = cpu_delta(before, cpu_snapshot(stack.servers))
            results[name].extend(part)
            sent[name] += part.ok + part.n_errors
        # over the whole cell, so log batches flushed after the last gateway slice are counted too
        gw_cpu = stack.servers["gateway"].cpu_s() - gw_before
        ours = sum(cpu_delta(ours_before, cpu_snapshot(stack.servers)).values())
        other = max(0.0, machine_busy_s() - busy_before - ours) / (time.monotonic() - t_before)
    return Cell(mode, concurrency, results, sent, gw_cpu, round(100 * other, 1))


def slice_rounds(duration: float) -> int:
    """ABBA rounds per cell, so that no keep-alive connection idles longer than MAX_IDLE_S between slices."""
    return max(1, math.ceil(duration / MAX_IDLE_S))


def summary(sl: Slice) -> dict[str, Any]:
    lat, ttfb = sl.latencies_ms, sl.ttfb_ms
    return {
        "ok": sl.ok,
        "errors": dict(sl.errors),
        "elapsed_s": round(sl.elapsed_s, 3),
        "rps": round(sl.rps, 1),
        "latency_ms": {q: pct(lat, v) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))}
        | {"mean": sum(lat) / len(lat) if lat else None},
        "ttfb_ms": {q: pct(ttfb, v) for q, v in (("p50", 0.5), ("p99", 0.99))} if ttfb else None,
        "cpu_ms_per_request": {k: 1000 * v / sl.ok for k, v in sl.cpu_s.items()} if sl.ok else {},
    }


COLUMNS = (
    ("mode", 9), ("conc", 4), ("RPS dir", 8), ("RPS gw", 8), ("gw/dir", 6),
    ("p50 dir", 8), ("p50 gw", 8), ("+p50", 7), ("p99 dir", 8), ("p99 gw", 8), ("+p99", 7),
    ("ttfb dir", 8), ("ttfb gw", 8), ("+ttfb", 7), ("gw cpu", 6), ("other", 5), ("err d/g", 9),
)  # fmt: skip


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def diff(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{b - a:+.2f}"


def table_row(cell: Cell) -> list[str]:
    d, g = cell.results["direct"], cell.results["gateway"]
    p = {(t, q): pct(cell.results[t].latencies_ms, q) for t in TARGETS for q in (0.5, 0.99)}
    td, tg = pct(d.ttfb_ms, 0.5), pct(g.ttfb_ms, 0.5)
    gw_cpu_ms = 1000 * cell.gateway_cpu_s / cell.requests_sent["gateway"] if cell.requests_sent["gateway"] else None
    return [
        cell.mode, str(cell.concurrency), fmt(d.rps, 0), fmt(g.rps, 0),
        f"{100 * g.rps / d.rps:.0f}%" if d.rps else "-",
        fmt(p["direct", 0.5]), fmt(p["gateway", 0.5]), diff(p["direct", 0.5], p["gateway", 0.5]),
        fmt(p["direct", 0.99]), fmt(p["gateway", 0.99]), diff(p["direct", 0.99], p["gateway", 0.99]),
        fmt(td), fmt(tg), diff(td, tg), fmt(gw_cpu_ms), f"{cell.other_cpu_pct:.0f}%", f"{d.n_errors}/{g.n_errors}",
    ]  # fmt: skip


def render_table(cells: list[Cell]) -> str:
    lines = ["  ".join(name.rjust(width) for name, width in COLUMNS)]
    lines.append("  ".join("-" * width for _, width in COLUMNS))
    for cell in cells:
        lines.append("  ".join(v.rjust(width) for v, (_, width) in zip(table_row(cell), COLUMNS, strict=True)))
    return "\n".join(lines)


def count_logged(db: Path) -> int | None:
    """Rows the gateway's log writer committed (read after the gateway has shut down)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return None


def environment() -> dict[str, Any]:
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "uvicorn_http": http,
        "uvicorn_loop": loop,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per target and cell (default 5)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per target and cell (default: 20%%)")
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated concurrency levels (default 1,16,64)")
    p.add_argument("--modes", default="nonstream,stream", help="comma-separated: nonstream, stream (default both)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures here")
    args = p.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency takes comma-separated integers, e.g. 1,16,64")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive integers")
    if not args.modes or set(args.modes) - {"stream", "nonstream"}:
        p.error("--modes takes stream and/or nonstream")
    if args.duration <= 0:
        p.error("--duration must be positive")
    args.warmup = min(1.0, 0.2 * args.duration) if args.warmup is None else max(0.0, args.warmup)
    return args


def interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM outside the event loop: unwind like Ctrl-C so the servers are stopped."""
    raise KeyboardInterrupt


async def run_all(stack: Stack, args: argparse.Namespace) -> list[Cell]:
    # inside the loop, SIGTERM cancels the run cleanly (raising from a handler would hit a random task)
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_cells(stack, args)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, interrupt)


async def run_cells(stack: Stack, args: argparse.Namespace) -> list[Cell]:
    targets = {
        "direct": make_target(stack.urls["direct"], UPSTREAM_MODEL, None),
        "gateway": make_target(stack.urls["gateway"], ALIAS, stack.key),
    }
    cells = []
    for mode in args.modes:
        for conc in args.concurrency:
            cell = await run_cell(stack, targets, mode, conc, args.duration, args.warmup)
            d, g = cell.results["direct"], cell.results["gateway"]
            print(f"  {mode:>9} c={conc:<3} direct {d.rps:7.0f} rps   gateway {g.rps:7.0f} rps", file=sys.stderr)
            cells.append(cell)
    return cells


def report(stack: Stack, args: argparse.Namespace, env: dict[str, Any], cells: list[Cell]) -> dict[str, Any]:
    """Print the table and footer; stops the gateway (to count logged rows) and returns the JSON figures."""
    gw = stack.servers["gateway"]
    rss_mib = gw.rss_bytes() / 2**20
    gw_cpu_total = gw.cpu_s()  # includes start-up (imports, migrations check, route load)
    gw_requests = sum(c.requests_sent["gateway"] for c in cells)
    gw_cpu_cells = sum(c.gateway_cpu_s for c in cells)
    gw.stop(grace_s=30.0)
    logged = count_logged(stack.root / "data" / "llm_console.db")
    spooled = len(list((stack.root / "data" / "spool").glob("*.jsonl")))

    print()
    print(render_table(cells))
    print()
    print(LEGEND)
    print(
        f"Gateway: RSS {rss_mib:.0f} MiB at the end; CPU {1000 * gw_cpu_cells / max(gw_requests, 1):.2f} ms/request "
        f"over {gw_requests} requests ({gw_cpu_total:.1f} s CPU since start, start-up included)."
    )
    logged_text = "unknown" if logged is None else str(logged)
    lost = "" if logged is None or logged >= gw_requests else f" ({gw_requests - logged} MISSING)"
    print(f"Request log: {logged_text} rows for {gw_requests} gateway requests{lost}; {spooled} spool file(s).")
    print(
        f"Machine: {env['cpus_usable']} usable CPU(s), load {env['load_avg_1m']} before start; "
        f"simulator on uvicorn ({env['uvicorn_loop']} loop, {env['uvicorn_http']} parser); Python {env['python']}."
    )
    if (env["cpus_usable"] or 1) < 4:
        print(SHARED_CORES_CAVEAT)
    return {
        "config": {"duration_s": args.duration, "warmup_s": args.warmup, "max_tokens": MAX_TOKENS},
        "environment": env,
        "cells": [
            {
                "mode": c.mode,
                "concurrency": c.concurrency,
                "requests_sent": c.requests_sent,
                "gateway_cpu_ms_per_request": 1000 * c.gateway_cpu_s / max(c.requests_sent["gateway"], 1),
                "other_processes_cpu_pct_of_one_core": c.other_cpu_pct,
                **{name: summary(sl) for name, sl in c.results.items()},
            }
            for c in cells
        ],
        "gateway": {
            "rss_bytes_end": int(rss_mib * 2**20),
            "cpu_s_measured": gw_cpu_cells,
            "cpu_s_total": gw_cpu_total,
            "requests": gw_requests,
            "log_rows": logged,
            "spool_files": spooled,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    signal.signal(signal.SIGTERM, interrupt)
    cells_n = len(args.modes) * len(args.concurrency)
    est = cells_n * 2 * (args.duration + args.warmup)
    print(f"gateway_overhead: {cells_n} cells, about {est:.0f}s of load plus start-up", file=sys.stderr)
    try:
        with running_stack() as stack:
            cells = asyncio.run(run_all(stack, args))
            figures = report(stack, args, env, cells)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"Raw figures written to {args.json}")
    total = sum(sl.ok + sl.n_errors for c in cells for sl in c.results.values())
    errors = sum(sl.n_errors for c in cells for sl in c.results.values())
    kinds = Counter[str]()
    for c in cells:
        for name, sl in c.results.items():
            kinds.update({f"{name}: {k}": v for k, v in sl.errors.items()})
    if kinds:
        print("Errors: " + ", ".join(f"{k} x{v}" for k, v in kinds.most_common()))
    if total == 0 or errors / total > MAX_ERROR_RATE:
        print(f"FAIL: {errors} of {total} measured requests failed (limit {MAX_ERROR_RATE:.0%})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
