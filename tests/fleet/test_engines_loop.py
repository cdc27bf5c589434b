"""The engine-metrics loop against a real simulator: scraped through the gateway's upstream client, stored,
fed to the router at once, and the end of model loading marked on the serving container."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.fleet_tables import FleetContainerEvent, FleetEngine, FleetSample, FleetSource
from llm_console.db.migrate import upgrade
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from llm_console.fleet import store
from llm_console.fleet.collector import engines_loop
from llm_console.fleet.types import ContainerEventInfo, ContainerInfo
from llm_console.gateway.balancer import Balancer
from llm_console.gateway.routing import load_route_table
from llm_console.gateway.ssrf import AllowList
from llm_console.gateway.upstream import UpstreamClient
from llm_console.settings import Settings
from tests.integration.fixtures_gateway import simulator

BOX = SecretBox("fleet-test-secret-key-0123456789abcdef")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'fleet.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def add_deployment(engine: Engine, name: str, api_base: str, model: str = "sim-model") -> int:
    with session(engine) as s:
        prov = Provider(name=f"p-{name}", kind="openai", api_base=api_base)
        s.add(prov)
        s.flush()
        dep = Deployment(name=name, provider_id=prov.id or 0, model=model)
        alias = ModelAlias(alias=f"a-{name}", strategy="engine_aware")
        s.add(dep)
        s.add(alias)
        s.flush()
        s.add(AliasDeployment(alias_id=alias.id or 0, deployment_id=dep.id or 0))
        s.commit()
        return dep.id or 0


async def test_engines_loop_scrapes_stores_routes_and_marks_ready(engine: Engine, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(simulator(tmp_path, "--max-num-seqs", "2", "--models", "sim-model"))
        dep_id = add_deployment(engine, "sim", f"{url}/v1")
        silent = add_deployment(engine, "silent", "http://127.0.0.1:9/v1")  # nothing listens on port 9
        started = datetime.now(UTC) - timedelta(seconds=20)
        container = ContainerInfo(
            "c0ffee", "vllm-sim", "localhost/llmc-tiny:1", "1", "sim-model", "running", "", started, None, 0, None,
            None, None, None, (8000,), dep_id,
        )  # fmt: skip
        store.save_containers(engine, "h", [container], started)
        store.save_events(engine, [ContainerEventInfo("c0ffee", "vllm-sim", started, "start", "", dep_id)])
        upstream = UpstreamClient(lambda: AllowList.parse(["127.0.0.0/8"]))
        await upstream.start()
        runtime = SimpleNamespace(
            routes=load_route_table(engine, BOX),
            upstream=upstream,
            balancer=Balancer(failure_threshold=3, cooldown_s=5),
        )
        settings = Settings(fleet_engine_interval_s=0.3)
        task = asyncio.create_task(engines_loop(engine, settings, runtime))
        try:
            async with httpx.AsyncClient(base_url=f"{url}/v1", timeout=30) as client:
                body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
                for _ in range(3):
                    await asyncio.gather(*(client.post("/chat/completions", json=body) for _ in range(4)))
                    await asyncio.sleep(0.35)
            await asyncio.sleep(0.8)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await upstream.aclose()

    sample = runtime.balancer.signals.fresh(dep_id)
    assert sample is not None, "the scraping process routes on its own readings at once"
    assert runtime.balancer.signals.fresh(silent) is None
    with session(engine) as s:
        row = s.get(FleetEngine, dep_id)
        down = s.get(FleetEngine, silent)
        ready = s.exec(select(FleetContainerEvent).where(FleetContainerEvent.action == "ready")).all()
        source = s.get(FleetSource, "engines")
        points = s.exec(select(FleetSample).where(FleetSample.deployment_id == dep_id)).all()
    assert row is not None and row.ok and row.values["models"] == ["sim-model"]
    assert row.running == 0 and row.waiting == 0  # every request had finished by the last scrape
    assert any((p.values.get("generation_tps") or 0) > 0 for p in points), "throughput between scrapes"
    assert any(p.values.get("ttft_p50_ms") is not None for p in points)
    assert down is not None and not down.ok and "could not be reached" in (down.error or "")
    assert [(e.container_id, e.deployment_id) for e in ready] == [("c0ffee", dep_id)]
    assert ready[0].detail.startswith("serving sim-model after ")
    assert source is not None and source.message.startswith("1 of 2 deployments report engine metrics")
