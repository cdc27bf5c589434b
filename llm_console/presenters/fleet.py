"""Fleet page values: strings per container, GPU, engine and timeline entry, chart rows, and banners that say in
plain words why a table is empty (Docker unreachable, no NVIDIA driver, nothing scraped yet)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llm_console import routes
from llm_console.fleet.queries import (
    ContainerRow,
    DeploymentFleet,
    DeploymentRef,
    EngineRow,
    EngineWorkers,
    FleetOverview,
    GpuRow,
    MatrixCell,
    MemoryTrend,
    SourceRow,
)
from llm_console.fleet.series import Point
from llm_console.presenters.common import ms

GiB = 1024**3
SLOTS = 8  # series per chart: GPUs or workers beyond these are in the tables only
NO_SAMPLES = "No samples yet"
DASH = "—"
STATUS_COLORS = {
    "running": "green",
    "restarting": "amber",
    "created": "amber",
    "paused": "gray",
    "exited": "red",
    "dead": "red",
    "removed": "gray",
}
HEALTH_COLORS = {"healthy": "green", "unhealthy": "red", "starting": "amber"}
SEVERITY_COLORS = {"ok": "green", "info": "gray", "warning": "amber", "error": "red"}
SOURCE_TITLES = {"docker": "Containers (Docker API)", "nvml": "GPUs (NVML)", "engines": "Engine metrics"}
MISSING_SOURCE = {
    "docker": "Docker is not configured or has not reported yet: set LLMC_FLEET_DOCKER_URL (or mount the "
    "Docker socket) and keep LLMC_FLEET_ENABLED on.",
    "nvml": "No GPU sampler has reported yet.",
    "engines": "No engine metrics have been scraped yet.",
}
Row = dict[str, str]
BarRow = dict[str, str | int]  # a row with a progress bar's value (an int, as the bar needs a number)
Chart = list[dict[str, Any]]


def duration(seconds: float) -> str:
    """A span as people say it: "45 s", "12 min", "3 h 12 min", "2 d 4 h"."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 3600:
        return f"{minutes} min"
    if s < 86400:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def ago(at: datetime | None, now: datetime) -> str:
    return DASH if at is None else f"{duration((now - at).total_seconds())} ago"


def gib(value: float | None) -> str:
    """Bytes in GiB; under 1 GiB in MiB, so a 40 MiB process does not read as "0.0 GiB"."""
    if value is None:
        return DASH
    return f"{value / GiB:.1f} GiB" if value >= GiB else f"{value / 1024**2:.0f} MiB"


def pct(fraction: float | None) -> str:
    """A 0..1 figure as a percentage."""
    return DASH if fraction is None else f"{fraction * 100:.0f}%"


def number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}{unit}"


def _ms(value: float | None) -> str:
    return DASH if value is None else ms(value)


def deployment_href(dep_id: int) -> str:
    return f"{routes.FLEET_DEPLOYMENT}?deployment={dep_id}"


def banner(kind: str, sources: Sequence[SourceRow], now: datetime) -> list[Row]:
    """One line per host for a collector kind; a missing collector is a warning of its own, never silence."""
    mine = [s for s in sources if s.kind == kind]
    title = SOURCE_TITLES[kind]
    if not mine:
        return [{"kind": kind, "title": title, "message": MISSING_SOURCE[kind], "level": "warning", "checked": ""}]
    out = []
    for s in mine:
        extra = ", ".join(f"{k} {v}" for k, v in sorted(s.detail.items()))
        out.append(
            {
                "kind": kind,
                "title": f"{title} on {s.host}" if s.host else title,
                "message": s.message + (f" ({extra})" if extra and s.ok else ""),
                "level": "ok" if s.ok else "error" if kind == "docker" else "warning",
                "checked": f"checked {ago(s.checked_at, now)}",
            }
        )
    return out


def container_row(c: ContainerRow, now: datetime) -> Row:
    if c.removed:
        uptime = f"removed {ago(c.removed_at, now)}"
    elif c.status == "running" and c.started_at is not None:
        uptime = duration((now - c.started_at).total_seconds())
    elif c.finished_at is not None:
        uptime = f"{c.status} {ago(c.finished_at, now)}"
    else:
        uptime = DASH
    mem = gib(c.mem_bytes) + (f" / {gib(c.mem_limit_bytes)}" if c.mem_limit_bytes else "")
    status = c.status + (f" ({c.exit_code})" if c.status in ("exited", "dead") and c.exit_code is not None else "")
    dep = c.deployment
    return {
        "id": c.id[:12],
        "name": c.name or c.id[:12],
        "status": status,
        "status_color": STATUS_COLORS.get(c.status, "gray"),
        "health": c.health or "no check",
        "health_color": HEALTH_COLORS.get(c.health, "gray"),
        "image": c.image,
        "version": c.version or DASH,
        "model": c.model or DASH,
        "deployment": dep.name if dep else DASH,
        "href": deployment_href(dep.id) if dep and dep.exists else "",
        "uptime": uptime,
        "restarts": str(c.restart_count),
        "cpu": number(c.cpu_pct, "%", 1),
        "memory": mem,
        "gpus": str(len(c.gpu_uuids)) if c.gpu_uuids else DASH,
        "host": c.host,
    }


