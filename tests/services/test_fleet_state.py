"""The fleet pages' handlers called directly, as any connected socket could call them: a stranger is sent to
sign in and sees nothing, a viewer reads all three pages; the deployment id and range come from the URL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine

import llm_console.state.dashboard as dashboard_module
import llm_console.state.fleet as fleet_module
from llm_console import routes
from llm_console.fleet import store
from llm_console.fleet.types import ContainerEventInfo, EngineReading, GpuInfo, GpuProcess, SourceStatus
from llm_console.services.sessions import SessionUser
from llm_console.settings import Settings
from llm_console.state.fleet import FleetDeploymentState, FleetKvState, FleetState
from tests.services.test_fleet_queries import HOST, GiB, box, seed_deployments


class Page:
    def __init__(self, root: State) -> None:
        self.root = root
        self.who: SessionUser | None = None

    def state(self, cls: type) -> Any:
        return self.root.get_substate(cls.get_full_name().split(".")[1:])  # type: ignore[attr-defined]

    def url(self, path: str, query: dict[str, str]) -> None:
        as_path = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        self.root._update_router_vars({"pathname": path, "query": query, "asPath": as_path}, {})

    async def load(self, cls: type) -> list[Any]:
        """Run `load` (an async generator) and return what it yielded: redirects, the live loop's event."""
        return [spec async for spec in cls.event_handlers["load"].fn(self.state(cls))]  # type: ignore[attr-defined]


@pytest.fixture
def page(engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="x" * 32)  # type: ignore[call-arg]
    context = SimpleNamespace(engine=engine, settings=settings)
    monkeypatch.setattr(fleet_module, "get_context", lambda: context)
    p = Page(State(_reflex_internal_init=True))

    async def current_user(state: object) -> SessionUser | None:
        return p.who

    monkeypatch.setattr(dashboard_module, "current_user", current_user)
    yield p


@pytest.fixture
def seeded(engine: Engine) -> dict[str, int]:
    """A live fleet, written a moment ago: one container, one GPU with its process, one engine, a load."""
    ids = seed_deployments(engine)
    now = datetime.now(UTC)
    c = box("a" * 64, "vllm-alpha", ids["alpha"], started_at=now - timedelta(minutes=3))
    store.save_source(engine, SourceStatus("docker", HOST, True, "1 container seen"), now)
    store.save_source(engine, SourceStatus("nvml", HOST, False, "No NVIDIA driver on this host"), now)
    store.save_containers(engine, HOST, [c], now)
    gpu = GpuInfo(
        "GPU-0", 0, "H100", 20 * GiB, 80 * GiB, 40.0, 10.0, 50.0, 200.0, 700.0, "550", "12.4",
        (GpuProcess(7, 18 * GiB, c.id, c.name, ids["alpha"], c.model),),
    )  # fmt: skip
    store.save_gpus(engine, HOST, [gpu], now)
    store.save_engines(engine, [EngineReading(ids["alpha"], True, running=2, waiting=0, kv_cache_usage=0.3)], now)
    store.save_events(
        engine,
        [
            ContainerEventInfo(c.id, c.name, now - timedelta(minutes=3), "start", "", ids["alpha"]),
            ContainerEventInfo(c.id, c.name, now - timedelta(minutes=2), "ready", "", ids["alpha"]),
        ],
    )
    return ids


@pytest.mark.parametrize("cls", [FleetState, FleetDeploymentState, FleetKvState])
async def test_a_stranger_is_sent_to_sign_in_and_sees_nothing(page: Page, seeded: dict[str, int], cls: type) -> None:
    page.url(cls._route, {"deployment": str(seeded["alpha"])})  # type: ignore[attr-defined]
    page.who = None
    specs = await page.load(cls)
    assert len(specs) == 1 and routes.LOGIN in repr(specs[0])
    state = page.state(cls)
    assert state.as_of == "" and all(not getattr(state, name) for name in cls._export_tables)  # type: ignore[attr-defined]


async def test_a_viewer_reads_the_fleet_overview(page: Page, seeded: dict[str, int]) -> None:
    page.who = SessionUser(5, "viewer@example.com", "Vic", "viewer")
    page.url(routes.FLEET, {})
    specs = await page.load(FleetState)
    assert len(specs) == 1 and "live" in repr(specs[0])  # no redirect: the live loop starts
    s = page.state(FleetState)
    assert s.range_name == "1h" and s.filter_errors == []
    assert [(r["name"], r["status"], r["uptime"]) for r in s.containers] == [("vllm-alpha", "running", "3 min")]
    nvml = next(b for b in s.banners if b["kind"] == "nvml")
    assert (nvml["level"], nvml["message"]) == ("warning", "No NVIDIA driver on this host")
    assert s.matrix_columns == ["alpha"] and s.matrix_rows == [["GPU 0", "18.0 GiB"]]
    assert [e["deployment"] for e in s.engines] == ["alpha"] and s.engines[0]["kv"] == "30%"
    assert s.gpu_processes[0][0]["container"] == "vllm-alpha"


async def test_a_viewer_reads_a_deployment_and_the_kv_page(page: Page, seeded: dict[str, int]) -> None:
    page.who = SessionUser(5, "viewer@example.com", "Vic", "viewer")
    page.url(routes.FLEET_DEPLOYMENT, {"deployment": str(seeded["alpha"]), "range": "24h"})
    await page.load(FleetDeploymentState)
    d = page.state(FleetDeploymentState)
    assert d.found and d.title == "alpha" and d.range_name == "24h"
    assert [r["text"] for r in d.timeline] == ["Model loaded in 60 s", "Started, loading the model"]
    assert [r["name"] for r in d.containers] == ["vllm-alpha"]
    assert {c["label"]: c["value"] for c in d.cards}["Running"] == "2"
    page.url(routes.FLEET_KV, {})
    await page.load(FleetKvState)
    kv = page.state(FleetKvState)
    assert [(r["deployment"], r["kv"], r["kv_pct"]) for r in kv.rows] == [("alpha", "30%", 30)]
    assert kv.usage_chart[0]["s0"] == pytest.approx(30.0)


async def test_a_bad_deployment_id_is_named_not_used(page: Page, seeded: dict[str, int]) -> None:
    page.who = SessionUser(5, "viewer@example.com", "Vic", "viewer")
    page.url(routes.FLEET_DEPLOYMENT, {"deployment": "1 OR 1=1"})
    await page.load(FleetDeploymentState)
    d = page.state(FleetDeploymentState)
    assert not d.found and d.title == "No deployment chosen"
    assert d.filter_errors == ["Ignored deployment: expected a numeric id."]


def test_the_three_pages_build_from_their_state_vars() -> None:
    """Reflex checks every prop's type against the state var's when a page is built: a row field typed
    `str | int` where a prop wants `str` fails here, not only at the console's start."""
    from llm_console.pages import fleet as pages

    for build in (pages.fleet, pages.fleet_deployment, pages.fleet_kv):
        assert "fleet" in str(build().render()).lower()
