"""The fleet pages' read side on a migrated database, seeded through the collectors' own writers (and direct
inserts for folded 5-minute averages); every expectation is worked out by hand in the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine, session
from llm_console.db.fleet_tables import FleetSample
from llm_console.db.migrate import upgrade
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from llm_console.fleet import store
from llm_console.fleet.queries import (
    MatrixCell,
    deployment_fleet,
    fleet_overview,
    kv_cache,
    memory_trend,
    queue_depth,
)
from llm_console.fleet.series import bin_seconds, stretches
from llm_console.fleet.timeline import loading_timeline
from llm_console.fleet.types import (
    ContainerEventInfo,
    ContainerInfo,
    EngineReading,
    GpuInfo,
    GpuProcess,
    SourceStatus,
)

GiB = 1024**3
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a multiple of five minutes
HOST = "gpu-host-1"


def seed_deployments(engine: Engine) -> dict[str, int]:
    """Providers, two deployments ("alpha" behind two aliases, "beta" behind one) and their alias links."""
    with session(engine) as s:
        prov = Provider(name="local-vllm", kind="openai", api_base="http://127.0.0.1:8000/v1")
        s.add(prov)
        s.flush()
        alpha = Deployment(name="alpha", provider_id=prov.id or 0, model="meta-llama/Llama-3.1-8B")
        beta = Deployment(name="beta", provider_id=prov.id or 0, model="Qwen/Qwen2.5-7B")
        s.add_all([alpha, beta])
        s.flush()
        for name, deps in (("chat", [alpha]), ("chat-fast", [alpha, beta])):
            alias = ModelAlias(alias=name)
            s.add(alias)
            s.flush()
            s.add_all([AliasDeployment(alias_id=alias.id or 0, deployment_id=d.id or 0) for d in deps])
        s.commit()
        return {"alpha": alpha.id or 0, "beta": beta.id or 0}


def box(cid: str, name: str, dep: int | None, **kw: object) -> ContainerInfo:
    base = ContainerInfo(
        id=cid,
        name=name,
        image="vllm/vllm-openai:v0.8.5",
        version="v0.8.5",
        model="meta-llama/Llama-3.1-8B",
        status="running",
        health="healthy",
        started_at=T0 - timedelta(hours=3, minutes=12),
        finished_at=None,
        restart_count=0,
        exit_code=None,
        cpu_pct=150.0,
        mem_bytes=3 * GiB,
        mem_limit_bytes=None,
        ports=(8000,),
        deployment_id=dep,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def gpu(uuid: str, index: int, used: int, procs: tuple[GpuProcess, ...] = ()) -> GpuInfo:
    return GpuInfo(
        uuid=uuid,
        index=index,
        name="NVIDIA H100 80GB HBM3",
        memory_used_bytes=used,
        memory_total_bytes=80 * GiB,
        utilization_pct=55.0,
        memory_utilization_pct=30.0,
        temperature_c=61.0,
        power_w=310.0,
        power_limit_w=700.0,
        driver_version="550.54.15",
        cuda_version="12.4",
        processes=procs,
    )


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return seed_deployments(engine)


def test_the_overview_lists_sources_containers_gpus_engines_and_the_matrix(engine: Engine, ids: dict[str, int]) -> None:
    alpha, beta = ids["alpha"], ids["beta"]
    now = T0
    store.save_source(engine, SourceStatus("docker", HOST, True, "2 containers seen", {"version": "4.9.3"}), now)
    store.save_source(engine, SourceStatus("nvml", HOST, False, "No NVIDIA driver on this host"), now)
    a, b = box("a" * 64, "vllm-alpha", alpha), box("b" * 64, "vllm-beta", beta, status="exited", exit_code=1)
    c, d = box("c" * 64, "old-recent", None), box("d" * 64, "old-gone", None)
    store.save_containers(engine, HOST, [a, b, c, d], now - timedelta(hours=3))
    store.save_containers(engine, HOST, [a, b, c], now - timedelta(hours=2))  # d removed two hours ago
    store.save_containers(engine, HOST, [a, b], now - timedelta(minutes=30))  # c removed half an hour ago
    store.save_containers(engine, HOST, [a, b], now)
    gpus = [
        gpu(
            "GPU-0",
            0,
            30 * GiB,
            (
                GpuProcess(11, 10 * GiB, a.id, a.name, alpha, a.model),
                GpuProcess(12, 2 * GiB, a.id, a.name, alpha, a.model),
                GpuProcess(13, 1 * GiB, "", "", None, "mistral-7b"),
            ),
        ),
        gpu(
            "GPU-1",
            1,
            25 * GiB,
            (GpuProcess(21, 20 * GiB, b.id, b.name, beta, b.model), GpuProcess(22, None)),
        ),
    ]
    store.save_gpus(engine, HOST, gpus, now)
    store.save_container_gpus(engine, gpus)
    store.save_engines(
        engine, [EngineReading(alpha, True, running=3, waiting=1, kv_cache_usage=0.42, prefix_hit_rate=0.8)], now
    )
    store.save_engines(
        engine, [EngineReading(beta, True, running=0, waiting=0, kv_cache_usage=0.1)], now - timedelta(seconds=60)
    )
    store.save_engines(engine, [EngineReading(beta, False, error="connection refused")], now - timedelta(seconds=5))

    view = fleet_overview(engine, now + timedelta(seconds=5), stale_s=20)

    assert [(s.kind, s.ok, s.message) for s in view.sources] == [
        ("docker", True, "2 containers seen"),
        ("nvml", False, "No NVIDIA driver on this host"),
    ]
    assert view.sources[0].detail == {"version": "4.9.3"}
    names = [(r.name, r.status, r.removed) for r in view.containers]
    assert names == [("vllm-alpha", "running", False), ("vllm-beta", "exited", False), ("old-recent", "removed", True)]
    first = view.containers[0]
    assert first.deployment is not None and first.deployment.name == "alpha"
    assert first.deployment.aliases == ("chat", "chat-fast")
    assert first.gpu_uuids == ("GPU-0",) and first.started_at == T0 - timedelta(hours=3, minutes=12)

    assert [(g.uuid, g.index, g.memory_used_bytes) for g in view.gpus] == [
        ("GPU-0", 0, 30 * GiB),
        ("GPU-1", 1, 25 * GiB),
    ]
    proc = view.gpus[0].processes[0]
    assert (proc.pid, proc.container_name, proc.deployment.name if proc.deployment else "") == (
        11,
        "vllm-alpha",
        "alpha",
    )

    m = view.matrix
    assert [c.label for c in m.columns] == ["alpha", "beta", "mistral-7b", "Other processes"]
    assert [c.deployment_id for c in m.columns] == [alpha, beta, None, None]
    gpu0, gpu1 = (row.cells for row in m.rows)
    assert gpu0 == (MatrixCell(12 * GiB, 2), None, MatrixCell(1 * GiB, 1), None)
    assert gpu1 == (None, MatrixCell(20 * GiB, 1), None, MatrixCell(None, 1))

    by_name = {e.deployment.name: e for e in view.engines}
    assert [e.deployment.name for e in view.engines] == ["alpha", "beta"]
    assert by_name["alpha"].stale is False and by_name["alpha"].value("prefix_hit_rate") == pytest.approx(0.8)
    assert by_name["alpha"].value("running") == 3 and by_name["alpha"].deployment.model == "meta-llama/Llama-3.1-8B"
    # beta's last good scrape is 65 s old (the failed one 10 s ago keeps its figures): stale, and not ok.
    assert by_name["beta"].stale is True and by_name["beta"].ok is False
    assert by_name["beta"].error == "connection refused" and by_name["beta"].kv_cache_usage == pytest.approx(0.1)


def test_an_empty_fleet_reads_as_empty(engine: Engine) -> None:
    view = fleet_overview(engine, T0)
    assert (view.sources, view.containers, view.gpus, view.engines) == ((), (), (), ())
    assert view.matrix.columns == () and view.matrix.rows == ()


def test_containers_and_engines_of_a_deleted_deployment_say_so(engine: Engine, ids: dict[str, int]) -> None:
    store.save_containers(engine, HOST, [box("e" * 64, "orphan", 999)], T0)
    store.save_engines(engine, [EngineReading(999, True, running=1)], T0)
    view = fleet_overview(engine, T0)
    [row] = view.containers
    assert row.deployment is not None and (row.deployment.name, row.deployment.exists) == ("#999 (deleted)", False)
    assert view.engines[0].deployment.name == "#999 (deleted)"


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Engine]:
    """The series are averaged in SQL with a per-dialect epoch: check both databases the project supports."""
    if request.param == "sqlite":
        yield engine
        return
    url = request.getfixturevalue("postgres_database")
    upgrade(url)
    pg = make_engine(url)
    yield pg
    pg.dispose()


def sample(engine: Engine, kind: str, subject: str, at: datetime, bucket_s: int = 0, **values: float) -> None:
    dep = int(subject) if kind == "engine" else None
    row = {"kind": kind, "subject": subject, "deployment_id": dep, "at": at, "bucket_s": bucket_s, "values": values}
    with session(engine) as s:
        s.execute(insert(FleetSample), [row])
        s.commit()


def test_memory_trend_reads_averages_where_they_are_made_and_raw_points_after(any_engine: Engine) -> None:
    engine = any_engine
    store.save_gpus(engine, HOST, [gpu("GPU-0", 0, 0), gpu("GPU-1", 1, 0)], T0 - timedelta(hours=2))
    for at, used in (
        (T0 - timedelta(seconds=1), 99),  # before the range
        (T0 + timedelta(seconds=10), 10),  # these three are averaged below: read from the averages
        (T0 + timedelta(minutes=2), 20),
        (T0 + timedelta(minutes=5, seconds=30), 40),
        (T0 + timedelta(minutes=12), 50),  # after the averages made so far: read raw
        (T0 + timedelta(minutes=13), 60),
        (T0 + timedelta(hours=1), 99),  # the range's end is exclusive
    ):
        sample(engine, "gpu", "GPU-0", at, memory_used_bytes=used * GiB, memory_total_bytes=80 * GiB)
    # 5-minute averages up to 10:10, set apart from the raw points they stand for, so the test sees which is read.
    sample(engine, "gpu", "GPU-0", T0, 300, memory_used_bytes=12 * GiB, memory_total_bytes=80 * GiB, n=3)
    sample(engine, "gpu", "GPU-0", T0 + timedelta(minutes=5), 300, memory_used_bytes=44 * GiB, n=1)
    sample(engine, "gpu", "GPU-1", T0 + timedelta(minutes=5), 300, memory_used_bytes=5 * GiB, n=30)
    sample(engine, "gpu", "GPU-1", T0 + timedelta(minutes=11), memory_used_bytes=7 * GiB, memory_total_bytes=None)  # type: ignore[arg-type]

    trend = memory_trend(engine, T0, T0 + timedelta(hours=1), max_points=13)

    assert trend.bin_s == 300  # 3600 s over 12 steps: whole 5-minute buckets, read from their averages
    gpu0, gpu1 = trend.gpus
    assert gpu0.gpu.uuid == "GPU-0" and gpu0.gpu.index == 0
    got = [(p.at, p.values["memory_used_bytes"]) for p in gpu0.points]
    assert got == [
        (T0, pytest.approx(12 * GiB)),
        (T0 + timedelta(minutes=5), pytest.approx(44 * GiB)),
        (T0 + timedelta(minutes=10), pytest.approx(55 * GiB)),  # (50 + 60) / 2, raw
    ]
    assert gpu0.points[1].values["memory_total_bytes"] is None  # that average had none
    assert gpu0.points[2].values["memory_total_bytes"] == pytest.approx(80 * GiB)
    assert [(p.at, p.values) for p in gpu1.points] == [
        (T0 + timedelta(minutes=5), {"memory_used_bytes": pytest.approx(5 * GiB), "memory_total_bytes": None}),
        (T0 + timedelta(minutes=10), {"memory_used_bytes": pytest.approx(7 * GiB), "memory_total_bytes": None}),
    ]


def test_each_stretch_of_a_range_is_read_from_one_tier(any_engine: Engine) -> None:
    h = timedelta(hours=1)
    sample(any_engine, "gpu", "GPU-0", T0 - 2 * h, 3600, memory_used_bytes=1, n=360)  # hours made until 09:00
    sample(any_engine, "gpu", "GPU-0", T0 + timedelta(minutes=5), 300, memory_used_bytes=1, n=30)  # until 10:10
    sample(any_engine, "container", "c", T0 - h + timedelta(seconds=3), up=1)  # raw kept from 09:00:03
    start, end = T0 - 4 * h, T0 + h
    with any_engine.connect() as conn:
        assert stretches(conn, start, end, 3600) == [
            (3600, start, T0 - h),
            (300, T0 - h, T0 + timedelta(minutes=10)),
            (0, T0 + timedelta(minutes=10), end),
        ]
        assert stretches(conn, start, end, 600) == [
            (300, start, T0 + timedelta(minutes=10)),
            (0, T0 + timedelta(minutes=10), end),
        ]
        # Bins under 5 minutes: raw points from the 5-minute bucket where they start, averages before.
        assert stretches(conn, start, end, 31) == [(300, start, T0 - h), (0, T0 - h, end)]
        early = T0 - timedelta(hours=1, minutes=30)
        assert stretches(conn, start, early, 7200) == [(3600, start, early), (300, early, early), (0, early, early)]


def test_bins_of_5_minutes_or_more_are_whole_buckets() -> None:
    assert bin_seconds(T0, T0 + timedelta(hours=1), 120) == 31  # raw points
    assert bin_seconds(T0, T0 + timedelta(hours=10), 120) == 600  # 303 s, rounded up to whole 5 minutes
    assert bin_seconds(T0, T0 + timedelta(hours=24), 120) == 900  # 727 s: 96 points of 15 minutes
    assert bin_seconds(T0, T0 + timedelta(days=7), 120) == 7200  # 5083 s: 84 points of 2 hours


def test_memory_trend_keeps_raw_points_of_a_short_range_and_bounds_a_long_one(engine: Engine) -> None:
    store.save_gpus(engine, HOST, [gpu("GPU-0", 0, 0)], T0 - timedelta(hours=2))
    for i in range(360):  # one point every 10 s for an hour, memory used = i GiB
        sample(engine, "gpu", "GPU-0", T0 + timedelta(seconds=10 * i), memory_used_bytes=i * GiB)
    short = memory_trend(engine, T0, T0 + timedelta(minutes=10), max_points=120)
    assert short.bin_s == 6  # 600 s over 119 steps, rounded up: each 10-second point keeps a bin of its own
    assert [p.values["memory_used_bytes"] for p in short.gpus[0].points] == [i * GiB for i in range(60)]
    long = memory_trend(engine, T0, T0 + timedelta(hours=1), max_points=120)
    assert long.bin_s == bin_seconds(T0, T0 + timedelta(hours=1), 120) == 31
    points = long.gpus[0].points
    assert len(points) <= 120
    # Bins of 31 s aligned to the epoch: T0 is 16 s into its bin, so the first bin holds i = 0, 1 (10:00:00 and
    # 10:00:10, mean 0.5 GiB), the second (10:00:15-10:00:45) i = 2, 3, 4 (mean 3 GiB).
    assert points[0].at == T0 - timedelta(seconds=16)
    assert points[0].values["memory_used_bytes"] == pytest.approx(0.5 * GiB)
    assert points[1].values["memory_used_bytes"] == pytest.approx(3 * GiB)
    assert len(points) == 117  # the last point, 10:59:50, is (16 + 3590) // 31 = 116 bins after the first


def event(
    cid: str, name: str, at: datetime, action: str, detail: str = "", dep: int | None = None
) -> ContainerEventInfo:
    return ContainerEventInfo(cid, name, at, action, detail, dep)


def test_deployment_fleet_builds_the_loading_timeline_and_engine_series(engine: Engine, ids: dict[str, int]) -> None:
    alpha = ids["alpha"]
    one, two, other = "1" * 64, "2" * 64, "3" * 64
    store.save_containers(
        engine,
        HOST,
        [
            box(one, "alpha-0", alpha, started_at=T0 + timedelta(minutes=31)),
            box(two, "alpha-1", alpha),
            box(other, "beta-0", ids["beta"]),
        ],
        T0 + timedelta(minutes=40),
    )
    m = timedelta(minutes=1)
    store.save_events(
        engine,
        [
            event(two, "alpha-1", T0 - 40 * m, "start", dep=alpha),  # before the range: pairs with its ready
            event(two, "alpha-1", T0 + 5 * m, "ready", "serving chat", dep=alpha),
            event(one, "alpha-0", T0 + timedelta(seconds=5), "start", dep=alpha),
            event(one, "alpha-0", T0 + timedelta(seconds=107), "ready", dep=alpha),
            event(one, "alpha-0", T0 + 20 * m, "kill", "signal 15"),  # no deployment on the event: matched by id
            event(one, "alpha-0", T0 + 20 * m + timedelta(seconds=1), "die", "exit code 143"),
            event(one, "alpha-0", T0 + 30 * m, "start", dep=alpha),
            event(one, "alpha-0", T0 + 30 * m + timedelta(seconds=30), "die", "exit code 1", dep=alpha),
            event(one, "alpha-0", T0 + 31 * m, "start", dep=alpha),
            event(other, "beta-0", T0 + 2 * m, "start", dep=ids["beta"]),
        ],
    )
    for i, (running, kv) in enumerate(((2, 0.2), (4, 0.4), (6, 0.9))):
        at = T0 + timedelta(minutes=i)
        store.save_engines(engine, [EngineReading(alpha, True, running=running, waiting=1, kv_cache_usage=kv)], at)

    now = T0 + timedelta(minutes=33)
    view = deployment_fleet(engine, alpha, T0, T0 + timedelta(hours=1), now=now, max_points=13)

    assert view.deployment is not None and view.deployment.name == "alpha"
    assert view.deployment.aliases == ("chat", "chat-fast") and view.deployment.provider == "local-vllm"
    assert [c.name for c in view.containers] == ["alpha-0", "alpha-1"]
    assert [(t.container_name, t.text, t.duration_s) for t in view.timeline] == [
        ("alpha-0", "Started, loading the model", None),
        ("alpha-0", "Model loaded in 102 s", 102.0),
        ("alpha-1", "Model loaded in 2700 s", 2700.0),
        ("alpha-0", "Killed (signal 15)", None),
        ("alpha-0", "Exited (exit code 143)", None),
        ("alpha-0", "Started, loading the model", None),
        ("alpha-0", "Crashed while loading, after 30 s (exit code 1)", 30.0),
        ("alpha-0", "Started, loading the model", None),
        ("alpha-0", "Loading the model (120 s so far)", 120.0),
    ]
    assert [t.severity for t in view.timeline if t.action in ("ready", "die", "loading")] == [
        "ok",
        "ok",
        "info",
        "error",
        "warning",
    ]
    assert view.engine is not None and view.engine.value("kv_cache_usage") == pytest.approx(0.9)
    assert view.engine.stale is True  # its last scrape was at 10:02, 31 minutes before `now`
    [point] = view.series  # three raw scrapes in the first five-minute bin
    assert point.at == T0
    assert point.values["running"] == pytest.approx(4.0) and point.values["kv_cache_usage"] == pytest.approx(0.5)
    assert point.values["ttft_p50_ms"] is None


def test_deployment_fleet_of_an_unknown_id_has_no_deployment(engine: Engine) -> None:
    view = deployment_fleet(engine, 4242, T0, T0 + timedelta(hours=1))
    assert view.deployment is None and view.engine is None and view.containers == () and view.timeline == ()


def test_kv_cache_lists_each_worker_with_its_usage_and_hit_rate(any_engine: Engine) -> None:
    engine = any_engine
    ids = seed_deployments(engine)
    alpha, beta = ids["alpha"], ids["beta"]
    for minute, (kv_a, hit_a) in enumerate(((0.5, 0.2), (0.7, 0.4))):
        at = T0 + timedelta(minutes=5 * minute)
        store.save_engines(
            engine,
            [
                EngineReading(alpha, True, kv_cache_usage=kv_a, prefix_hit_rate=hit_a),
                EngineReading(beta, True, kv_cache_usage=0.05),
            ],
            at,
        )
    view = kv_cache(engine, T0, T0 + timedelta(hours=1), now=T0 + timedelta(minutes=5, seconds=3), max_points=13)
    assert [w.engine.deployment.name for w in view.workers] == ["alpha", "beta"]
    a, b = view.workers
    assert a.engine.kv_cache_usage == pytest.approx(0.7) and a.engine.value("prefix_hit_rate") == pytest.approx(0.4)
    assert a.engine.stale is False
    assert [(p.at, p.values["kv_cache_usage"], p.values["prefix_hit_rate"]) for p in a.points] == [
        (T0, pytest.approx(0.5), pytest.approx(0.2)),
        (T0 + timedelta(minutes=5), pytest.approx(0.7), pytest.approx(0.4)),
    ]
    assert [p.values["prefix_hit_rate"] for p in b.points] == [None, None]


def test_queue_depth_reads_waiting_and_running_per_worker_and_narrows_to_an_alias(any_engine: Engine) -> None:
    engine = any_engine
    ids = seed_deployments(engine)
    alpha, beta = ids["alpha"], ids["beta"]
    for step, (wait_a, wait_b) in enumerate(((4.0, 0.0), (8.0, 1.0), (2.0, 3.0))):
        readings = [EngineReading(alpha, True, running=16.0, waiting=wait_a), EngineReading(beta, True, waiting=wait_b)]
        store.save_engines(engine, readings, T0 + timedelta(minutes=3 * step))
    end = T0 + timedelta(hours=1)
    view = queue_depth(engine, T0, end, now=T0 + timedelta(minutes=6, seconds=5), max_points=13)  # 5-minute bins
    a, b = view.workers
    assert (a.engine.deployment.name, a.engine.waiting, a.engine.running) == ("alpha", 2.0, 16.0)
    # raw points binned by 5 minutes: the first bin holds 4 and 8, the second 2
    assert [(p.at, p.values["waiting"], p.values["running"]) for p in a.points] == [
        (T0, pytest.approx(6.0), pytest.approx(16.0)),
        (T0 + timedelta(minutes=5), pytest.approx(2.0), pytest.approx(16.0)),
    ]
    assert [p.values["waiting"] for p in b.points] == [pytest.approx(0.5), pytest.approx(3.0)]
    assert [p.values["running"] for p in b.points] == [None, None]
    # "chat" is served by alpha only, "chat-fast" by both; an alias nobody serves has no worker
    assert [w.engine.deployment.name for w in queue_depth(engine, T0, end, alias="chat").workers] == ["alpha"]
    assert len(queue_depth(engine, T0, end, alias="chat-fast").workers) == 2
    assert queue_depth(engine, T0, end, alias="nobody").workers == ()


def test_a_load_whose_ready_event_was_missed_is_timed_by_the_engines_first_answer(
    engine: Engine, ids: dict[str, int]
) -> None:
    alpha, cid = ids["alpha"], "9" * 64
    start = T0 + timedelta(minutes=1)
    store.save_containers(engine, HOST, [box(cid, "alpha-9", alpha, started_at=start)], start)
    store.save_events(engine, [event(cid, "alpha-9", start, "start", dep=alpha)])
    now = T0 + timedelta(minutes=3)
    [*_, loading] = deployment_fleet(engine, alpha, T0, T0 + timedelta(hours=1), now=now).timeline
    assert (loading.action, loading.text, loading.severity) == (
        "loading",
        "Loading the model (120 s so far)",
        "warning",
    )
    # The engine answered before the start (another server, say) and then 9 s after it.
    store.save_engines(engine, [EngineReading(alpha, True, running=0)], T0)
    store.save_engines(engine, [EngineReading(alpha, True, running=0)], start + timedelta(seconds=9))
    store.save_engines(engine, [EngineReading(alpha, True, running=0)], start + timedelta(seconds=19))
    [*_, answered] = deployment_fleet(engine, alpha, T0, T0 + timedelta(hours=1), now=now).timeline
    assert (answered.action, answered.at, answered.duration_s, answered.severity) == (
        "answered",
        start + timedelta(seconds=9),
        9.0,
        "ok",
    )
    assert answered.text == "Engine answered 9 s after this start (no ready event was recorded)"
    events = [event(cid, "alpha-9", start, "start")]
    stopped = loading_timeline(events, {cid: False}, now, T0)
    assert [t.action for t in stopped] == ["start"]  # a stopped container is not loading