def gpu_label(g: GpuRow, many_hosts: bool) -> str:
    return f"{g.host} · GPU {g.index}" if many_hosts else f"GPU {g.index}"


def gpu_card(g: GpuRow, now: datetime, many_hosts: bool) -> BarRow:
    used_pct = round(100 * g.memory_used_bytes / g.memory_total_bytes) if g.memory_total_bytes else 0
    label = gpu_label(g, many_hosts)
    power = number(g.power_w, " W") + (f" / {g.power_limit_w:,.0f} W" if g.power_limit_w else "")
    return {
        "uuid": g.uuid,
        "label": label,
        "name": g.name,
        "memory": f"{gib(g.memory_used_bytes)} / {gib(g.memory_total_bytes)}",
        "memory_pct": used_pct,
        "memory_aria": f"{label} memory used: {used_pct}%",
        "utilization": number(g.utilization_pct, "%"),
        "temperature": number(g.temperature_c, " °C"),
        "power": power,
        "driver": g.driver_version or DASH,
        "cuda": g.cuda_version or DASH,
        "seen": ago(g.seen_at, now),
    }


def _served(dep: DeploymentRef | None, model: str) -> str:
    return " · ".join(x for x in (dep.name if dep else "", model) if x) or "unattributed"


def gpu_processes(g: GpuRow) -> list[Row]:
    return [
        {
            "pid": str(p.pid),
            "container": p.container_name or (p.container_id[:12] if p.container_id else "not in a container"),
            "serves": _served(p.deployment, p.model),
            "memory": gib(p.used_bytes) if p.used_bytes is not None else "size unknown",
        }
        for p in g.processes
    ]


def matrix_cell(cell: MatrixCell | None) -> str:
    if cell is None:
        return DASH
    return gib(cell.used_bytes) if cell.used_bytes is not None else f"{cell.processes} process(es), size unknown"


def engine_row(e: EngineRow, now: datetime) -> Row:
    dep = e.deployment
    status = "error" if not e.ok else "stale" if e.stale else "ok"
    return {
        "deployment": dep.name,
        "href": deployment_href(dep.id),
        "model": dep.model or DASH,
        "aliases": ", ".join(dep.aliases) or DASH,
        "running": number(e.running),
        "waiting": number(e.waiting),
        "kv": pct(e.kv_cache_usage),
        "prefix": pct(e.value("prefix_hit_rate")),
        "tps": number(e.value("generation_tps"), " tok/s", 1),
        "ttft": _ms(e.value("ttft_p50_ms")),
        "age": ago(e.scraped_at, now),
        "status": status,
        "status_color": {"ok": "green", "stale": "amber", "error": "red"}[status],
        "error": (e.error or "")[:300],
    }


def _label(at: datetime, bin_s: int, span_s: float) -> str:
    if span_s > 86400:
        return at.strftime("%m-%d %H:%M")
    return at.strftime("%H:%M:%S" if bin_s < 60 else "%H:%M")


def merged_chart(
    series: Iterable[Sequence[Point]], key: str, bin_s: int, span_s: float, scale: float = 1.0, digits: int = 2
) -> Chart:
    """Several subjects' points of one value as chart rows keyed `s0`, `s1`, ... by time (their bins align)."""
    rows: dict[datetime, dict[str, Any]] = {}
    for i, points in enumerate(series):
        for p in points:
            value = p.values.get(key)
            if value is not None:
                row = rows.setdefault(p.at, {"t": _label(p.at, bin_s, span_s)})
                row[f"s{i}"] = round(value * scale, digits)
    return [rows[at] for at in sorted(rows)]


def slot_names(names: Sequence[str]) -> list[str]:
    return [*names[:SLOTS], *[""] * max(0, SLOTS - len(names))]


