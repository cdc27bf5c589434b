"""The comparison table, the acceptance targets with PASS/FAIL, and the JSON dump, from measured records only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.load import StreamStats, pct
from benchmarks.wrk import LoadResult

MIB = 2**20
# Acceptance targets for one standalone gateway worker, as ratios and differences within one run.
MIN_VS_BARE = 0.7
MIN_VS_LITELLM = 20.0
MAX_ADDED_P50_MS = 0.6
MAX_ADDED_P99_MS = 2.0
MAX_TTFB_OVERHEAD_MS = 1.0
MAX_ADDED_GAP_MS = 0.5  # "chunks leave as they arrive": mean gap between reads, gateway minus direct
MIN_READS_RATIO = 0.9  # and no coalescing: reads per stream at least this share of direct's
MAX_IDLE_RSS_MIB = 150.0
SOAK_GROWTH_MIB = 8.0  # soak growth allowed after the warm-up tenth: this many MiB or SOAK_GROWTH_SHARE
SOAK_GROWTH_SHARE = 0.05


@dataclass
class Row:
    """One target x mode x concurrency cell."""

    target: str
    mode: str
    conc: int
    load: LoadResult | None = None
    cpu_ms: float | None = None
    rss_mib: float | None = None
    ttfb: StreamStats | None = None
    other_pct: float | None = None
    seconds: int = 0
    skipped: str = ""

    @property
    def short_window(self) -> bool:
        """Fewer than 10 mean latencies fit in the window: RPS undercounts by up to one latency's worth."""
        ld = self.load
        return ld is not None and (ld.mean_ms is None or ld.mean_ms * 10 > self.seconds * 1000)


