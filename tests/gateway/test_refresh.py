"""Running gateways pick up configuration changes: every change is audited, and a new audit event
triggers a route-table reload within the refresh interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llm_console.services.deployments import add_deployment, set_route_policy

from .fakes import GatewayFactory


async def eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(3):
        while not check():  # noqa: ASYNC110 (polling the gateway's own refresh loop from outside)
            await asyncio.sleep(0.02)


async def test_a_new_deployment_reaches_a_running_gateway(make_gateway: GatewayFactory) -> None:
    async with make_gateway(route_refresh_interval_s=0.05) as gw:
        assert gw.rt.routes.get("late") is None
        add_deployment(
            gw.rt.engine, gw.rt.box, alias="late", base_url=gw.upstream_base, actor="t", extra_allowlist=["127.0.0.1"]
        )
        await eventually(lambda: gw.rt.routes.get("late") is not None)
        resp = await gw.chat({"model": "late", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200


async def test_a_policy_change_reaches_a_running_gateway(make_gateway: GatewayFactory) -> None:
    async with make_gateway(route_refresh_interval_s=0.05) as gw:
        set_route_policy(gw.rt.engine, alias="m", actor="t", strategy="least_busy", retries=0)

        def changed() -> bool:
            route = gw.rt.routes.get("m")
            return route is not None and route.strategy == "least_busy" and route.policy.retries == 0

        await eventually(changed)
