"""What limit enforcement costs the gateway: no limits, in-process counters and Redis counters, same run.

Three `llm-console gateway --workers 1` processes, each on a fresh data folder, behind the same canned
upstream: `none` (the key has no limits: the limiter is skipped), `memory` (key, user and team each with
RPM, TPM, RPD, TPD and day/month budgets, all out of reach) and `redis` (the same limits counted in Redis
at 127.0.0.1). Every cell is measured on the three back to back, so they see the same machine.
`.venv/bin/python benchmarks/limits_compare.py --quick`; benchmarks/README.md explains the table.
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
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

import redis

from benchmarks import servers
from benchmarks.cells import Runner, run_async
from benchmarks.environment import describe_environment
from benchmarks.load import check
from benchmarks.report import Row, fmt, row_json
from benchmarks.servers import ALIAS, HUGE_LIMIT, BenchError
from benchmarks.targets import Fleet, Layout, Sut, core_layout
from benchmarks.wrk import find_or_install_wrk
from llm_console.db.engine import make_engine, session
from llm_console.db.models import RateLimit
from llm_console.services.audit import record
from llm_console.services.budgets import set_budget
from llm_console.services.deployments import set_price
from llm_console.services.keys import create_key
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import create_team
from llm_console.services.users import create_user

TARGETS = ("none", "memory", "redis")
PRESETS = {"quick": (1, 2), "full": (2, 8)}  # (warm-up s, measured s) per cell
BUDGET_USD = 1e9  # daily and monthly, per key, user and team: checked and reserved on every request, never reached
ACTOR = "limits-benchmark"


def seed_data(data_dir: Path, env: dict[str, str], upstream: str, limited: bool) -> str:
    """A fresh database: the alias routed to the upstream, priced (so budget reservations are real amounts),
    and a key owned by a user and a team; with `limited`, all three get every rate limit and both budgets."""
    servers.cli(data_dir.parent, env, "migrate")
    servers.add_deployment(data_dir.parent, env, ALIAS, f"{upstream}/v1", servers.UPSTREAM_MODEL)
    engine = make_engine(f"sqlite:///{(data_dir / 'llm_console.db').as_posix()}")
    try:
        set_price(engine, model=servers.UPSTREAM_MODEL, input_per_mtok=1.0, output_per_mtok=2.0, actor=ACTOR)
        user = create_user(engine, email="bench@example.com", password=None, role="admin", actor=ACTOR)
        assert user.id is not None
        team = create_team(engine, name="bench", actor=SessionUser(user.id, user.email, "", "admin"))
        assert team.id is not None
        key = create_key(engine, name="bench", actor=ACTOR, user_id=user.id, team_id=team.id)
        if limited:
            entities = (("key", key.id), ("user", user.id), ("team", team.id))
            huge = int(HUGE_LIMIT)
            with session(engine) as s:  # no committed rate-limit service yet: rows and audit events, as tests do
                for kind, entity_id in entities:
                    s.add(RateLimit(entity_type=kind, entity_id=entity_id, rpm=huge, tpm=huge, rpd=huge, tpd=huge))
                    record(
                        s, actor=ACTOR, action="limits.set", target_type="rate_limit", target_id=f"{kind}:{entity_id}"
                    )
                s.commit()
            for kind, entity_id in entities:
                set_budget(engine, kind, entity_id, daily_usd=BUDGET_USD, monthly_usd=BUDGET_USD, actor=ACTOR)
        return key.secret
    finally:
        engine.dispose()


def target_env(fleet: Fleet, name: str, redis_url: str, prefix: str) -> dict[str, str]:
    env = {**servers.bench_env(fleet.root / f"data-{name}"), "PATH": fleet.env["PATH"]}
    if name == "memory":
        env["LLMC_LIMITS_BACKEND"] = "memory"
    elif name == "redis":  # fail closed: a Redis problem must show as errors, never as quiet in-process counting
        env |= {"LLMC_LIMITS_BACKEND": "redis", "LLMC_REDIS_URL": redis_url, "LLMC_REDIS_PREFIX": prefix,
                "LLMC_LIMITS_REDIS_FAILURE": "closed"}  # fmt: skip
    return env


def start_target(fleet: Fleet, name: str, redis_url: str, prefix: str) -> Sut:
    """Seed a fresh data folder, start the gateway on it (pinned to the server core) and check it answers
    with limit headers exactly when it should."""
    env = target_env(fleet, name, redis_url, prefix)
    secret = seed_data(Path(env["LLMC_DATA_DIR"]), env, fleet.upstream, limited=name != "none")
    port = servers.free_port()
    argv = [sys.executable, "-m", "llm_console.cli", "gateway", "--host", "127.0.0.1", "--port", str(port)]
    server = servers.spawn(name, [*argv, "--workers", "1"], cwd=fleet.root, env=env, log_dir=fleet.root,
                           cores=fleet.layout.server)  # fmt: skip
    fleet.servers[name] = server  # Fleet.close() stops it with the others
    servers.wait_ready(server, f"http://127.0.0.1:{port}/gateway/health")
    sut = Sut(name, f"http://127.0.0.1:{port}/v1/chat/completions", ALIAS, secret, server)
    problem = run_async(check(sut.target()))
    if problem:
        raise BenchError(f"{name} answered wrongly: {problem}")
    target = sut.target()
    req = urllib.request.Request(target.url, data=target.body_nonstream, headers=target.headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        limited = resp.headers.get("x-ratelimit-limit-requests") is not None
    if limited != (name != "none"):
        raise BenchError(f"{name}: x-ratelimit-* headers {'present' if limited else 'missing'}; limits not as set up")
    return sut


def status_counts(data_dir: Path) -> dict[str, int] | None:
    """Answers in a stopped gateway's request log (its shutdown drains the log queue), by status and error
    type: warm-ups and start-up checks included, which the load figures leave out."""
    db = data_dir / "llm_console.db"
    sql = "SELECT status_code, COALESCE(error_type, ''), COUNT(*) FROM requests GROUP BY 1, 2"
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return {f"HTTP {s}" + (f" {e}" if e else ""): int(n) for s, e, n in c.execute(sql)}
    return None


def drop_redis_keys(client: redis.Redis, prefix: str) -> int:
    """Delete this run's keys (`{prefix}:*` for limits, `prefix:*` for anything else); never anything else."""
    keys = [k for pattern in (f"{{{prefix}}}:*", f"{prefix}:*") for k in client.scan_iter(match=pattern, count=500)]
    return int(client.delete(*keys)) if keys else 0  # type: ignore[arg-type]