@dataclass
class Soak:
    minutes: float
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (seconds, worker MiB, tree MiB)
    load: LoadResult | None = None

    def at(self, share: float) -> tuple[float, float, float]:
        """The first sample at or after `share` of the soak's length."""
        end = self.samples[-1][0]
        return next(s for s in self.samples if s[0] >= share * end)


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def plus(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{b - a:+.2f}"


COLUMNS = (
    ("target", 8), ("mode", 9), ("conc", 4), ("RPS", 8), ("P50 ms", 7), ("P99 ms", 7), ("+P50", 7), ("+P99", 7),
    ("TTFB", 6), ("+TTFB", 6), ("CPU ms/req", 10), ("RSS MiB", 7), ("err", 6), ("other%", 6),
)  # fmt: skip


def ttfb_p50(row: Row | None) -> float | None:
    return pct(row.ttfb.ttfb_ms, 0.5) if row and row.ttfb else None


def row_cells(row: Row, direct: Row | None) -> list[str]:
    if row.skipped or row.load is None:
        return [row.target, row.mode, str(row.conc), f"skipped: {row.skipped or 'no result'}"]
    ld, dl = row.load, direct.load if direct else None
    t, dt = ttfb_p50(row), ttfb_p50(direct)
    errors = ld.n_errors + (sum(row.ttfb.errors.values()) if row.ttfb else 0)
    return [
        row.target, row.mode, str(row.conc), fmt(ld.rps, 0) + ("*" if row.short_window else ""),
        fmt(ld.p50_ms), fmt(ld.p99_ms),
        plus(dl.p50_ms, ld.p50_ms) if dl and row.target != "direct" else "",
        plus(dl.p99_ms, ld.p99_ms) if dl and row.target != "direct" else "",
        fmt(t) if row.mode == "stream" else "", plus(dt, t) if row.mode == "stream" and row.target != "direct" else "",
        fmt(row.cpu_ms, 3), fmt(row.rss_mib, 0), str(errors), fmt(row.other_pct, 0),
    ]  # fmt: skip


def render_table(rows: list[Row]) -> str:
    directs = {(r.mode, r.conc): r for r in rows if r.target == "direct"}
    lines = ["  ".join(name.rjust(w) for name, w in COLUMNS), "  ".join("-" * w for _, w in COLUMNS)]
    group: tuple[str, int] | None = None
    for row in sorted(rows, key=lambda r: (r.mode != "nonstream", r.conc)):
        if group is not None and group != (row.mode, row.conc):
            lines.append("")
        group = (row.mode, row.conc)
        cells = row_cells(row, directs.get(group))
        lines.append("  ".join(v.rjust(w) for v, (_, w) in zip(cells, COLUMNS, strict=False)))
    return "\n".join(lines)


def render_gaps(gaps: dict[str, StreamStats], tps: float) -> str:
    direct = gaps.get("direct")
    lines = [
        f"Inter-chunk gaps (simulator at {tps:g} tokens/s, concurrency 1, streaming):",
        "  target    mean gap ms   +gap ms   reads/stream   TTFB P50 ms   streams   errors",
    ]
    for name, st in gaps.items():
        added = plus(direct.mean_gap_ms, st.mean_gap_ms) if direct and name != "direct" else ""
        lines.append(
            f"  {name:<8}  {fmt(st.mean_gap_ms, 3):>11}  {added:>8}  {fmt(st.reads_per_request, 1):>13}  "
            f"{fmt(pct(st.ttfb_ms, 0.5)):>12}  {len(st.ttfb_ms):>8}  {sum(st.errors.values()):>7}"
        )
    return "\n".join(lines)


@dataclass
class Check:
    name: str
    value: str
    limit: str
    status: str  # PASS, FAIL or n/a

    def line(self) -> str:
        return f"  [{self.status:^4}] {self.name:<48} {self.value:<38} (target {self.limit})"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def evaluate(
    rows: list[Row],
    gaps: dict[str, StreamStats],
    idle: dict[str, dict[str, float]],
    soak: Soak | None,
    gw: str = "gateway",
) -> list[Check]:
    """Every acceptance target for the standalone gateway; n/a where a figure it needs was not measured."""
    cell = {(r.target, r.mode, r.conc): r for r in rows if r.load is not None and not r.skipped}
    checks = throughput_checks(cell, gw)
    checks += latency_checks(cell, gw)
    checks.append(gap_check(gaps, gw))
    rss = idle.get(gw)
    value = f"{rss['worker_mib']:.0f} MiB (tree {rss['tree_mib']:.0f})" if rss else "not measured"
    ok = None if rss is None else rss["worker_mib"] <= MAX_IDLE_RSS_MIB
    checks.append(Check("idle RSS after start-up (worker process)", value, f"<= {MAX_IDLE_RSS_MIB:g} MiB", verdict(ok)))
    checks.append(soak_check(soak))
    return checks


Cells = dict[tuple[str, str, int], Row]


def throughput_checks(cell: Cells, gw: str) -> list[Check]:
    def rps(target: str, mode: str, c: int) -> float | None:
        r = cell.get((target, mode, c))
        return r.load.rps if r and r.load and r.load.ok else None

    checks = []
    for peer, floor in (("bare", MIN_VS_BARE), ("litellm", MIN_VS_LITELLM)):
        for mode in ("nonstream", "stream"):
            for c in (16, 64):
                ours, theirs = rps(gw, mode, c), rps(peer, mode, c)
                ratio = ours / theirs if ours is not None and theirs else None
                value = "not measured" if ratio is None else f"{ratio:.2f}x ({ours:.0f} vs {theirs:.0f} RPS)"
                ok = None if ratio is None else ratio >= floor
                checks.append(Check(f"throughput {gw}/{peer} {mode} c={c}", value, f">= {floor:g}x", verdict(ok)))
    return checks


def latency_checks(cell: Cells, gw: str) -> list[Check]:
    checks = []
    direct, ours = cell.get(("direct", "nonstream", 1)), cell.get((gw, "nonstream", 1))
    for q, limit in (("p50", MAX_ADDED_P50_MS), ("p99", MAX_ADDED_P99_MS)):
        added = None
        if direct and ours and direct.load and ours.load:
            a, b = getattr(direct.load, f"{q}_ms"), getattr(ours.load, f"{q}_ms")
            added = b - a if a is not None and b is not None else None
        ok = None if added is None else added <= limit
        name = f"added latency nonstream c=1 {q.upper()}"
        checks.append(Check(name, f"{fmt(added, 3)} ms", f"<= {limit:g} ms", verdict(ok)))
    dt, gt = ttfb_p50(cell.get(("direct", "stream", 1))), ttfb_p50(cell.get((gw, "stream", 1)))
    over = gt - dt if gt is not None and dt is not None else None
    ok = None if over is None else over <= MAX_TTFB_OVERHEAD_MS
    limit_text = f"<= {MAX_TTFB_OVERHEAD_MS:g} ms"
    checks.append(Check("streaming TTFB overhead c=1 P50", f"{fmt(over, 3)} ms", limit_text, verdict(ok)))
    return checks


def gap_check(gaps: dict[str, StreamStats], gw: str) -> Check:
    name = "chunks relayed as they arrive (inter-chunk gap)"
    limit = f"+gap <= {MAX_ADDED_GAP_MS:g} ms and reads >= {MIN_READS_RATIO:g}x"
    direct, ours = gaps.get("direct"), gaps.get(gw)
    if not (direct and ours and direct.mean_gap_ms is not None and direct.reads_per_request):
        return Check(name, "not measured", limit, "n/a")
    if ours.mean_gap_ms is None or not ours.reads_per_request:
        return Check(name, "no gaps seen: each stream arrived in one piece", limit, "FAIL")
    added = ours.mean_gap_ms - direct.mean_gap_ms
    reads = ours.reads_per_request / direct.reads_per_request
    ok = added <= MAX_ADDED_GAP_MS and reads >= MIN_READS_RATIO
    return Check(name, f"{added:+.3f} ms, reads {reads:.2f}x direct", limit, verdict(ok))


def soak_check(soak: Soak | None) -> Check:
    name = "no RSS growth over the soak at c=64 (worker)"
    if soak is None or len(soak.samples) < 3:
        return Check(name, "not run (--soak 10 runs it)", "growth after warm-up <= 8 MiB or 5%", "n/a")
    start, warm, end = soak.samples[0], soak.at(0.1), soak.samples[-1]
    growth = end[1] - warm[1]
    allowed = max(SOAK_GROWTH_MIB, SOAK_GROWTH_SHARE * warm[1])
    value = f"start {start[1]:.0f}, +10% {warm[1]:.0f}, end {end[1]:.0f} MiB ({growth:+.1f})"
    return Check(name, value, f"growth after warm-up <= {allowed:.1f} MiB", verdict(growth <= allowed))


def row_json(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in asdict(row).items() if k not in ("load", "ttfb")}
    out["load"] = asdict(row.load) | {"rps": row.load.rps} if row.load else None
    if row.ttfb:
        st = row.ttfb
        out["ttfb_ms"] = {"p50": pct(st.ttfb_ms, 0.5), "p99": pct(st.ttfb_ms, 0.99), "n": len(st.ttfb_ms)}
        out["ttfb_errors"] = dict(st.errors)
    return out


def gaps_json(st: StreamStats) -> dict[str, Any]:
    return {
        "mean_gap_ms": st.mean_gap_ms,
        "p50_gap_ms": pct(st.gaps_ms, 0.5),
        "p99_gap_ms": pct(st.gaps_ms, 0.99),
        "reads_per_stream": st.reads_per_request,
        "ttfb_p50_ms": pct(st.ttfb_ms, 0.5),
        "streams": len(st.ttfb_ms),
        "errors": dict(st.errors),
    }
