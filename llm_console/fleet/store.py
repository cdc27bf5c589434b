"""Writing what the fleet collectors read, averaging samples into 5-minute and hour points, and pruning.

One writer per source (the collectors run under leader locks), so the "last seen" tables are plain
upserts by primary key. Series go to `fleet_samples`: raw points for `fleet_raw_retention_hours`, and one
averaged point per subject and 5 minutes, and per subject and hour, for `fleet_retention_days`. Averages
are made as soon as their bucket is complete, so long ranges never read raw points (see `fleet.series`).
The container rounds also keep each deployment's hours up (`fleet.uptime`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from llm_console.db.engine import session
from llm_console.db.fleet_tables import (
    FleetContainer,
    FleetContainerEvent,
    FleetEngine,
    FleetGpu,
    FleetSample,
    FleetSource,
    FleetUptime,
)
from llm_console.db.queries.filters import utc
from llm_console.fleet import uptime
from llm_console.fleet.series import number_or_none
from llm_console.fleet.types import ContainerEventInfo, ContainerInfo, EngineReading, GpuInfo, SourceStatus
from llm_console.settings import Settings

BUCKET_S = 300
HOUR_S = 3600
FOLD_MARGIN = timedelta(seconds=60)  # a round's samples are stored within this after their time


def save_source(engine: Engine, status: SourceStatus, at: datetime) -> None:
    with session(engine) as s:
        s.merge(
            FleetSource(
                name=status.name,
                kind=status.kind,
                host=status.host,
                ok=status.ok,
                message=status.message,
                detail=dict(status.detail),
                checked_at=at,
            )
        )
        s.commit()


def _samples(kind: str, rows: Iterable[tuple[str, int | None, dict[str, Any]]], at: datetime) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "subject": subject, "deployment_id": dep, "at": at, "bucket_s": 0, "values": values}
        for subject, dep, values in rows
    ]


def save_containers(
    engine: Engine, host: str, containers: Sequence[ContainerInfo], at: datetime, *, interval_s: float = 10.0
) -> None:
    """Upsert what was seen on `host`; containers of that host no longer listed are marked removed. The
    deployments that had a running container at the previous round are counted up until now (`uptime`);
    `interval_s` is the collector's (LLMC_FLEET_INTERVAL_S)."""
    seen = {c.id for c in containers}
    with session(engine) as s:
        known = {row.id: row for row in s.exec(select(FleetContainer).where(FleetContainer.host == host)).all()}
        spans = uptime.up_spans(known.values(), at, interval_s)
        uptime.record(s.connection(), spans, {c.deployment_id for c in containers if c.deployment_id}, at)
        for c in containers:
            row = known.get(c.id) or FleetContainer(id=c.id, host=host, first_seen=at)
            row.name, row.image, row.version, row.model = c.name, c.image, c.version, c.model
            row.deployment_id, row.status, row.health = c.deployment_id, c.status, c.health
            row.started_at, row.finished_at = c.started_at, c.finished_at
            row.restart_count, row.exit_code = c.restart_count, c.exit_code
            row.cpu_pct, row.mem_bytes, row.mem_limit_bytes = c.cpu_pct, c.mem_bytes, c.mem_limit_bytes
            row.ports, row.seen_at, row.removed_at = list(c.ports), at, None
            s.add(row)
        for cid, row in known.items():
            if cid not in seen and row.removed_at is None:
                row.status, row.removed_at = "removed", at
                s.add(row)
        points = _samples(
            "container",
            (
                (
                    c.id,
                    c.deployment_id,
                    {
                        "up": 1.0 if c.status == "running" else 0.0,
                        "cpu_pct": c.cpu_pct,
                        "mem_bytes": c.mem_bytes,
                        "restart_count": c.restart_count,
                    },
                )
                for c in containers
            ),
            at,
        )
        if points:
            s.execute(insert(FleetSample), points)
        s.commit()


def save_container_gpus(engine: Engine, gpus: Sequence[GpuInfo]) -> None:
    """Record on each container which GPUs its processes use (from NVML's process lists)."""
    by_container: dict[str, set[str]] = defaultdict(set)
    for gpu in gpus:
        for proc in gpu.processes:
            if proc.container_id:
                by_container[proc.container_id].add(gpu.uuid)
    with session(engine) as s:
        for row in s.exec(select(FleetContainer).where(col(FleetContainer.removed_at).is_(None))).all():
            uuids = sorted(by_container.get(row.id, ()))
            if uuids != list(row.gpu_uuids or []):
                row.gpu_uuids = uuids
                s.add(row)
        s.commit()


def save_events(engine: Engine, events: Sequence[ContainerEventInfo]) -> int:
    """Insert events not stored yet (polls overlap at their edges); returns how many were new."""
    added = 0
    with session(engine) as s:
        for e in events:
            try:
                with s.begin_nested():
                    s.execute(
                        insert(FleetContainerEvent).values(
                            container_id=e.container_id,
                            container_name=e.container_name[:200],
                            deployment_id=e.deployment_id,
                            at=e.at,
                            action=e.action[:40],
                            detail=e.detail[:500],
                        )
                    )
                added += 1
            except IntegrityError:
                continue
        s.commit()
    return added


