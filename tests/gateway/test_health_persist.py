"""The gateway's active health loop records what it saw for the console's health matrix, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from llm_console.db.engine import session
from llm_console.db.models import DeploymentHealth
from llm_console.services import probe

from .fakes import UPSTREAM_MODEL, GatewayFactory

MODELS = {"object": "list", "data": [{"id": UPSTREAM_MODEL, "max_model_len": 4096}, {"id": "other"}]}


async def eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110 (polling the gateway's own loop from outside)
            await asyncio.sleep(0.02)


def _row(engine: object, dep_id: int) -> DeploymentHealth | None:
    with session(engine) as s:  # type: ignore[arg-type]
        return s.get(DeploymentHealth, dep_id)


async def test_each_round_writes_the_deployment_health_row(make_gateway: GatewayFactory) -> None:
    async with make_gateway(health_check_interval_s=0.05) as gw:
        gw.upstream.reply(lambda: httpx.Response(200, json=MODELS))
        await eventually(lambda: (r := _row(gw.rt.engine, gw.deployment_id)) is not None and r.status == "available")
        row = _row(gw.rt.engine, gw.deployment_id)
        assert row is not None and row.models == [UPSTREAM_MODEL, "other"] and row.latency_ms is not None
        assert any(r.url.path == "/v1/models" for r in gw.upstream.requests)

        gw.upstream.reply(lambda: httpx.Response(503, json={"error": "Model is loading"}))
        await eventually(lambda: (r := _row(gw.rt.engine, gw.deployment_id)) is not None and r.status == "loading")
        row = _row(gw.rt.engine, gw.deployment_id)
        assert row is not None and row.last_error is not None and "HTTP 503" in row.last_error

        gw.upstream.reply(lambda: httpx.Response(200, json={"data": [{"id": "other"}]}))
        await eventually(lambda: (r := _row(gw.rt.engine, gw.deployment_id)) is not None and r.models == ["other"])
        row = _row(gw.rt.engine, gw.deployment_id)
        assert row is not None and row.status == "loading"  # the model is not listed (yet)


async def test_a_failing_write_does_not_stop_the_loop(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = probe.record_results

    def flaky(engine: object, reports: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        real(engine, reports)  # type: ignore[arg-type]

    monkeypatch.setattr(probe, "record_results", flaky)
    async with make_gateway(health_check_interval_s=0.05) as gw:
        gw.upstream.reply(lambda: httpx.Response(200, json=MODELS))
        await eventually(lambda: _row(gw.rt.engine, gw.deployment_id) is not None)
        assert len(calls) >= 2


async def test_check_health_still_answers_for_the_balancer(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gw:
        target = gw.rt.routes.targets()[gw.deployment_id]
        gw.upstream.reply(lambda: httpx.Response(404, json={"detail": "Not Found"}))
        assert await gw.rt.check_health(target) is True  # up, as before: requests tell the rest
        gw.upstream.reply(lambda: httpx.Response(500, text="down"))
        assert await gw.rt.check_health(target) is False
        assert _row(gw.rt.engine, gw.deployment_id) is None  # only the loop records
