"""What the fleet pages read: containers, GPUs, engines and their series, as the collectors stored them.

Each function runs a few bounded queries (a time range and a LIMIT on everything that grows) and joins in
Python, never one query per row. Series are averaged into at most `max_points` bins (see `series`); the
loading timeline is built from container events (see `timeline`).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, or_, select
from sqlalchemy.engine import Connection, Engine

from llm_console.db.fleet_tables import (
    FleetContainer,
    FleetContainerEvent,
    FleetEngine,
    FleetGpu,
    FleetSample,
    FleetSource,
)
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from llm_console.db.queries.filters import utc
from llm_console.fleet.series import TIERS, Point, bin_seconds, number_or_none
from llm_console.fleet.series import series as series_of
from llm_console.fleet.timeline import TimelineEntry, loading_timeline, pending_starts

MAX_CONTAINERS = 500
MAX_GPUS = 256
MAX_ENGINES = 500
MAX_SOURCES = 200
MAX_EVENTS = 500
MAX_PENDING = 20  # loads under way looked up per deployment page
REMOVED_WINDOW = timedelta(hours=1)  # removed containers stay on the overview this long, marked
LOADING_LOOKBACK = timedelta(hours=1)  # events read before the range, so a load that ends in it has its start
DEFAULT_STALE_S = 20.0
BUCKET_S = TIERS[-1]
GPU_KEYS = ("memory_used_bytes", "memory_total_bytes")
ENGINE_KEYS = (
    "running",
    "waiting",
    "kv_cache_usage",
    "prefix_hit_rate",
    "prompt_tps",
    "generation_tps",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "itl_p50_ms",
    "itl_p95_ms",
    "e2e_p50_ms",
    "batch_tokens_mean",
    "preemptions",
)
KV_KEYS = ("kv_cache_usage", "prefix_hit_rate")
QUEUE_KEYS = ("waiting", "running")

C: Table = FleetContainer.__table__  # type: ignore[attr-defined]
E: Table = FleetContainerEvent.__table__  # type: ignore[attr-defined]
G: Table = FleetGpu.__table__  # type: ignore[attr-defined]
N: Table = FleetEngine.__table__  # type: ignore[attr-defined]
S: Table = FleetSample.__table__  # type: ignore[attr-defined]
SRC: Table = FleetSource.__table__  # type: ignore[attr-defined]
D: Table = Deployment.__table__  # type: ignore[attr-defined]
P: Table = Provider.__table__  # type: ignore[attr-defined]
A: Table = ModelAlias.__table__  # type: ignore[attr-defined]
AD: Table = AliasDeployment.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    kind: str  # docker | nvml | engines
    host: str
    ok: bool
    message: str
    detail: Mapping[str, str]
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    id: int
    name: str  # "#7 (deleted)" when the deployment no longer exists
    model: str = ""
    provider: str = ""
    aliases: tuple[str, ...] = ()
    exists: bool = True


@dataclass(frozen=True, slots=True)
class ContainerRow:
    id: str
    host: str
    name: str
    image: str
    version: str
    model: str
    deployment: DeploymentRef | None
    status: str
    health: str
    started_at: datetime | None
    finished_at: datetime | None
    restart_count: int
    exit_code: int | None
    cpu_pct: float | None
    mem_bytes: int | None
    mem_limit_bytes: int | None
    gpu_uuids: tuple[str, ...]
    seen_at: datetime
    removed_at: datetime | None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


@dataclass(frozen=True, slots=True)
class GpuProcessRow:
    pid: int
    used_bytes: int | None
    container_id: str
    container_name: str
    deployment: DeploymentRef | None
    model: str


@dataclass(frozen=True, slots=True)
class GpuRow:
    uuid: str
    host: str
    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_pct: float | None
    memory_utilization_pct: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    driver_version: str
    cuda_version: str
    processes: tuple[GpuProcessRow, ...]
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class EngineRow:
    """A deployment's last `/metrics` scrape; `stale` when its last good one is older than the stale limit."""

    deployment: DeploymentRef
    ok: bool
    error: str | None
    scraped_at: datetime
    last_ok_at: datetime | None
    stale: bool
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None
    values: Mapping[str, float | None]  # ENGINE_KEYS beyond the three columns (prefix_hit_rate, tps, ...)

    def value(self, key: str) -> float | None:
        if key in ("running", "waiting", "kv_cache_usage"):
            return cast(float | None, getattr(self, key))
        return self.values.get(key)


