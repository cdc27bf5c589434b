"""Two weeks of fleet history beside the dashboard benchmark's month of requests.

Eight of the seeded deployments get a GPU-hour price and one container each (two hosts, four GPUs each, one
GPU per container). The history is what the collectors and `store.downsample` would have left at the seed
time with the default settings: raw container and GPU samples every 10 s and engine samples every 5 s for
the last 24 hours, one 5-minute average per subject before that back to 14 days (then the store's own
`downsample` averages the last day into 5-minute points and everything into hour points), a few hundred
container events (crashes, restarts, model loads, health flaps), 31 days of hours up per deployment
(through `fleet.uptime.record`), and the "last seen" rows written by the store's own functions at the final
round. Load follows a day curve (busy 08-18 UTC, quiet weekends); each container has a few outages (down for
seconds to minutes, then loading the model before its engine answers again).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from llm_console.db.fleet_tables import FleetSample
from llm_console.db.models import Deployment
from llm_console.fleet import store, uptime
from llm_console.fleet.types import ContainerEventInfo, ContainerInfo, EngineReading, GpuInfo, GpuProcess, SourceStatus
from llm_console.settings import Settings

# The five vLLM deployments, and three Azure ones priced by the hour as provisioned throughput is.
PRICED = {
    "vllm-llama-8b": 2.5,
    "vllm-llama-70b": 10.0,
    "vllm-qwen-coder": 5.0,
    "vllm-bge-small": 1.2,
    "vllm-bge-reranker": 1.2,
    "azure-gpt-4o": 12.0,
    "azure-o3-mini": 8.0,
    "azure-te3-large": 3.0,
}
HOSTS = ("gpu-node-1", "gpu-node-2")
INTERVAL_S = 10  # LLMC_FLEET_INTERVAL_S
ENGINE_INTERVAL_S = 5  # LLMC_FLEET_ENGINE_INTERVAL_S
RAW = timedelta(hours=24)  # LLMC_FLEET_RAW_RETENTION_HOURS
KEEP = timedelta(days=14)  # LLMC_FLEET_RETENTION_DAYS
UPTIME = timedelta(days=31)  # hours up are kept 400 days; the collector is taken to have run this long
BUCKET_S = store.BUCKET_S
GiB = 1024**3
GPU_TOTAL = 80 * GiB
CHUNK = 20_000


@dataclass
class Box:
    """One container of one deployment on one GPU, and its outages: (down at, up again at, engine ready at)."""

    dep_id: int
    dep_name: str
    host: str
    gpu_index: int
    weight: float
    load_s: float
    outages: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def cid(self) -> str:
        return f"{self.dep_id:04x}" + "c0ffee" * 9 + f"{self.gpu_index:02x}"

    @property
    def uuid(self) -> str:
        return f"GPU-{self.host[-1]}{self.gpu_index:07d}-5eed-4a1e-b00c-{self.dep_id:012x}"

    def up(self, t: float) -> bool:
        return not any(lo <= t < hi for lo, hi, _ in self.outages)

    def answering(self, t: float) -> bool:
        return not any(lo <= t < ready for lo, _, ready in self.outages)

    def restarts(self, t: float) -> int:
        return sum(1 for _, hi, _ in self.outages if hi <= t)

    def up_seconds(self, lo: float, hi: float) -> float:
        return (hi - lo) - sum(max(0.0, min(hi, b) - max(lo, a)) for a, b, _ in self.outages)

    def answering_seconds(self, lo: float, hi: float) -> float:
        return (hi - lo) - sum(max(0.0, min(hi, r) - max(lo, a)) for a, _, r in self.outages)

    def up_spans(self, lo: float, hi: float) -> list[tuple[datetime, datetime]]:
        """[lo, hi) less the outages, as the container rounds would have counted it."""
        spans, at = [], lo
        for down, back, _ in sorted(self.outages):
            if down > at:
                spans.append((at, min(down, hi)))
            at = max(at, back)
        spans.append((at, hi))
        return [(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)) for a, b in spans if b > a]


def load(t: float) -> float:
    """0..1: busy office hours (peaks near 10 and 15 UTC), a quiet night, half as much at weekends."""
    hour = (t % 86400) / 3600
    day = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.15
    weekday = datetime.fromtimestamp(t, UTC).weekday()
    return day * (0.5 if weekday >= 5 else 1.0)


def _boxes(engine: Engine, rng: random.Random, start: float, now: float) -> list[Box]:
    with engine.begin() as conn:
        rows = conn.execute(
            select(Deployment.id, Deployment.name, Deployment.settings).where(  # type: ignore[call-overload]
                Deployment.name.in_(list(PRICED))  # type: ignore[attr-defined]
            )
        ).all()
        for dep_id, name, settings in rows:
            conn.execute(
                update(Deployment)
                .where(Deployment.id == dep_id)  # type: ignore[arg-type]
                .values(settings={**(settings or {}), "gpu_hour_usd": PRICED[name]})
            )
    boxes = []
    for i, (dep_id, name, _) in enumerate(sorted(rows)):
        box = Box(dep_id, name, HOSTS[i % 2], i // 2, rng.uniform(0.4, 1.0), rng.uniform(60, 420))
        t = start + rng.uniform(0, 86400)
        while True:  # an outage every ~2 days on average, none in the last hour
            t += rng.expovariate(1 / (2 * 86400))
            if t > now - 3600:
                break
            down = rng.choice((rng.uniform(5, 40), rng.uniform(60, 900)))
            box.outages.append((t, t + down, t + down + box.load_s * rng.uniform(0.8, 1.2)))
            t += down + box.load_s * 2
        boxes.append(box)
    return boxes


def _container_values(b: Box, t: float, noise: float) -> dict[str, Any]:
    up = b.up(t)
    return {
        "up": 1.0 if up else 0.0,
        "cpu_pct": (80 + 220 * load(t) * b.weight + noise) if up else None,
        "mem_bytes": int((6 + 3 * b.weight) * GiB + noise * 1e6) if up else None,
        "restart_count": b.restarts(t),
    }


def _gpu_values(b: Box, t: float, noise: float) -> dict[str, Any]:
    util = min(100.0, max(0.0, 92 * load(t) * b.weight + noise)) if b.answering(t) else 0.0
    used = int(0.9 * GPU_TOTAL + noise * 1e6) if b.up(t) else 512 * 1024**2
    return {
        "memory_used_bytes": used,
        "memory_total_bytes": GPU_TOTAL,
        "utilization_pct": util,
        "temperature_c": 34 + 0.4 * util,
        "power_w": 70 + 6.3 * util,
    }


def _reading(b: Box, t: float, rng: random.Random) -> EngineReading:
    busy = load(t) * b.weight
    running = max(0.0, round(64 * busy + rng.gauss(0, 3)))
    waiting = max(0.0, round(rng.gauss(0, 2) + max(0.0, busy - 0.7) * 40))
    return EngineReading(
        deployment_id=b.dep_id,
        ok=True,
        running=running,
        waiting=waiting,
        kv_cache_usage=min(1.0, max(0.0, 0.08 + 0.8 * busy + rng.gauss(0, 0.03))),
        prefix_hit_rate=min(1.0, max(0.0, 0.45 + rng.gauss(0, 0.08))),
        prompt_tps=max(0.0, 9000 * busy + rng.gauss(0, 300)),
        generation_tps=max(0.0, 2400 * busy + rng.gauss(0, 80)),
        ttft_p50_ms=120 + 300 * busy + rng.gauss(0, 10),
        ttft_p95_ms=400 + 900 * busy + rng.gauss(0, 30),
        itl_p50_ms=18 + 20 * busy,
        itl_p95_ms=35 + 45 * busy,
        e2e_p50_ms=4000 + 6000 * busy,
        batch_tokens_mean=512 + 3000 * busy,
        preemptions=float(rng.random() < 0.01),
        models=(b.dep_name,),
    )


def _rows(kind: str, subject: str, dep: int | None, t: float, bucket_s: int, values: dict[str, Any]) -> dict[str, Any]:
    at = datetime.fromtimestamp(t, UTC)
    return {"kind": kind, "subject": subject, "deployment_id": dep, "at": at, "bucket_s": bucket_s, "values": values}


def _folded(boxes: list[Box], rng: random.Random, lo: float, hi: float) -> Iterator[dict[str, Any]]:
    """One 5-minute average per subject and bucket in [lo, hi): the mean of what the raw points would be."""
    for b in boxes:
        for t in range(int(lo), int(hi), BUCKET_S):
            mid = t + BUCKET_S / 2
            up = b.up_seconds(t, t + BUCKET_S) / BUCKET_S
            c = _container_values(b, mid, rng.gauss(0, 5))
            c["up"], c["n"] = up, BUCKET_S / INTERVAL_S
            yield _rows("container", b.cid, b.dep_id, t, BUCKET_S, c)
            g = _gpu_values(b, mid, rng.gauss(0, 3))
            g["n"] = BUCKET_S / INTERVAL_S
            yield _rows("gpu", b.uuid, None, t, BUCKET_S, g)
            answering = b.answering_seconds(t, t + BUCKET_S)
            if answering >= ENGINE_INTERVAL_S:
                e = _reading(b, mid, rng).values()
                e["n"] = answering // ENGINE_INTERVAL_S
                yield _rows("engine", str(b.dep_id), b.dep_id, t, BUCKET_S, e)


def _raw(boxes: list[Box], rng: random.Random, lo: float, hi: float) -> Iterator[dict[str, Any]]:
    """Raw points of every round in [lo, hi): containers and GPUs per host every 10 s, engines every 5 s."""
    offsets = {host: 1.3 + 4.1 * i for i, host in enumerate(HOSTS)}
    for k in range(int((hi - lo) // INTERVAL_S)):
        for b in boxes:
            t = lo + k * INTERVAL_S + offsets[b.host] + rng.uniform(0, 0.05)
            if t < hi:
                yield _rows("container", b.cid, b.dep_id, t, 0, _container_values(b, t, rng.gauss(0, 5)))
                yield _rows("gpu", b.uuid, None, t, 0, _gpu_values(b, t, rng.gauss(0, 3)))
    for k in range(int((hi - lo) // ENGINE_INTERVAL_S)):
        t = lo + k * ENGINE_INTERVAL_S + 2.2 + rng.uniform(0, 0.2)
        for b in boxes:
            if t < hi and b.answering(t):
                yield _rows("engine", str(b.dep_id), b.dep_id, t, 0, _reading(b, t, rng).values())


def _insert(engine: Engine, rows: Iterator[dict[str, Any]]) -> int:
    done, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            with engine.begin() as conn:
                conn.execute(insert(FleetSample), batch)
            done, batch = done + len(batch), []
    if batch:
        with engine.begin() as conn:
            conn.execute(insert(FleetSample), batch)
    return done + len(batch)


def _events(boxes: list[Box], rng: random.Random, since: float) -> list[ContainerEventInfo]:
    out = []
    for b in boxes:

        def ev(t: float, action: str, detail: str = "", box: Box = b) -> None:
            if t >= since:
                out.append(ContainerEventInfo(box.cid, box.dep_name, datetime.fromtimestamp(t, UTC), action, detail,
                                              box.dep_id))  # fmt: skip

        for lo, hi, ready in b.outages:
            crash = rng.random() < 0.6
            if not crash:
                ev(lo - 0.5, "kill", "signal 15")
            ev(lo, "die", "exit code 137" if crash else "exit code 0")
            ev(hi, "restart" if crash else "start")
            ev(hi + 0.1, "health_status", "starting")
            ev(ready, "ready", f"serving {b.dep_name} after {ready - hi:.0f} s")
            ev(ready + 1, "health_status", "healthy")
        t = since
        while True:  # health checks that time out under load now and then
            t += rng.expovariate(1 / (3 * 86400))
            if t > since + KEEP.total_seconds():
                break
            if b.answering(t) and b.answering(t + 60):
                ev(t, "health_status", "unhealthy")
                ev(t + rng.uniform(10, 50), "health_status", "healthy")
    return out


def _info(b: Box, t: float, first_start: float) -> ContainerInfo:
    starts = [hi for _, hi, _ in b.outages if hi <= t]
    return ContainerInfo(
        id=b.cid,
        name=b.dep_name,
        image="vllm/vllm-openai:v0.9.2",
        version="v0.9.2",
        model=b.dep_name,
        status="running" if b.up(t) else "exited",
        health="healthy",
        started_at=datetime.fromtimestamp(starts[-1] if starts else first_start, UTC),
        finished_at=datetime.fromtimestamp(b.outages[-1][0], UTC) if starts else None,
        restart_count=b.restarts(t),
        exit_code=None if b.up(t) else 137,
        cpu_pct=_container_values(b, t, 0)["cpu_pct"],
        mem_bytes=_container_values(b, t, 0)["mem_bytes"],
        mem_limit_bytes=None,
        ports=(8000 + b.gpu_index,),
        deployment_id=b.dep_id,
    )


def _gpu_info(b: Box, t: float) -> GpuInfo:
    v = _gpu_values(b, t, 0)
    proc = GpuProcess(4000 + b.gpu_index, v["memory_used_bytes"], b.cid, b.dep_name, b.dep_id, b.dep_name)
    return GpuInfo(
        uuid=b.uuid,
        index=b.gpu_index,
        name="NVIDIA H100 80GB HBM3",
        memory_used_bytes=v["memory_used_bytes"],
        memory_total_bytes=GPU_TOTAL,
        utilization_pct=v["utilization_pct"],
        memory_utilization_pct=v["utilization_pct"] * 0.6,
        temperature_c=v["temperature_c"],
        power_w=v["power_w"],
        power_limit_w=700.0,
        driver_version="550.54.15",
        cuda_version="12.4",
        processes=(proc,) if b.up(t) else (),
    )


@dataclass(frozen=True, slots=True)
class FleetSummary:
    deployments: int
    samples: int
    events: int
    seconds: float

    def line(self) -> str:
        return (f"fleet: {self.deployments} priced deployments, one container and GPU each, {self.samples:,} "
                f"samples, {self.events} container events, in {self.seconds:.1f} s")  # fmt: skip


def seed_fleet(engine: Engine, now: datetime, seed: int = 0) -> FleetSummary:
    """Price eight deployments and write their fleet's history up to `now` (the request seed's end)."""
    began = time.perf_counter()
    rng = random.Random(seed)
    end = now.timestamp()
    keep_from = end - KEEP.total_seconds()
    first = end - UPTIME.total_seconds()
    raw_cut = end - RAW.total_seconds()
    raw_cut -= raw_cut % BUCKET_S  # downsample folds whole 5-minute buckets
    last_round = end - (end % INTERVAL_S)  # the final round goes through the store's own writers
    boxes = _boxes(engine, rng, first, end)
    _insert(engine, _folded(boxes, rng, keep_from - keep_from % BUCKET_S, raw_cut))
    _insert(engine, _raw(boxes, rng, raw_cut, last_round))
    at = datetime.fromtimestamp(last_round, UTC)
    with engine.begin() as conn:
        uptime.record(conn, {b.dep_id: b.up_spans(first, last_round) for b in boxes}, (), at)
    for host in HOSTS:
        mine = [b for b in boxes if b.host == host]
        store.save_containers(engine, host, [_info(b, last_round, first) for b in mine], at)
        store.save_gpus(engine, host, [_gpu_info(b, last_round) for b in mine], at)
        store.save_source(engine, SourceStatus("docker", host, True, f"{len(mine)} model-serving containers seen",
                                               {"version": "5.4.2"}), at)  # fmt: skip
        store.save_source(engine, SourceStatus("nvml", host, True, f"{len(mine)} GPUs", {"driver": "550.54.15"}), at)
    readings = [_reading(b, last_round, rng) for b in boxes if b.answering(last_round)]
    store.save_engines(engine, readings, at)
    store.save_source(engine, SourceStatus("engines", "", True, f"{len(readings)} of 13 deployments report"), at)
    events = store.save_events(engine, _events(boxes, rng, keep_from))
    store.downsample(engine, Settings(_env_file=None), now)  # type: ignore[call-arg]  # as the engines loop does
    with engine.connect() as conn:
        samples = conn.execute(select(func.count()).select_from(FleetSample)).scalar_one()
    return FleetSummary(len(boxes), samples, events, time.perf_counter() - began)
