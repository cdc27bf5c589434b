"""Gateway vs. the floor and the peer: one run, one table, acceptance targets with PASS/FAIL.

Runs, one after another on 127.0.0.1 with the same upstream and the same load: the upstream called
directly, a bare pass-through proxy (benchmarks/bare_proxy.py), `llm-console gateway` (standalone, one
worker), the gateway mounted in `llm-console run`, and LiteLLM's proxy (own cached venv). Each at
concurrency 1, 16, 64, streaming and not. `.venv/bin/python benchmarks/gateway_compare.py --quick`;
benchmarks/README.md explains the columns and the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks import litellm_env
from benchmarks.cells import Runner, run_async
from benchmarks.environment import describe_environment
from benchmarks.load import StreamStats, check
from benchmarks.report import MIB, Row, Soak, evaluate, gaps_json, render_gaps, render_table, row_json
from benchmarks.servers import HUGE_LIMIT, BenchError
from benchmarks.targets import Fleet, Layout, Sut, core_layout
from benchmarks.wrk import find_or_install_wrk

ALL_TARGETS = ("direct", "bare", "gateway", "console", "litellm")
# (warm-up s, measured s, streaming probe s, gap cell s) per cell
PRESETS = {"quick": (1, 2, 1.0, 2.0), "full": (2, 8, 3.0, 5.0)}


def count_log_rows(data_dir: Path) -> int | None:
    """Rows the gateway's log writer committed; read after it has shut down (which drains its queue)."""
    db = data_dir / "llm_console.db"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return None


def start(fleet: Fleet, name: str, lite: litellm_env.LiteLLMEnv | None) -> Sut:
    if name == "direct":
        return fleet.direct()
    if name == "bare":
        return fleet.start_bare()
    if name == "gateway":
        return fleet.start_gateway()
    if name == "console":
        print("    starting `llm-console run` (the first start builds the frontend; allow ~90 s) ...", file=sys.stderr)
        return fleet.start_console()
    assert lite is not None
    return fleet.start_litellm(lite)


