"""The fleet tables as the collectors write them: last-seen upserts, events, folding, pruning, trace links."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from llm_console.db.engine import make_engine, session
from llm_console.db.fleet_tables import FleetContainer, FleetContainerEvent, FleetEngine, FleetSample, FleetUptime
from llm_console.db.migrate import upgrade
from llm_console.db.queries.filters import utc
from llm_console.fleet import store
from llm_console.fleet.routing_signals import fresh_engine_rows
from llm_console.fleet.serving import served_by
from llm_console.fleet.types import ContainerEventInfo, ContainerInfo, EngineReading, GpuInfo, GpuProcess
from llm_console.settings import Settings

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'fleet.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def container(cid: str, **over: object) -> ContainerInfo:
    base: dict[str, object] = {
        "id": cid,
        "name": f"vllm-{cid}",
        "image": "vllm/vllm-openai:v0.8.5",
        "version": "v0.8.5",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "status": "running",
        "health": "healthy",
        "started_at": T0 - timedelta(hours=1),
        "finished_at": None,
        "restart_count": 0,
        "exit_code": None,
        "cpu_pct": 12.5,
        "mem_bytes": 2 << 30,
        "mem_limit_bytes": 8 << 30,
        "ports": (8000,),
        "deployment_id": 1,
    }
    base.update(over)
    return ContainerInfo(**base)  # type: ignore[arg-type]


def gpu(uuid: str, index: int, procs: tuple[GpuProcess, ...] = ()) -> GpuInfo:
    return GpuInfo(
        uuid=uuid,
        index=index,
        name="NVIDIA H100 80GB HBM3",
        memory_used_bytes=60 << 30,
        memory_total_bytes=80 << 30,
        utilization_pct=87.0,
        memory_utilization_pct=40.0,
        temperature_c=61.0,
        power_w=512.3,
        power_limit_w=700.0,
        driver_version="550.54.15",
        cuda_version="12.4",
        processes=procs,
    )


def test_containers_upsert_and_removal(engine: Engine) -> None:
    store.save_containers(engine, "gpu-1", [container("a"), container("b", deployment_id=2)], T0)
    store.save_containers(engine, "gpu-1", [container("a", status="exited", exit_code=137)], T0 + timedelta(seconds=10))
    store.save_containers(engine, "gpu-2", [container("c", deployment_id=3)], T0 + timedelta(seconds=10))
    with session(engine) as s:
        rows = {r.id: r for r in s.exec(select(FleetContainer)).all()}
        samples = s.exec(select(FleetSample).where(FleetSample.kind == "container")).all()
    assert rows["a"].status == "exited" and rows["a"].exit_code == 137 and rows["a"].removed_at is None
    assert rows["b"].status == "removed" and utc(rows["b"].removed_at) == T0 + timedelta(seconds=10)  # type: ignore[arg-type]
    assert rows["c"].status == "running"  # another host's listing does not remove gpu-1's containers or vice versa
    assert utc(rows["a"].first_seen) == T0
    ups = sorted((s.subject, s.values["up"]) for s in samples)
    assert ups == [("a", 0.0), ("a", 1.0), ("b", 1.0), ("c", 1.0)]


def test_events_are_stored_once(engine: Engine) -> None:
    e1 = ContainerEventInfo("a", "vllm-a", T0, "start", "", 1)
    e2 = ContainerEventInfo("a", "vllm-a", T0 + timedelta(seconds=5), "die", "exitCode=1", 1)
    assert store.save_events(engine, [e1, e2]) == 2
    assert store.save_events(engine, [e2, e1]) == 0  # the next poll overlaps its edge
    with session(engine) as s:
        actions = [e.action for e in s.exec(select(FleetContainerEvent).order_by(col(FleetContainerEvent.at))).all()]
    assert actions == ["start", "die"]


def test_ready_marked_once_per_observed_start(engine: Engine) -> None:
    started = T0 - timedelta(seconds=42)
    store.save_containers(engine, "h", [container("a", started_at=started), container("old", deployment_id=1)], T0)
    store.save_events(engine, [ContainerEventInfo("a", "vllm-a", started + timedelta(milliseconds=3), "start", "", 1)])
    assert store.mark_ready(engine, {1: ("llama",)}, T0) == 1  # "old" was running when first seen: no start seen
    assert store.mark_ready(engine, {1: ("llama",)}, T0 + timedelta(seconds=5)) == 0  # same start: already ready
    restarted = T0 + timedelta(minutes=1)
    store.save_containers(engine, "h", [container("a", started_at=restarted, restart_count=1)], restarted)
    assert store.mark_ready(engine, {1: ("llama",)}, restarted + timedelta(seconds=30)) == 0  # start not seen yet
    store.save_events(engine, [ContainerEventInfo("a", "vllm-a", restarted, "restart", "", 1)])
    assert store.mark_ready(engine, {1: ("llama",)}, restarted + timedelta(seconds=31)) == 1
    assert store.mark_ready(engine, {}, restarted) == 0 and store.mark_ready(engine, {2: ()}, restarted) == 0
    with session(engine) as s:
        ready = s.exec(select(FleetContainerEvent).where(FleetContainerEvent.action == "ready")).all()
    assert sorted((e.container_id, e.detail) for e in ready) == [
        ("a", "serving llama after 31 s"),
        ("a", "serving llama after 42 s"),
    ]


def test_downsample_averages_complete_buckets_into_5_minute_and_hour_points_and_prunes(engine: Engine) -> None:
    settings = Settings(fleet_raw_retention_hours=1, fleet_retention_days=1)
    now = T0 + timedelta(hours=3)  # 13:00: buckets complete a minute before, so up to 12:55, hours up to 12:00
    # Two raw points in the 10:00 bucket, one in 10:05, a recent one (12:50), one past retention.
    store.save_engines(engine, [EngineReading(7, True, waiting=2.0, running=4.0, kv_cache_usage=0.5)], T0)
    store.save_engines(
        engine, [EngineReading(7, True, waiting=4.0, running=None, kv_cache_usage=0.7)], T0 + timedelta(minutes=2)
    )
    store.save_engines(engine, [EngineReading(7, True, waiting=9.0)], T0 + timedelta(minutes=6))
    store.save_engines(engine, [EngineReading(7, True, waiting=1.0)], now - timedelta(minutes=10))
    store.save_engines(engine, [EngineReading(7, True, waiting=100.0)], now - timedelta(days=2))
    store.save_events(engine, [ContainerEventInfo("old", "old", now - timedelta(days=2), "start")])
    folded, pruned = store.downsample(engine, settings, now)
    assert folded == 5  # every raw point in a complete bucket, the recent and the 2-day-old one included
    assert pruned == 3  # the 2-day-old 5-minute and hour points, and the event
    with session(engine) as s:
        points = s.exec(select(FleetSample).order_by(col(FleetSample.at), col(FleetSample.bucket_s))).all()
        events = s.exec(select(FleetContainerEvent)).all()
    got = [(utc(p.at), p.bucket_s, p.values.get("waiting"), p.values.get("running"), p.values.get("n")) for p in points]
    assert got == [
        (T0, 300, 3.0, 4.0, 2),  # mean of 2 and 4; running only reported once
        (T0, 3600, 5.0, 4.0, 3),  # (3 x 2 + 9 x 1) / 3; running from the first bucket only
        (T0 + timedelta(minutes=5), 300, 9.0, None, 1),
        (now - timedelta(minutes=10), 0, 1.0, None, None),  # raw for an hour, beside its average
        (now - timedelta(minutes=10), 300, 1.0, None, 1),
    ]
    assert points[0].values["kv_cache_usage"] == pytest.approx(0.6)
    assert points[1].values["kv_cache_usage"] == pytest.approx(0.6)  # weighed by the 2 points it stands for
    assert events == []
    assert store.downsample(engine, settings, now) == (0, 0)  # averaging again changes nothing
    later = now + timedelta(hours=1)  # 12:50's hour is complete now, and its raw point past the raw retention
    assert store.downsample(engine, settings, later) == (0, 0)
    with session(engine) as s:
        points = s.exec(select(FleetSample).where(col(FleetSample.at) >= now - timedelta(hours=1))).all()
    assert sorted((p.bucket_s, p.values.get("waiting")) for p in points) == [(300, 1.0), (3600, 1.0)]


def test_hours_up_split_at_the_hour_and_a_gap_counts_at_most_twice_the_interval(engine: Engine) -> None:
    def round_(at: datetime, status: str = "running") -> None:
        store.save_containers(engine, "h", [container("a", status=status)], at, interval_s=10.0)

    eleven = T0 + timedelta(hours=1)
    round_(eleven - timedelta(seconds=5))
    round_(eleven + timedelta(seconds=5))  # [10:59:55, 11:00:05): 5 s in each hour
    round_(eleven + timedelta(seconds=65))  # a minute later: [11:00:05, 11:00:25) only
    round_(eleven + timedelta(seconds=75), "exited")  # running at the round before: [11:01:05, 11:01:15)
    round_(eleven + timedelta(seconds=85), "exited")  # nothing
    store.save_containers(engine, "h2", [container("b", deployment_id=2, status="exited")], eleven, interval_s=10.0)
    with session(engine) as s:
        rows = s.exec(select(FleetUptime).order_by(col(FleetUptime.deployment_id), col(FleetUptime.hour))).all()
    got = [(r.deployment_id, utc(r.hour), r.up_s, r.up_to_s) for r in rows]
    assert got == [
        (1, T0, 5.0, 3600.0),
        (1, eleven, 35.0, 75.0),
        (2, eleven, 0.0, 0.0),  # seen, never running: watched, not assumed on
    ]


def test_failed_scrape_keeps_last_good_figures(engine: Engine) -> None:
    good = EngineReading(3, True, waiting=2.0, running=5.0, kv_cache_usage=0.4, models=("m",))
    store.save_engines(engine, [good], T0)
    store.save_engines(engine, [EngineReading(3, False, error="connection refused")], T0 + timedelta(seconds=5))
    with session(engine) as s:
        row = s.get(FleetEngine, 3)
    assert row is not None and row.ok is False and row.error == "connection refused"
    assert (row.waiting, row.running, row.kv_cache_usage, row.values["models"]) == (2.0, 5.0, 0.4, ["m"])
    assert utc(row.last_ok_at) == T0  # type: ignore[arg-type]


def test_router_reads_only_fresh_successful_scrapes(engine: Engine) -> None:
    now = datetime.now(UTC)
    store.save_engines(engine, [EngineReading(1, True, waiting=3.0, running=1.0, kv_cache_usage=0.2)], now)
    store.save_engines(engine, [EngineReading(2, True, waiting=0.0)], now - timedelta(seconds=60))
    store.save_engines(engine, [EngineReading(4, False, error="x")], now)
    rows = fresh_engine_rows(engine, stale_after_s=20)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(1, 3.0, 1.0, 0.2)]
    assert 0 <= rows[0][4] < 5


def test_served_by_names_the_container_and_its_gpus(engine: Engine) -> None:
    store.save_containers(engine, "gpu-box", [container("abc123def4567890", deployment_id=5)], T0)
    proc = GpuProcess(pid=4242, used_bytes=30 << 30, container_id="abc123def4567890", deployment_id=5)
    gpus = [gpu("GPU-1111", 0, (proc,)), gpu("GPU-2222", 1, (proc,)), gpu("GPU-3333", 2)]
    store.save_gpus(engine, "gpu-box", gpus, T0)
    store.save_container_gpus(engine, gpus)
    found = served_by(engine, 5, T0 + timedelta(minutes=1))
    assert found is not None
    assert (found.container_name, found.host) == ("vllm-abc123def4567890", "gpu-box")
    assert found.gpus == ("GPU 0 · NVIDIA H100 80GB HBM3 (gpu-box)", "GPU 1 · NVIDIA H100 80GB HBM3 (gpu-box)")
    assert served_by(engine, 5, T0 - timedelta(hours=1)) is None  # the fleet did not know it yet
    assert served_by(engine, 6, T0) is None and served_by(engine, None, T0) is None
    store.save_containers(engine, "gpu-box", [], T0 + timedelta(hours=1))  # removed
    assert served_by(engine, 5, T0 + timedelta(minutes=30)) is not None
    assert served_by(engine, 5, T0 + timedelta(hours=2)) is None