@dataclass(slots=True)
class FleetView:
    banners: list[Row] = field(default_factory=list)
    cards: list[Row] = field(default_factory=list)
    containers: list[Row] = field(default_factory=list)
    containers_empty: str = ""
    gpus: list[BarRow] = field(default_factory=list)
    gpu_processes: list[list[Row]] = field(default_factory=list)
    gpus_empty: str = ""
    matrix_columns: list[str] = field(default_factory=list)
    matrix_rows: list[list[str]] = field(default_factory=list)
    trend: Chart = field(default_factory=list)
    trend_names: list[str] = field(default_factory=list)
    engines: list[Row] = field(default_factory=list)
    as_of: str = ""


def fleet_view(data: FleetOverview, trend: MemoryTrend) -> FleetView:
    now = data.now
    banners = [b for kind in ("docker", "nvml", "engines") for b in banner(kind, data.sources, now)]
    docker_down = [s.message for s in data.sources if s.kind == "docker" and not s.ok]
    nvml_down = [s.message for s in data.sources if s.kind == "nvml" and not s.ok]
    many_hosts = len({g.host for g in data.gpus}) > 1
    running = sum(1 for c in data.containers if c.status == "running")
    stale = sum(1 for e in data.engines if e.stale or not e.ok)
    span = (trend.end - trend.start).total_seconds()
    charted = [t for t in trend.gpus if t.points][:SLOTS]
    return FleetView(
        banners=banners,
        cards=[
            {"label": "Containers running", "value": f"{running} / {len(data.containers)}", "hint": "model servers"},
            {"label": "GPUs", "value": str(len(data.gpus)), "hint": f"{len({g.host for g in data.gpus})} host(s)"},
            {"label": "Engines scraped", "value": str(len(data.engines)), "hint": f"{stale} stale or failing"},
        ],
        containers=[container_row(c, now) for c in data.containers],
        containers_empty=(
            f"No containers: {docker_down[0]}" if docker_down else "No model-serving containers seen yet."
        ),
        gpus=[gpu_card(g, now, many_hosts) for g in data.gpus],
        gpu_processes=[gpu_processes(g) for g in data.gpus],
        gpus_empty=f"No GPUs: {nvml_down[0]}" if nvml_down else "No GPUs reported yet.",
        matrix_columns=[c.label for c in data.matrix.columns],
        matrix_rows=[[gpu_label(r.gpu, many_hosts), *(matrix_cell(c) for c in r.cells)] for r in data.matrix.rows]
        if data.matrix.columns
        else [],
        trend=merged_chart((t.points for t in charted), "memory_used_bytes", trend.bin_s, span, 1 / GiB),
        trend_names=slot_names([gpu_label(t.gpu, many_hosts) for t in charted]),
        engines=[engine_row(e, now) for e in data.engines],
        as_of=now.strftime("%H:%M:%S UTC"),
    )


ENGINE_CHART_KEYS = {  # key -> scale for the chart (fractions as percentages)
    "running": 1.0,
    "waiting": 1.0,
    "kv_cache_usage": 100.0,
    "prefix_hit_rate": 100.0,
    "prompt_tps": 1.0,
    "generation_tps": 1.0,
    "ttft_p50_ms": 1.0,
    "ttft_p95_ms": 1.0,
    "itl_p50_ms": 1.0,
    "itl_p95_ms": 1.0,
    "batch_tokens_mean": 1.0,
}


@dataclass(slots=True)
class DeploymentView:
    found: bool = False
    title: str = ""
    info: Row = field(default_factory=dict)
    engine_status: str = ""
    cards: list[Row] = field(default_factory=list)
    chart: Chart = field(default_factory=list)
    containers: list[Row] = field(default_factory=list)
    timeline: list[Row] = field(default_factory=list)
    as_of: str = ""


def engine_cards(e: EngineRow) -> list[Row]:
    return [
        {"label": "Running", "value": number(e.running), "hint": "sequences in the batch"},
        {"label": "Waiting", "value": number(e.waiting), "hint": "queued sequences"},
        {"label": "KV cache", "value": pct(e.kv_cache_usage), "hint": "of GPU blocks in use"},
        {"label": "Prefix-cache hits", "value": pct(e.value("prefix_hit_rate")), "hint": "since the last scrape"},
        {"label": "Generation", "value": number(e.value("generation_tps"), " tok/s", 1), "hint": "output tokens"},
        {"label": "Prompt", "value": number(e.value("prompt_tps"), " tok/s", 1), "hint": "prefill tokens"},
        {"label": "TTFT P50", "value": _ms(e.value("ttft_p50_ms")), "hint": f"P95 {_ms(e.value('ttft_p95_ms'))}"},
        {"label": "ITL P50", "value": _ms(e.value("itl_p50_ms")), "hint": f"P95 {_ms(e.value('itl_p95_ms'))}"},
        {"label": "Batch size", "value": number(e.value("batch_tokens_mean"), " tok", 0), "hint": "per engine step"},
        {"label": "Preemptions", "value": number(e.value("preemptions")), "hint": "since the engine started"},
    ]