def run(args: argparse.Namespace, layout: Layout, wrk: str | None, lite: litellm_env.LiteLLMEnv | None,
        notes: list[str]) -> dict[str, Any]:  # fmt: skip
    rows: list[Row] = []
    gaps: dict[str, StreamStats] = {}
    idle: dict[str, dict[str, float]] = {}
    soak: Soak | None = None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="llmc-cmp-")
    with work as tmp:
        fleet = Fleet(Path(tmp).resolve(), layout)
        try:
            fleet.start_upstreams(args.tps)
            fleet.setup_data()
            notes.append(
                "gateway limits: " + (" ".join(f"{f} {HUGE_LIMIT}" for f in fleet.limit_flags) if fleet.limit_flags
                                      else "create-key offers no limit flags in this build (none set)")
            )  # fmt: skip
            runner = Runner(args, fleet, wrk)
            for name in args.targets:
                print(f"  {name}:", file=sys.stderr)
                try:
                    sut = start(fleet, name, lite)
                    problem = run_async(check(sut.target()))
                    if problem:
                        raise BenchError(f"{name} answered wrongly: {problem}")
                    time.sleep(1.0)
                    if name == "console":
                        names = sorted({p.name() for p in sut.server.tree()})
                        notes.append(f"console tree pinned: {len(sut.server.tree())} processes ({', '.join(names)})")
                    idle[name] = {"worker_mib": sut.server.worker_rss_bytes() / MIB,
                                  "tree_mib": sut.server.rss_bytes() / MIB}  # fmt: skip
                except BenchError as exc:
                    notes.append(f"{name} skipped: {str(exc).splitlines()[0]}")
                    print(f"    {name} skipped: {exc}", file=sys.stderr)
                    rows += [Row(name, m, c, skipped="did not start") for m in args.modes for c in args.concurrency]
                    if name != "direct":
                        fleet.stop(name)
                    continue
                for mode in args.modes:
                    rows += [runner.safe_cell(sut, mode, c) for c in args.concurrency]
                stats = runner.gaps(sut) if "stream" in args.modes else None
                if stats is not None:
                    gaps[name] = stats
                if name == "gateway" and args.soak > 0:
                    try:
                        soak = runner.soak(sut)
                    except BenchError as exc:
                        notes.append(f"soak skipped: {exc}")
                if name != "direct":
                    fleet.stop(name)
                if name == "gateway":
                    logged = count_log_rows(fleet.root / "data")
                    notes.append(
                        f"gateway request log: {logged} rows written; the clients counted {runner.sent[name]} "
                        "answers (wrk leaves out those in flight when a run ends)"
                    )
        finally:
            fleet.close()
    return {"rows": rows, "gaps": gaps, "idle": idle, "soak": soak}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short cells, no console unless --console (~2-3 min)")
    p.add_argument("--duration", type=int, help="measured seconds per cell (quick 2, full 8)")
    p.add_argument("--warmup", type=int, help="unmeasured seconds before each cell (quick 1, full 2)")
    p.add_argument("--probe", type=float, help="seconds of the Python streaming probe (TTFB) per stream cell")
    p.add_argument("--gap", type=float, help="seconds of the inter-chunk gap cell per target")
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated (default 1,16,64)")
    p.add_argument("--modes", default="nonstream,stream", help="nonstream, stream or both (default both)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS), help="subset of " + ",".join(ALL_TARGETS))
    p.add_argument("--console", action=argparse.BooleanOptionalAction, default=None,
                   help="include the console-mounted gateway (default: on, off with --quick)")  # fmt: skip
    p.add_argument("--litellm", action=argparse.BooleanOptionalAction, default=True, help="include LiteLLM")
    p.add_argument("--litellm-version", default=litellm_env.LITELLM_VERSION)
    p.add_argument("--soak", type=float, default=0.0, metavar="MINUTES", help="c=64 soak of the gateway (0: off)")
    p.add_argument("--tps", type=float, default=200.0, help="simulator tokens/s for the inter-chunk gap cell")
    p.add_argument("--no-install", action="store_true", help="never apt-get wrk nor pip-install LiteLLM")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it: server logs, data, scripts")
    args = p.parse_args(argv)
    warmup, duration, probe, gap = PRESETS["quick" if args.quick else "full"]
    args.warmup = warmup if args.warmup is None else max(0, args.warmup)
    args.duration = duration if args.duration is None else args.duration
    args.probe = probe if args.probe is None else args.probe
    args.gap = gap if args.gap is None else args.gap
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency takes comma-separated integers")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if set(targets) - set(ALL_TARGETS):
        p.error(f"--targets takes {', '.join(ALL_TARGETS)}")
    console = (not args.quick) if args.console is None else args.console
    args.targets = [t for t in ALL_TARGETS if t in targets and (t != "console" or console)
                    and (t != "litellm" or args.litellm)]  # fmt: skip
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")  # every '+' column is relative to it
    if not args.concurrency or min(args.concurrency) < 1 or args.duration < 1:
        p.error("--concurrency and --duration need positive values")
    if not args.modes or set(args.modes) - {"stream", "nonstream"}:
        p.error("--modes takes stream and/or nonstream")
    return args


def interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, through every `finally` that stops a server."""
    raise KeyboardInterrupt


def estimate_s(args: argparse.Namespace) -> float:
    per = len(args.modes) * len(args.concurrency) * (args.warmup + args.duration)
    per += ("stream" in args.modes) * (len(args.concurrency) * args.probe + args.gap)
    startup = 20 + 30 * ("litellm" in args.targets) + 90 * ("console" in args.targets)
    return len(args.targets) * (per + 2) + startup + 60 * args.soak


def prepare_litellm(args: argparse.Namespace, notes: list[str]) -> litellm_env.LiteLLMEnv | None:
    if "litellm" not in args.targets:
        return None
    root = litellm_env.venv_dir(args.litellm_version)
    if args.no_install and not (root / ".installed").exists():
        reason = f"no venv at {root} and --no-install given"
    else:
        print(f"  LiteLLM {args.litellm_version}: venv {root} (first run installs; minutes) ...", file=sys.stderr)
        try:
            return litellm_env.ensure_env(args.litellm_version)
        except litellm_env.LiteLLMUnavailable as exc:
            reason = str(exc)
    notes.append(f"LiteLLM skipped: {reason}")
    print(f"LiteLLM skipped: {reason}", file=sys.stderr)
    args.targets.remove("litellm")
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layout = core_layout()
    if layout.pinned:
        os.sched_setaffinity(0, layout.client)  # this script and its Python client live beside the upstream
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    wrk, load_note = find_or_install_wrk(not args.no_install)
    try:
        lite = prepare_litellm(args, notes)
        print(f"gateway_compare: {', '.join(args.targets)}; about {estimate_s(args) / 60:.1f} min", file=sys.stderr)
        results = run(args, layout, wrk, lite, notes)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = describe_environment(layout, wrk, load_note, lite.version if lite else None, load_before)
    checks = evaluate(results["rows"], results["gaps"], results["idle"], results["soak"])
    print_report(args, env, results, checks, notes)
    if args.json:
        args.json.write_text(json.dumps(to_json(args, env, results, checks, notes), indent=2, default=str))
        print(f"\nAll figures written to {args.json}")
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def print_report(args: argparse.Namespace, env: dict[str, Any], results: dict[str, Any], checks: list[Any],
                 notes: list[str]) -> None:  # fmt: skip
    print()
    for key in ("machine", "cores", "load", "upstream", "servers"):
        print(f"{key:>8}: {env[key]}")
    print(f"   cells: {args.warmup}s warm-up + {args.duration}s measured; streaming TTFB probe {args.probe:g}s "
          f"(Python client, same concurrency); gap cell {args.gap:g}s")  # fmt: skip
    print()
    print(render_table(results["rows"]))
    if any(r.short_window for r in results["rows"]):
        print("* fewer than 10 latencies fit in the measured window even after stretching it: RPS undercounts")
    errors = error_kinds(results["rows"])
    if errors:
        print("Errors: " + "; ".join(errors))
    if results["gaps"]:
        print()
        print(render_gaps(results["gaps"], args.tps))
    idle = results["idle"]
    if idle:
        print()
        print("Idle RSS after start-up (worker / whole tree, MiB): " + ", ".join(
            f"{k} {v['worker_mib']:.0f}/{v['tree_mib']:.0f}" for k, v in idle.items()))  # fmt: skip
    if results["soak"] is not None and results["soak"].load is not None:
        s = results["soak"]
        print(
            f"Soak c=64 {s.minutes:g} min: {s.load.rps:.0f} RPS, {s.load.n_errors} errors; worker RSS samples "
            + " ".join(f"{t:.0f}s:{w:.0f}" for t, w, _ in s.samples[:: max(1, len(s.samples) // 12)])
        )
    print()
    print("Targets (standalone gateway, one worker, ratios within this run):")
    for c in checks:
        print(c.line())
    if notes:
        print()
        for note in notes:
            print(f"Note: {note}")


def error_kinds(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        kinds = dict(r.load.errors) if r.load else {}
        for k, v in (r.ttfb.errors if r.ttfb else {}).items():
            kinds[f"probe {k}"] = kinds.get(f"probe {k}", 0) + v
        if kinds:
            out.append(f"{r.target} {r.mode} c={r.conc}: " + ", ".join(f"{k} x{v}" for k, v in kinds.items()))
    return out


def to_json(args: argparse.Namespace, env: dict[str, Any], results: dict[str, Any], checks: list[Any],
            notes: list[str]) -> dict[str, Any]:  # fmt: skip
    soak = results["soak"]
    return {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "environment": env,
        "rows": [row_json(r) for r in results["rows"]],
        "gaps": {k: gaps_json(v) for k, v in results["gaps"].items()},
        "idle_rss_mib": results["idle"],
        "soak": None
        if soak is None
        else {
            "minutes": soak.minutes,
            "samples_s_worker_tree_mib": soak.samples,
            "load": vars(soak.load) if soak.load else None,
        },
        "targets": [vars(c) for c in checks],
        "notes": notes,
    }


if __name__ == "__main__":
    raise SystemExit(main())