@dataclass(frozen=True, slots=True)
class MatrixColumn:
    key: str  # "deployment:7", "model:<name>", "container:<name>" or "other:"
    label: str
    deployment_id: int | None = None


@dataclass(frozen=True, slots=True)
class MatrixCell:
    used_bytes: int | None  # None: processes there whose memory NVML did not report
    processes: int


@dataclass(frozen=True, slots=True)
class MatrixRow:
    gpu: GpuRow
    cells: tuple[MatrixCell | None, ...]  # one per column; None: nothing of that column on this GPU


@dataclass(frozen=True, slots=True)
class GpuMatrix:
    columns: tuple[MatrixColumn, ...]
    rows: tuple[MatrixRow, ...]


@dataclass(frozen=True, slots=True)
class FleetOverview:
    now: datetime
    sources: tuple[SourceRow, ...]
    containers: tuple[ContainerRow, ...]
    gpus: tuple[GpuRow, ...]
    engines: tuple[EngineRow, ...]
    matrix: GpuMatrix


@dataclass(frozen=True, slots=True)
class GpuTrend:
    gpu: GpuRow
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class MemoryTrend:
    start: datetime
    end: datetime
    bin_s: int
    gpus: tuple[GpuTrend, ...]


@dataclass(frozen=True, slots=True)
class DeploymentFleet:
    deployment_id: int
    deployment: DeploymentRef | None  # None: no such deployment, and nothing stored about it
    engine: EngineRow | None
    series: tuple[Point, ...]
    bin_s: int
    containers: tuple[ContainerRow, ...]
    timeline: tuple[TimelineEntry, ...]
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class EngineWorker:
    engine: EngineRow
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class EngineWorkers:
    start: datetime
    end: datetime
    bin_s: int
    workers: tuple[EngineWorker, ...]