def engine_status(e: EngineRow | None, now: datetime) -> str:
    if e is None:
        return "No engine metrics scraped for this deployment yet."
    if not e.ok:
        last = f"; figures below are from {ago(e.last_ok_at, now)}" if e.last_ok_at else ""
        return f"Last scrape {ago(e.scraped_at, now)} failed: {(e.error or 'no answer')[:300]}{last}."
    return f"Scraped {ago(e.scraped_at, now)}" + (" (stale)." if e.stale else ".")


def deployment_view(data: DeploymentFleet, now: datetime) -> DeploymentView:
    dep = data.deployment
    if dep is None:
        return DeploymentView(title=f"No deployment #{data.deployment_id}", as_of=now.strftime("%H:%M:%S UTC"))
    span = (data.end - data.start).total_seconds()
    rows: dict[datetime, dict[str, Any]] = {}
    for p in data.series:
        row = rows.setdefault(p.at, {"t": _label(p.at, data.bin_s, span)})
        for key, scale in ENGINE_CHART_KEYS.items():
            value = p.values.get(key)
            if value is not None:
                row[key] = round(value * scale, 2)
    return DeploymentView(
        found=True,
        title=dep.name,
        info={
            "name": dep.name,
            "model": dep.model or DASH,
            "provider": dep.provider or DASH,
            "aliases": ", ".join(dep.aliases) or "no alias routes to it",
        },
        engine_status=engine_status(data.engine, now),
        cards=engine_cards(data.engine) if data.engine else [],
        chart=[rows[at] for at in sorted(rows)],
        containers=[container_row(c, now) for c in data.containers],
        timeline=[
            {
                "time": t.at.strftime("%m-%d %H:%M:%S"),
                "container": t.container_name,
                "text": t.text,
                "severity": t.severity,
                "color": SEVERITY_COLORS.get(t.severity, "gray"),
            }
            for t in reversed(data.timeline)
        ],
        as_of=now.strftime("%H:%M:%S UTC"),
    )


@dataclass(slots=True)
class KvView:
    rows: list[BarRow] = field(default_factory=list)
    usage_chart: Chart = field(default_factory=list)
    hit_chart: Chart = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    as_of: str = ""


def _bar(fraction: float | None) -> int:
    return round(max(0.0, min(1.0, fraction)) * 100) if fraction is not None else 0


def kv_view(data: EngineWorkers, now: datetime) -> KvView:
    span = (data.end - data.start).total_seconds()
    shown = [w for w in data.workers if w.points][:SLOTS]
    rows: list[BarRow] = []
    for w in data.workers:
        base = engine_row(w.engine, now)
        row: BarRow = {
            **base,
            "kv_pct": _bar(w.engine.kv_cache_usage),
            "prefix_pct": _bar(w.engine.value("prefix_hit_rate")),
            "kv_aria": f"{base['deployment']} KV cache in use: {base['kv']}",
            "prefix_aria": f"{base['deployment']} prefix-cache hit rate: {base['prefix']}",
        }
        rows.append(row)
    return KvView(
        rows=rows,
        usage_chart=merged_chart((w.points for w in shown), "kv_cache_usage", data.bin_s, span, 100.0, 1),
        hit_chart=merged_chart((w.points for w in shown), "prefix_hit_rate", data.bin_s, span, 100.0, 1),
        names=slot_names([w.engine.deployment.name for w in shown]),
        as_of=now.strftime("%H:%M:%S UTC"),
    )


QUEUE_ROW_KEYS = ("deployment", "href", "running", "waiting", "age", "status", "status_color")


@dataclass(slots=True)
class QueueView:
    """The engines' own queues for the Usage page: requests waiting per worker over time, and now."""

    chart: Chart = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    empty: str = ""


def queue_view(data: EngineWorkers, now: datetime, alias: str = "") -> QueueView:
    span = (data.end - data.start).total_seconds()
    shown = [w for w in data.workers if w.points][:SLOTS]
    rows = [{k: v for k, v in engine_row(w.engine, now).items() if k in QUEUE_ROW_KEYS} for w in data.workers]
    if data.workers:
        empty = ""
    elif alias:
        empty = f"No engine serving {alias} reports /metrics (vLLM's queue is read from each deployment's engine)."
    else:
        empty = "No engine reports /metrics yet: queue depth comes from each self-hosted deployment's vLLM engine."
    return QueueView(
        chart=merged_chart((w.points for w in shown), "waiting", data.bin_s, span, 1.0, 1),
        names=slot_names([w.engine.deployment.name for w in shown]),
        rows=rows,
        empty=empty,
    )
