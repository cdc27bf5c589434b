"""The fleet pages' display values, from query results built by hand: durations, sizes, badges, banners that
explain empty tables, the matrix text and charts that line several GPUs up by time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from llm_console import routes
from llm_console.fleet.queries import (
    ContainerRow,
    DeploymentFleet,
    DeploymentRef,
    EngineRow,
    EngineWorker,
    EngineWorkers,
    FleetOverview,
    GpuMatrix,
    GpuProcessRow,
    GpuRow,
    GpuTrend,
    MatrixCell,
    MatrixColumn,
    MatrixRow,
    MemoryTrend,
    SourceRow,
)
from llm_console.fleet.series import Point
from llm_console.fleet.timeline import TimelineEntry
from llm_console.presenters.fleet import (
    SLOTS,
    banner,
    container_row,
    deployment_view,
    duration,
    fleet_view,
    kv_view,
    matrix_cell,
    queue_view,
)

GiB = 1024**3
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALPHA = DeploymentRef(7, "alpha", "meta-llama/Llama-3.1-8B", "local-vllm", ("chat",))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        *[(0, "0 s"), (45.9, "45 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (11520, "3 h 12 min")],
        *[(86400 * 2 + 3600 * 4 + 59, "2 d 4 h"), (86400, "1 d"), (-5, "0 s")],
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def container(**kw: object) -> ContainerRow:
    base: dict[str, object] = dict(
        id="a" * 64,
        host="h1",
        name="vllm-alpha",
        image="vllm/vllm-openai",
        version="v0.8.5",
        model="meta-llama/Llama-3.1-8B",
        deployment=ALPHA,
        status="running",
        health="healthy",
        started_at=NOW - timedelta(hours=3, minutes=12),
        finished_at=None,
        restart_count=2,
        exit_code=None,
        cpu_pct=153.25,
        mem_bytes=3 * GiB + GiB // 2,
        mem_limit_bytes=None,
        gpu_uuids=("GPU-0", "GPU-1"),
        seen_at=NOW,
        removed_at=None,
    )
    return ContainerRow(**(base | kw))  # type: ignore[arg-type]


def test_a_container_row_says_uptime_restarts_memory_and_links_its_deployment() -> None:
    row = container_row(container(), NOW)
    assert (row["status"], row["status_color"], row["health"], row["health_color"]) == (
        "running",
        "green",
        "healthy",
        "green",
    )
    assert (row["uptime"], row["restarts"], row["cpu"], row["memory"], row["gpus"]) == (
        "3 h 12 min",
        "2",
        "153.2%",
        "3.5 GiB",
        "2",
    )
    assert row["href"] == f"{routes.FLEET_DEPLOYMENT}?deployment=7" and row["id"] == "a" * 12
    exited = container_row(
        container(status="exited", exit_code=137, finished_at=NOW - timedelta(minutes=5), health=""), NOW
    )
    assert (exited["status"], exited["status_color"], exited["uptime"]) == ("exited (137)", "red", "exited 5 min ago")
    assert (exited["health"], exited["health_color"]) == ("no check", "gray")
    gone = container_row(
        container(status="removed", removed_at=NOW - timedelta(minutes=20), deployment=None, mem_bytes=None), NOW
    )
    assert (gone["uptime"], gone["deployment"], gone["href"], gone["memory"]) == ("removed 20 min ago", "—", "", "—")
    small = container_row(container(mem_bytes=42 * 1024**2, mem_limit_bytes=2 * GiB), NOW)
    assert small["memory"] == "42 MiB / 2.0 GiB"


def test_banners_name_a_missing_or_failing_collector_in_plain_words() -> None:
    no_driver = SourceRow(
        "nvml@h1", "nvml", "h1", False, "No NVIDIA driver on this host", {}, NOW - timedelta(seconds=4)
    )
    [nvml] = banner("nvml", [no_driver], NOW)
    assert nvml["level"] == "warning" and nvml["message"] == "No NVIDIA driver on this host"
    assert nvml["title"] == "GPUs (NVML) on h1" and nvml["checked"] == "checked 4 s ago"
    [docker] = banner("docker", [], NOW)
    assert docker["level"] == "warning" and "LLMC_FLEET_DOCKER_URL" in docker["message"]
    up = SourceRow("docker@h1", "docker", "h1", True, "2 containers seen", {"version": "4.9.3"}, NOW)
    assert banner("docker", [up], NOW)[0]["message"] == "2 containers seen (version 4.9.3)"
    down = SourceRow("docker@h1", "docker", "h1", False, "Docker API unreachable: refused", {}, NOW)
    assert banner("docker", [down], NOW)[0]["level"] == "error"


def test_matrix_cells_say_gib_nothing_or_an_unknown_size() -> None:
    assert matrix_cell(MatrixCell(12 * GiB, 2)) == "12.0 GiB"
    assert matrix_cell(None) == "—"
    assert matrix_cell(MatrixCell(None, 1)) == "1 process(es), size unknown"


def gpu(uuid: str, index: int, host: str = "h1") -> GpuRow:
    proc = GpuProcessRow(11, 12 * GiB, "a" * 64, "vllm-alpha", ALPHA, ALPHA.model)
    return GpuRow(
        uuid, host, index, "H100", 30 * GiB, 80 * GiB, 55.0, 30.0, 61.0, 310.0, 700.0, "550.54", "12.4", (proc,), NOW
    )


def test_the_fleet_view_fills_cards_matrix_and_a_chart_aligned_by_time() -> None:
    g0, g1 = gpu("GPU-0", 0), gpu("GPU-1", 1)
    col = MatrixColumn("deployment:7", "alpha", 7)
    overview = FleetOverview(
        NOW,
        (SourceRow("nvml@h1", "nvml", "h1", True, "2 GPUs", {"driver": "550.54"}, NOW),),
        (container(),),
        (g0, g1),
        (),
        GpuMatrix((col,), (MatrixRow(g0, (MatrixCell(12 * GiB, 1),)), MatrixRow(g1, (None,)))),
    )
    t1, t2 = NOW - timedelta(minutes=10), NOW - timedelta(minutes=5)
    trend = MemoryTrend(
        NOW - timedelta(hours=1),
        NOW,
        300,
        (
            GpuTrend(g0, (Point(t1, {"memory_used_bytes": 10 * GiB}), Point(t2, {"memory_used_bytes": 11.5 * GiB}))),
            GpuTrend(g1, (Point(t2, {"memory_used_bytes": 2 * GiB}),)),
        ),
    )
    view = fleet_view(overview, trend)
    assert view.matrix_columns == ["alpha"] and view.matrix_rows == [["GPU 0", "12.0 GiB"], ["GPU 1", "—"]]
    assert view.trend == [{"t": "11:50", "s0": 10.0}, {"t": "11:55", "s0": 11.5, "s1": 2.0}]
    assert view.trend_names == ["GPU 0", "GPU 1", *[""] * (SLOTS - 2)]
    card = view.gpus[0]
    assert (card["memory"], card["memory_pct"], card["power"], card["cuda"]) == (
        "30.0 GiB / 80.0 GiB",
        38,
        "310 W / 700 W",
        "12.4",
    )
    assert view.gpu_processes[0] == [
        {"pid": "11", "container": "vllm-alpha", "serves": "alpha · meta-llama/Llama-3.1-8B", "memory": "12.0 GiB"}
    ]
    assert [b["kind"] for b in view.banners] == ["docker", "nvml", "engines"]  # docker and engines: not reported
    assert view.cards[0]["value"] == "1 / 1" and view.containers_empty == "No model-serving containers seen yet."


def test_without_a_gpu_driver_the_empty_gpu_section_says_why() -> None:
    src = SourceRow("nvml@h1", "nvml", "h1", False, "No NVIDIA driver on this host", {}, NOW)
    empty = FleetOverview(NOW, (src,), (), (), (), GpuMatrix((), ()))
    view = fleet_view(empty, MemoryTrend(NOW - timedelta(hours=1), NOW, 30, ()))
    assert view.gpus_empty == "No GPUs: No NVIDIA driver on this host"
    assert view.trend == [] and view.matrix_rows == [] and view.gpus == []


def engine(**kw: object) -> EngineRow:
    base: dict[str, object] = dict(
        deployment=ALPHA,
        ok=True,
        error=None,
        scraped_at=NOW - timedelta(seconds=3),
        last_ok_at=NOW - timedelta(seconds=3),
        stale=False,
        running=3.0,
        waiting=1.0,
        kv_cache_usage=0.425,
        values={"prefix_hit_rate": 0.8, "ttft_p50_ms": 1250.0, "generation_tps": None},
    )
    return EngineRow(**(base | kw))  # type: ignore[arg-type]


def test_a_deployment_view_has_cards_charts_and_the_timeline_newest_first() -> None:
    values = {"running": 2.0, "kv_cache_usage": 0.5, "ttft_p50_ms": None, "batch_tokens_mean": 212.46}
    series = (Point(NOW - timedelta(minutes=5), values),)
    timeline = (
        TimelineEntry(
            NOW - timedelta(minutes=9), "a" * 64, "vllm-alpha", "start", "Started, loading the model", "info"
        ),
        TimelineEntry(NOW - timedelta(minutes=8), "a" * 64, "vllm-alpha", "ready", "Model loaded in 60 s", "ok", 60.0),
    )
    data = DeploymentFleet(7, ALPHA, engine(), series, 300, (container(),), timeline, NOW - timedelta(hours=1), NOW)
    view = deployment_view(data, NOW)
    assert view.found and view.info["aliases"] == "chat" and view.engine_status == "Scraped 3 s ago."
    assert {c["label"]: c["value"] for c in view.cards}["KV cache"] == "42%"
    assert {c["label"]: c["value"] for c in view.cards}["TTFT P50"] == "1.25 s"
    assert {c["label"]: c["value"] for c in view.cards}["Generation"] == "—"
    assert view.chart == [{"t": "11:55", "running": 2.0, "kv_cache_usage": 50.0, "batch_tokens_mean": 212.46}]
    busy = deployment_view(replace(data, engine=engine(values={"batch_tokens_mean": 212.46, "preemptions": 3.0})), NOW)
    cards = {c["label"]: (c["value"], c["hint"]) for c in busy.cards}
    assert cards["Batch size"] == ("212 tok", "per engine step")
    assert cards["Preemptions"] == ("3", "since the engine started")
    assert [(r["text"], r["color"]) for r in view.timeline] == [
        ("Model loaded in 60 s", "green"),
        ("Started, loading the model", "gray"),
    ]
    failing = engine(ok=False, error="connection refused", scraped_at=NOW - timedelta(seconds=2))
    assert deployment_view(replace(data, engine=failing), NOW).engine_status == (
        "Last scrape 2 s ago failed: connection refused; figures below are from 3 s ago."
    )
    missing = deployment_view(DeploymentFleet(9, None, None, (), 300, (), (), NOW, NOW), NOW)
    assert not missing.found and missing.title == "No deployment #9"


def test_the_kv_view_has_bars_and_marks_stale_workers() -> None:
    fresh = EngineWorker(
        engine(), (Point(NOW - timedelta(minutes=5), {"kv_cache_usage": 0.5, "prefix_hit_rate": None}),)
    )
    old = EngineWorker(
        engine(deployment=DeploymentRef(8, "beta"), stale=True, kv_cache_usage=None, values={}),
        (),
    )
    view = kv_view(EngineWorkers(NOW - timedelta(hours=1), NOW, 300, (fresh, old)), NOW)
    a, b = view.rows
    assert (a["kv"], a["kv_pct"], a["prefix"], a["prefix_pct"], a["status"]) == ("42%", 42, "80%", 80, "ok")
    assert (b["kv"], b["kv_pct"], b["status"], b["status_color"]) == ("—", 0, "stale", "amber")
    assert view.usage_chart == [{"t": "11:55", "s0": 50.0}] and view.hit_chart == []
    assert view.names[:2] == ["alpha", ""]  # beta has no samples: no line, and no name in the legend


def test_the_queue_view_charts_waiting_per_worker_and_says_why_it_is_empty() -> None:
    busy = EngineWorker(engine(waiting=6.0), (Point(NOW - timedelta(minutes=5), {"waiting": 5.5, "running": 16.0}),))
    idle = EngineWorker(engine(deployment=DeploymentRef(8, "beta"), ok=False, error="refused", waiting=None), ())
    view = queue_view(EngineWorkers(NOW - timedelta(hours=1), NOW, 300, (busy, idle)), NOW)
    assert view.chart == [{"t": "11:55", "s0": 5.5}]
    assert view.names[:2] == ["alpha", ""]
    assert view.rows == [
        {"deployment": "alpha", "href": f"{routes.FLEET_DEPLOYMENT}?deployment=7", "running": "3", "waiting": "6"}
        | {"age": "3 s ago", "status": "ok", "status_color": "green"},
        {"deployment": "beta", "href": f"{routes.FLEET_DEPLOYMENT}?deployment=8", "running": "3", "waiting": "—"}
        | {"age": "3 s ago", "status": "error", "status_color": "red"},
    ]
    assert view.empty == ""
    nobody = EngineWorkers(NOW - timedelta(hours=1), NOW, 300, ())
    assert queue_view(nobody, NOW).empty.startswith("No engine reports /metrics yet")
    assert "No engine serving chat reports /metrics" in queue_view(nobody, NOW, "chat").empty