def _deployments(conn: Connection, ids: Iterable[int]) -> dict[int, DeploymentRef]:
    """Name, model, provider and aliases of the given deployments (two queries); missing ids are marked deleted."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    found = conn.execute(
        select(D.c.id, D.c.name, D.c.model, P.c.name.label("provider"))
        .select_from(D.outerjoin(P, P.c.id == D.c.provider_id))
        .where(D.c.id.in_(wanted))
    ).all()
    aliases: dict[int, list[str]] = defaultdict(list)
    for dep_id, alias in conn.execute(
        select(AD.c.deployment_id, A.c.alias)
        .select_from(AD.join(A, A.c.id == AD.c.alias_id))
        .where(AD.c.deployment_id.in_(wanted))
        .order_by(A.c.alias)
    ):
        aliases[dep_id].append(alias)
    out = {r.id: DeploymentRef(r.id, r.name, r.model, r.provider or "", tuple(aliases.get(r.id, ()))) for r in found}
    for dep_id in wanted:
        out.setdefault(dep_id, DeploymentRef(dep_id, f"#{dep_id} (deleted)", exists=False))
    return out


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _container(r: Any, deps: Mapping[int, DeploymentRef]) -> ContainerRow:
    return ContainerRow(
        id=r.id,
        host=r.host,
        name=r.name,
        image=r.image,
        version=r.version,
        model=r.model,
        deployment=deps.get(r.deployment_id) if r.deployment_id is not None else None,
        status=r.status,
        health=r.health,
        started_at=_aware(r.started_at),
        finished_at=_aware(r.finished_at),
        restart_count=r.restart_count or 0,
        exit_code=r.exit_code,
        cpu_pct=r.cpu_pct,
        mem_bytes=r.mem_bytes,
        mem_limit_bytes=r.mem_limit_bytes,
        gpu_uuids=tuple(r.gpu_uuids or ()),
        seen_at=utc(r.seen_at),
        removed_at=_aware(r.removed_at),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _gpu(r: Any, deps: Mapping[int, DeploymentRef]) -> GpuRow:
    procs = []
    for p in r.processes or []:
        if not isinstance(p, Mapping):
            continue
        dep_id = _int_or_none(p.get("deployment_id"))
        procs.append(
            GpuProcessRow(
                pid=_int_or_none(p.get("pid")) or 0,
                used_bytes=_int_or_none(p.get("used_bytes")),
                container_id=str(p.get("container_id") or ""),
                container_name=str(p.get("container_name") or ""),
                deployment=deps.get(dep_id) if dep_id is not None else None,
                model=str(p.get("model") or ""),
            )
        )
    return GpuRow(
        uuid=r.uuid,
        host=r.host,
        index=r.index,
        name=r.name,
        memory_used_bytes=r.memory_used_bytes or 0,
        memory_total_bytes=r.memory_total_bytes or 0,
        utilization_pct=r.utilization_pct,
        memory_utilization_pct=r.memory_utilization_pct,
        temperature_c=r.temperature_c,
        power_w=r.power_w,
        power_limit_w=r.power_limit_w,
        driver_version=r.driver_version,
        cuda_version=r.cuda_version,
        processes=tuple(procs),
        seen_at=utc(r.seen_at),
    )


def _engine(r: Any, dep: DeploymentRef, now: datetime, stale_s: float) -> EngineRow:
    last_ok = _aware(r.last_ok_at)
    raw = r.values if isinstance(r.values, Mapping) else {}
    return EngineRow(
        deployment=dep,
        ok=bool(r.ok),
        error=r.error,
        scraped_at=utc(r.scraped_at),
        last_ok_at=last_ok,
        stale=last_ok is None or (now - last_ok).total_seconds() > stale_s,
        running=r.running,
        waiting=r.waiting,
        kv_cache_usage=r.kv_cache_usage,
        values={k: number_or_none(raw.get(k)) for k in ENGINE_KEYS},
    )


def _gpu_ids(rows: Iterable[Any]) -> set[int]:
    return {
        dep
        for r in rows
        for p in (r.processes or [])
        if isinstance(p, Mapping) and (dep := _int_or_none(p.get("deployment_id"))) is not None
    }


def _column(p: GpuProcessRow) -> MatrixColumn:
    if p.deployment is not None:
        return MatrixColumn(f"deployment:{p.deployment.id}", p.deployment.name, p.deployment.id)
    if p.model:
        return MatrixColumn(f"model:{p.model}", p.model)
    if p.container_name:
        return MatrixColumn(f"container:{p.container_name}", p.container_name)
    return MatrixColumn("other:", "Other processes")


def gpu_matrix(gpus: Sequence[GpuRow]) -> GpuMatrix:
    """GPUs by the deployments (else models, else containers) whose processes hold memory on them."""
    columns: dict[str, MatrixColumn] = {}
    sums: dict[tuple[str, str], list[int]] = {}  # (gpu, column) -> [known bytes, processes, processes with bytes]
    for gpu in gpus:
        for p in gpu.processes:
            col = _column(p)
            columns.setdefault(col.key, col)
            acc = sums.setdefault((gpu.uuid, col.key), [0, 0, 0])
            acc[1] += 1
            if p.used_bytes is not None:
                acc[0] += p.used_bytes
                acc[2] += 1
    ordered = tuple(sorted(columns.values(), key=lambda c: (c.key == "other:", c.label.lower(), c.key)))

    def cell(uuid: str, key: str) -> MatrixCell | None:
        acc = sums.get((uuid, key))
        if acc is None:
            return None
        return MatrixCell(acc[0] if acc[2] else None, acc[1])

    rows = tuple(MatrixRow(g, tuple(cell(g.uuid, c.key) for c in ordered)) for g in gpus)
    return GpuMatrix(ordered, rows)


def fleet_overview(
    engine: Engine, now: datetime, *, stale_s: float = DEFAULT_STALE_S, removed_window: timedelta = REMOVED_WINDOW
) -> FleetOverview:
    """Sources, containers (removed ones for `removed_window`), GPUs with their processes, engines, the matrix."""
    now = utc(now)
    with engine.connect() as conn:
        sources = conn.execute(select(SRC).order_by(SRC.c.kind, SRC.c.host, SRC.c.name).limit(MAX_SOURCES)).all()
        containers = conn.execute(
            select(C)
            .where(or_(C.c.removed_at.is_(None), C.c.removed_at >= now - removed_window))
            .order_by(C.c.removed_at.is_not(None), C.c.name, C.c.id)
            .limit(MAX_CONTAINERS)
        ).all()
        gpus = conn.execute(select(G).order_by(G.c.host, G.c.index, G.c.uuid).limit(MAX_GPUS)).all()
        engines = conn.execute(select(N).order_by(N.c.deployment_id).limit(MAX_ENGINES)).all()
        ids = {r.deployment_id for r in containers if r.deployment_id is not None}
        deps = _deployments(conn, ids | {r.deployment_id for r in engines} | _gpu_ids(gpus))
    gpu_rows = tuple(_gpu(r, deps) for r in gpus)
    engine_rows = sorted(
        (_engine(r, deps[r.deployment_id], now, stale_s) for r in engines), key=lambda e: e.deployment.name.lower()
    )
    return FleetOverview(
        now=now,
        sources=tuple(
            SourceRow(
                r.name,
                r.kind,
                r.host,
                bool(r.ok),
                r.message,
                {str(k): str(v) for k, v in (r.detail or {}).items()},
                utc(r.checked_at),
            )
            for r in sources
        ),
        containers=tuple(_container(r, deps) for r in containers),
        gpus=gpu_rows,
        engines=tuple(engine_rows),
        matrix=gpu_matrix(gpu_rows),
    )


def memory_trend(engine: Engine, start: datetime, end: datetime, max_points: int = 120) -> MemoryTrend:
    """Memory used (and total) per GPU over [start, end), at most `max_points` points per GPU."""
    start, end = utc(start), utc(end)
    bin_s = bin_seconds(start, end, max_points)
    with engine.connect() as conn:
        gpus = conn.execute(select(G).order_by(G.c.host, G.c.index, G.c.uuid).limit(MAX_GPUS)).all()
        deps = _deployments(conn, _gpu_ids(gpus))
        series = series_of(conn, "gpu", [g.uuid for g in gpus], GPU_KEYS, start, end, bin_s)
    trends = tuple(GpuTrend(_gpu(g, deps), series.get(g.uuid, ())) for g in gpus)
    return MemoryTrend(start, end, bin_s, trends)


def _first_answers(conn: Connection, deployment_id: int, starts: Mapping[str, datetime]) -> dict[str, datetime]:
    """Per container, the first good scrape of the deployment's engine after its start (one query; the
    collector stores engine samples for good scrapes only): a raw sample's time, or where raw samples are
    gone, the start of the first 5-minute average after it."""
    chosen = sorted(starts.items())[:MAX_PENDING]
    if not chosen:
        return {}

    def first(bucket_s: int, after: datetime) -> Any:
        subject = (S.c.kind == "engine", S.c.subject == str(deployment_id), S.c.bucket_s == bucket_s)
        return select(func.min(S.c.at)).where(*subject, S.c.at > after).scalar_subquery()

    firsts = [func.coalesce(first(0, at), first(BUCKET_S, at)).label(f"a{i}") for i, (_, at) in enumerate(chosen)]
    row = conn.execute(select(*firsts)).one()
    return {cid: utc(value) for (cid, _), value in zip(chosen, row, strict=True) if value is not None}


def deployment_fleet(
    engine: Engine,
    deployment_id: int,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    stale_s: float = DEFAULT_STALE_S,
    max_points: int = 120,
) -> DeploymentFleet:
    """One deployment: its latest engine reading and series, its containers, its model-loading timeline."""
    start, end = utc(start), utc(end)
    now = utc(now or end)
    bin_s = bin_seconds(start, end, max_points)
    with engine.connect() as conn:
        deps = _deployments(conn, [deployment_id])
        scrape = conn.execute(select(N).where(N.c.deployment_id == deployment_id)).first()
        containers = conn.execute(
            select(C)
            .where(C.c.deployment_id == deployment_id)
            .order_by(C.c.removed_at.is_not(None), C.c.name, C.c.id)
            .limit(MAX_CONTAINERS)
        ).all()
        ids = [r.id for r in containers]
        events = conn.execute(
            select(E)
            .where(
                or_(E.c.deployment_id == deployment_id, E.c.container_id.in_(ids)),
                E.c.at >= start - LOADING_LOOKBACK,
                E.c.at < end,
            )
            .order_by(E.c.at.desc(), E.c.id.desc())
            .limit(MAX_EVENTS)
        ).all()
        ordered = list(reversed(events))
        rows = tuple(_container(r, deps) for r in containers)
        running = {r.id: r.status == "running" and not r.removed for r in rows}
        waiting = {cid: at for cid, at in pending_starts(ordered).items() if running.get(cid)}
        answered = _first_answers(conn, deployment_id, waiting)
        series = series_of(conn, "engine", [str(deployment_id)], ENGINE_KEYS, start, end, bin_s)
    dep = deps[deployment_id]
    known = dep.exists or scrape is not None or bool(rows) or bool(events)
    timeline = loading_timeline(ordered, running, now, start, answered)
    return DeploymentFleet(
        deployment_id=deployment_id,
        deployment=dep if known else None,
        engine=_engine(scrape, dep, now, stale_s) if scrape is not None else None,
        series=series.get(str(deployment_id), ()),
        bin_s=bin_s,
        containers=rows,
        timeline=timeline,
        start=start,
        end=end,
    )


def engine_workers(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    keys: Sequence[str],
    now: datetime | None = None,
    stale_s: float = DEFAULT_STALE_S,
    max_points: int = 120,
    alias: str = "",
) -> EngineWorkers:
    """Per worker (a deployment whose engine was scraped; only those serving `alias` when given): its last
    reading and the mean of each of `keys` per bin over [start, end)."""
    start, end = utc(start), utc(end)
    now = utc(now or end)
    bin_s = bin_seconds(start, end, max_points)
    with engine.connect() as conn:
        engines = conn.execute(select(N).order_by(N.c.deployment_id).limit(MAX_ENGINES)).all()
        deps = _deployments(conn, [r.deployment_id for r in engines])
        if alias:
            engines = [r for r in engines if alias in deps[r.deployment_id].aliases]
        series = series_of(conn, "engine", [str(r.deployment_id) for r in engines], keys, start, end, bin_s)
    workers = sorted(
        (
            EngineWorker(_engine(r, deps[r.deployment_id], now, stale_s), series.get(str(r.deployment_id), ()))
            for r in engines
        ),
        key=lambda w: w.engine.deployment.name.lower(),
    )
    return EngineWorkers(start, end, bin_s, tuple(workers))


# Per worker: KV-cache use and prefix-cache hit rate (the KV-cache page); requests waiting and running, as the
# engine's `/metrics` reported them (the Usage page, narrowed to an alias's deployments when given).
kv_cache = functools.partial(engine_workers, keys=KV_KEYS)
queue_depth = functools.partial(engine_workers, keys=QUEUE_KEYS)