def save_gpus(engine: Engine, host: str, gpus: Sequence[GpuInfo], at: datetime) -> None:
    with session(engine) as s:
        for g in gpus:
            s.merge(
                FleetGpu(
                    uuid=g.uuid,
                    host=host,
                    index=g.index,
                    name=g.name,
                    memory_used_bytes=g.memory_used_bytes,
                    memory_total_bytes=g.memory_total_bytes,
                    utilization_pct=g.utilization_pct,
                    memory_utilization_pct=g.memory_utilization_pct,
                    temperature_c=g.temperature_c,
                    power_w=g.power_w,
                    power_limit_w=g.power_limit_w,
                    driver_version=g.driver_version,
                    cuda_version=g.cuda_version,
                    processes=[asdict(p) for p in g.processes],
                    seen_at=at,
                )
            )
        points = _samples(
            "gpu",
            (
                (
                    g.uuid,
                    None,
                    {
                        "memory_used_bytes": g.memory_used_bytes,
                        "memory_total_bytes": g.memory_total_bytes,
                        "utilization_pct": g.utilization_pct,
                        "temperature_c": g.temperature_c,
                        "power_w": g.power_w,
                    },
                )
                for g in gpus
            ),
            at,
        )
        if points:
            s.execute(insert(FleetSample), points)
        s.commit()


def save_engines(engine: Engine, readings: Sequence[EngineReading], at: datetime) -> None:
    """The latest scrape per deployment (a failed scrape keeps the last good figures, marked not ok)."""
    with session(engine) as s:
        for r in readings:
            row = s.get(FleetEngine, r.deployment_id) or FleetEngine(deployment_id=r.deployment_id)
            row.scraped_at, row.ok, row.error = at, r.ok, r.error
            if r.ok:
                row.running, row.waiting, row.kv_cache_usage = r.running, r.waiting, r.kv_cache_usage
                row.values = {**r.values(), "models": list(r.models)}
                row.last_ok_at = at
            s.add(row)
        points = _samples("engine", ((str(r.deployment_id), r.deployment_id, r.values()) for r in readings if r.ok), at)
        if points:
            s.execute(insert(FleetSample), points)
        s.commit()


def _floor(at: datetime, seconds: int) -> datetime:
    """The start of the epoch-aligned bucket of `seconds` holding `at` (hours and 5 minutes align to UTC)."""
    at = utc(at)
    return at - timedelta(seconds=at.timestamp() % seconds)