def run(args: argparse.Namespace, layout: Layout, wrk: str | None, notes: list[str]) -> dict[str, Any]:
    rows: list[Row] = []
    logs: dict[str, dict[str, int] | None] = {}
    prefix = f"llmc-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis_url, socket_timeout=2)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="llmc-lim-")
    with work as tmp:
        fleet = Fleet(Path(tmp).resolve(), layout)
        suts: dict[str, Sut] = {}
        try:
            fleet.start_upstreams(200.0)
            for name in args.targets:
                print(f"  starting {name} ...", file=sys.stderr)
                if name == "redis":
                    try:
                        client.ping()
                    except redis.RedisError as exc:
                        notes.append(f"redis skipped: {args.redis_url} does not answer ({exc})")
                        continue
                suts[name] = start_target(fleet, name, args.redis_url, prefix)
            time.sleep(1.0)
            runner = Runner(args, fleet, wrk)
            cells = [(m, c) for m in args.modes for c in args.concurrency]
            for i, (mode, conc) in enumerate(cells):
                names = list(suts)
                for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate who goes first
                    rows.append(runner.safe_cell(suts[name], mode, conc))
            if "redis" in suts:
                keys = sum(1 for _ in client.scan_iter(match=f"{{{prefix}}}:*", count=500))
                notes.append(f"redis: {keys} limit keys under {{{prefix}}} after the run (so Redis did the counting)")
        finally:
            fleet.close()
            with contextlib.suppress(redis.RedisError):
                notes.append(f"redis: {drop_redis_keys(client, prefix)} keys of this run deleted")
            client.close()
        for name in suts:
            logs[name] = status_counts(fleet.root / f"data-{name}")
    return {"rows": rows, "logs": logs}


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or b is None else f"{b / a:.3f}"


def added(a: float | None, b: float | None, digits: int = 3) -> str:
    return "-" if a is None or b is None else f"{b - a:+.{digits}f}"


def errors(row: Row | None) -> int:
    if row is None or row.load is None:
        return 0
    return row.load.n_errors + (sum(row.ttfb.errors.values()) if row.ttfb else 0)


Cells = Callable[[Row, Row | None, str], list[str]]


def grid(rows: list[Row], targets: list[str], cols: dict[str, list[str]], values: Cells) -> list[str]:
    """One line per cell, the targets side by side: `values(row, none_row, target)` gives that target's cells."""
    cell = {(r.target, r.mode, r.conc): r for r in rows if not r.skipped and r.load is not None}
    head = ["".rjust(9), "".rjust(4)] + [t.center(9 * len(cols[t]) - 2) for t in targets]
    sub = ["mode".rjust(9), "conc".rjust(4)] + [c.rjust(7) for t in targets for c in cols[t]]
    lines = ["  ".join(head).rstrip(), "  ".join(sub)]
    for mode, conc in sorted({(r.mode, r.conc) for r in rows}, key=lambda k: (k[0] != "nonstream", k[1])):
        out = [mode.rjust(9), str(conc).rjust(4)]
        for t in targets:
            got, base = cell.get((t, mode, conc)), cell.get(("none", mode, conc))
            out += [v.rjust(7) for v in (values(got, base, t) if got else ["-"] * len(cols[t]))]
        lines.append("  ".join(out))
    return lines