def _average(items: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    """Per value, the mean over the points that have it, each weighing the raw points it stands for;
    `n`: how many raw points in all."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for values, weight in items:
        for name, value in values.items():
            v = number_or_none(value)
            if name != "n" and v is not None:
                sums[name][0] += v * weight
                sums[name][1] += weight
    out: dict[str, Any] = {name: None for values, _ in items for name in values if name != "n"}
    out.update({name: total / weight for name, (total, weight) in sums.items() if weight > 0})
    out = {name: out[name] for name in sorted(out)}
    n = sum(weight for _, weight in items)
    out["n"] = int(n) if float(n).is_integer() else n
    return out


def _fold(s: Any, source: int, target: int, until: datetime, window: timedelta) -> int:
    """Average every `target` bucket of `source` points that is complete by `until` and not averaged yet (the
    latest `target` point marks how far that went), one window at a time; returns the source points read."""
    t = FleetSample.__table__  # type: ignore[attr-defined]
    last = s.execute(sa_select(func.max(t.c.at)).where(t.c.bucket_s == target)).scalar()
    if last is None:
        last = s.execute(sa_select(func.min(t.c.at)).where(t.c.bucket_s == source)).scalar()
        lo = None if last is None else _floor(last, target)
    else:
        lo = utc(last) + timedelta(seconds=target)
    read = 0
    while lo is not None and lo < until:
        hi = min(until, lo + window)
        rows = s.execute(
            sa_select(t.c.kind, t.c.subject, t.c.deployment_id, t.c.at, t.c["values"]).where(
                t.c.bucket_s == source, t.c.at >= lo, t.c.at < hi
            )
        ).all()
        groups: dict[tuple[str, str, int | None, datetime], list[tuple[dict[str, Any], float]]] = defaultdict(list)
        for kind, subject, dep, at, values in rows:
            values = values if isinstance(values, dict) else {}
            weight = (number_or_none(values.get("n")) or 1.0) if source else 1.0
            groups[(kind, subject, dep, _floor(at, target))].append((values, weight))
        points = [
            {"kind": kind, "subject": subject, "deployment_id": dep, "at": start, "bucket_s": target,
             "values": _average(items)}
            for (kind, subject, dep, start), items in sorted(groups.items(), key=lambda kv: kv[0][3])
        ]  # fmt: skip
        if points:
            s.execute(insert(FleetSample), points)
        read += len(rows)
        lo = hi
    return read


def downsample(engine: Engine, settings: Settings, now: datetime | None = None) -> tuple[int, int]:
    """Average raw samples into 5-minute points and those into hour points, each bucket once it is complete;
    drop raw samples past the raw retention (once averaged) and prune what is past the fleet retention
    (averages, container events, removed containers) and hours up past the rollup retention.
    Returns (raw points averaged, rows pruned)."""
    now = utc(now or datetime.now(UTC))
    until = _floor(now - FOLD_MARGIN, BUCKET_S)
    raw_cut = min(_floor(now - timedelta(hours=settings.fleet_raw_retention_hours), BUCKET_S), until)
    keep_cut = now - timedelta(days=settings.fleet_retention_days)
    pruned = 0
    with session(engine) as s:
        folded = _fold(s, 0, BUCKET_S, until, timedelta(hours=1))
        _fold(s, BUCKET_S, HOUR_S, _floor(until, HOUR_S), timedelta(days=1))
        s.execute(delete(FleetSample).where(col(FleetSample.bucket_s) == 0, col(FleetSample.at) < raw_cut))
        res = s.execute(delete(FleetSample).where(col(FleetSample.at) < keep_cut))
        pruned += res.rowcount or 0  # type: ignore[attr-defined]
        res = s.execute(delete(FleetContainerEvent).where(col(FleetContainerEvent.at) < keep_cut))
        pruned += res.rowcount or 0  # type: ignore[attr-defined]
        res = s.execute(
            delete(FleetContainer).where(
                col(FleetContainer.removed_at).is_not(None),
                col(FleetContainer.removed_at) < keep_cut,
            )
        )
        pruned += res.rowcount or 0  # type: ignore[attr-defined]
        uptime_cut = uptime.hour_of(now - timedelta(days=settings.retention_rollup_days))
        res = s.execute(delete(FleetUptime).where(col(FleetUptime.hour) < uptime_cut))
        pruned += res.rowcount or 0  # type: ignore[attr-defined]
        s.commit()
    return folded, pruned


START_SLACK = timedelta(seconds=5)  # an engine's start event and the container's StartedAt differ slightly


def mark_ready(engine: Engine, models: Mapping[int, Sequence[str]], at: datetime) -> int:
    """Engines that answered `/metrics` now (deployment id -> models served): each running container of
    theirs whose start the fleet saw (a start event) and that has no "ready" since gets one, closing a
    model-loading span on the timeline. Containers already running when first seen get none: their loading
    time is unknown. Two queries whatever the fleet's size; returns how many events were added."""
    if not models:
        return 0
    events: list[ContainerEventInfo] = []
    with session(engine) as s:
        rows = [
            r
            for r in s.exec(
                select(FleetContainer).where(
                    col(FleetContainer.deployment_id).in_(list(models)), col(FleetContainer.status) == "running"
                )
            ).all()
            if r.started_at is not None
        ]
        if not rows:
            return 0
        since = min(utc(r.started_at) for r in rows if r.started_at) - START_SLACK
        seen: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for cid, when, action in s.exec(
            select(FleetContainerEvent.container_id, FleetContainerEvent.at, FleetContainerEvent.action).where(
                col(FleetContainerEvent.container_id).in_([r.id for r in rows]),
                col(FleetContainerEvent.action).in_(("start", "restart", "ready")),
                col(FleetContainerEvent.at) >= since,
            )
        ).all():
            seen[cid].append((utc(when), action))
    for row in rows:
        started = utc(row.started_at) if row.started_at else at
        mine = [(when, action) for when, action in seen.get(row.id, []) if when >= started - START_SLACK]
        if not any(action in ("start", "restart") for _, action in mine) or any(a == "ready" for _, a in mine):
            continue
        served = models.get(row.deployment_id or 0) or ()
        took = f" after {(at - started).total_seconds():.0f} s" if at >= started else ""
        detail = f"serving {', '.join(served)}{took}" if served else f"engine answering{took}"
        events.append(ContainerEventInfo(row.id, row.name, at, "ready", detail, row.deployment_id))
    return save_events(engine, events) if events else 0


def known_containers(engine: Engine, host: str) -> list[ContainerInfo]:
    """The containers stored for `host` (not removed), as the collector saw them last: its restart counts
    continue from these after a restart of the console."""
    with session(engine) as s:
        rows = s.exec(
            select(FleetContainer).where(FleetContainer.host == host, col(FleetContainer.removed_at).is_(None))
        ).all()
    return [
        ContainerInfo(
            id=r.id,
            name=r.name,
            image=r.image,
            version=r.version,
            model=r.model,
            status=r.status,
            health=r.health,
            started_at=utc(r.started_at) if r.started_at else None,
            finished_at=utc(r.finished_at) if r.finished_at else None,
            restart_count=r.restart_count,
            exit_code=r.exit_code,
            cpu_pct=r.cpu_pct,
            mem_bytes=r.mem_bytes,
            mem_limit_bytes=r.mem_limit_bytes,
            ports=tuple(r.ports or ()),
            deployment_id=r.deployment_id,
        )
        for r in rows
    ]