def speed(r: Row, none: Row | None, target: str) -> list[str]:
    ld, base = r.load, none.load if none else None
    assert ld is not None
    out = [fmt(ld.rps, 0), fmt(ld.p50_ms), fmt(ld.p99_ms)]
    if target == "none":
        return out
    return [*out, ratio(base.rps if base else None, ld.rps), added(base.p50_ms if base else None, ld.p50_ms)]


def cost(r: Row, none: Row | None, target: str) -> list[str]:
    extra = [] if target == "none" else [added(none.cpu_ms if none else None, r.cpu_ms)]
    return [fmt(r.cpu_ms, 3), *extra, str(errors(r)), fmt(r.other_pct, 0)]


def render(rows: list[Row], targets: list[str]) -> str:
    fast = {t: ["RPS", "P50 ms", "P99 ms"] + ([] if t == "none" else ["x none", "+P50"]) for t in targets}
    cpu = {t: ["CPU ms"] + ([] if t == "none" else ["+CPU"]) + ["not 200", "other%"] for t in targets}
    note = "CPU ms per request (gateway process), requests not answered 200, other% (everything else, % of a core):"
    lines = [*grid(rows, targets, fast, speed), "", note, *grid(rows, targets, cpu, cost)]
    lines += [f"{r.target} {r.mode} c={r.conc} skipped: {r.skipped}" for r in rows if r.skipped]
    return "\n".join(lines)


def refused(results: dict[str, Any]) -> int:
    """Every request that did not come back 200: load and probe errors, and non-200 rows in the request logs."""
    logged = sum(n for counts in results["logs"].values() if counts for what, n in counts.items() if what != "HTTP 200")
    return sum(errors(r) for r in results["rows"]) + logged


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 s warm-up + 2 s measured per cell (~1.5 min)")
    p.add_argument("--duration", type=int, help="measured seconds per cell (quick 2, full 8)")
    p.add_argument("--warmup", type=int, help="unmeasured seconds before each cell (quick 1, full 2)")
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated (default 1,16,64)")
    p.add_argument("--modes", default="nonstream,stream", help="nonstream, stream or both (default both)")
    p.add_argument("--targets", default=",".join(TARGETS), help="subset of none,memory,redis (none always runs)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="the Redis the `redis` target uses")
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it: server logs, data folders")
    args = p.parse_args(argv)
    warmup, duration = PRESETS["quick" if args.quick else "full"]
    args.warmup = warmup if args.warmup is None else max(0, args.warmup)
    args.duration = duration if args.duration is None else args.duration
    args.probe = 0.0  # Runner's streaming TTFB probe: one measured stream per connection, errors counted
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency takes comma-separated integers")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    wanted = {t.strip() for t in args.targets.split(",") if t.strip()}
    if wanted - set(TARGETS):
        p.error(f"--targets takes {', '.join(TARGETS)}")
    args.targets = [t for t in TARGETS if t in wanted or t == "none"]
    if not args.concurrency or min(args.concurrency) < 1 or args.duration < 1:
        p.error("--concurrency and --duration need positive values")
    if not args.modes or set(args.modes) - {"stream", "nonstream"}:
        p.error("--modes takes stream and/or nonstream")
    return args


def interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwind through every `finally` that stops a server or deletes Redis keys


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layout = core_layout()
    if layout.pinned:
        os.sched_setaffinity(0, layout.client)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    wrk, load_note = find_or_install_wrk(not args.no_install)
    minutes = (len(args.targets) * len(args.modes) * len(args.concurrency) * (args.warmup + args.duration) + 30) / 60
    print(f"limits_compare: {', '.join(args.targets)}; about {minutes:.1f} min", file=sys.stderr)
    try:
        results = run(args, layout, wrk, notes)
    except KeyboardInterrupt:
        print("interrupted; servers stopped, Redis keys of this run deleted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = describe_environment(layout, wrk, load_note, None, load_before)
    targets = [t for t in args.targets if any(r.target == t for r in results["rows"])]
    print()
    for key in ("machine", "cores", "load"):
        print(f"{key:>8}: {env[key]}")
    print(f"   cells: {args.warmup}s warm-up + {args.duration}s measured, the three targets back to back per cell")
    print("  limits: memory and redis: key, user and team each RPM/TPM/RPD/TPD "
          f"{HUGE_LIMIT} and daily/monthly budgets ${BUDGET_USD:.0e}; none: no limits anywhere")  # fmt: skip
    print()
    print(render(results["rows"], targets))
    print()
    for name, counts in results["logs"].items():
        print(f"request log {name}: " + (", ".join(f"{what} x{n}" for what, n in sorted(counts.items()))
                                         if counts else "not readable"))  # fmt: skip
    bad = refused(results)
    print(f"Not 200 (refused or failed), all targets: {bad}")
    for note in notes:
        print(f"Note: {note}")
    if args.json:
        out = {"config": {k: str(v) for k, v in vars(args).items()}, "environment": env, "notes": notes,
               "rows": [row_json(r) for r in results["rows"]], "request_log_status": results["logs"]}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"All figures written to {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
