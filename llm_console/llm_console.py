"""The Reflex app: theme, pages, the gateway mounted on the same port, the event guard, lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import reflex as rx

from llm_console import pages  # noqa: F401  (registers the pages)
from llm_console.api import make_analytics_routes
from llm_console.api.openapi import console_document
from llm_console.auth.guard import AuthMiddleware
from llm_console.auth.invite_routes import INVITE_ROUTES
from llm_console.auth.routes import AUTH_ROUTES
from llm_console.fleet.collector import engines_loop, host_loop, host_name
from llm_console.gateway import create_gateway
from llm_console.services.alerts import alerts_loop
from llm_console.services.context import get_context
from llm_console.services.leader import run_as_leader
from llm_console.services.retention import retention_loop


@contextlib.asynccontextmanager
async def gateway_lifespan() -> AsyncIterator[None]:
    """Mounted apps' own lifespans are not run by Reflex; the gateway's runs here."""
    async with get_context().runtime.lifespan():
        yield


async def retention_task() -> None:
    """The scheduled retention cleanup, in one process across workers and replicas (cancelled at shutdown)."""
    ctx = get_context()
    await run_as_leader("retention", lambda: retention_loop(ctx.engine, ctx.settings), ctx.settings)


async def alerts_task() -> None:
    """Alert rules evaluated and delivered by one process across workers and replicas."""
    ctx = get_context()
    await run_as_leader("alerts", lambda: alerts_loop(ctx.engine, ctx.settings, ctx.runtime.box), ctx.settings)


async def fleet_engines_task() -> None:
    """Engine metrics scraped by one process across workers and replicas (the router everywhere reads them)."""
    ctx = get_context()
    if not ctx.settings.fleet_enabled:
        return
    await ctx.runtime.started.wait()  # the scrapes go through the gateway's upstream client
    await run_as_leader("fleet-engines", lambda: engines_loop(ctx.engine, ctx.settings, ctx.runtime), ctx.settings)


async def fleet_host_task() -> None:
    """Containers and GPUs of this host, sampled by one process on it (its lock is named after the host)."""
    ctx = get_context()
    if not ctx.settings.fleet_enabled:
        return
    await ctx.runtime.started.wait()
    host = host_name()
    await run_as_leader(
        f"fleet-host:{host}", lambda: host_loop(ctx.engine, ctx.settings, ctx.runtime, host), ctx.settings
    )


ANALYTICS_ROUTES = make_analytics_routes(lambda: get_context().engine, lambda: get_context().sessions)
app = rx.App(
    api_transformer=create_gateway(
        runtime=get_context().runtime,
        standalone=False,
        extra_routes=[*AUTH_ROUTES, *INVITE_ROUTES, *ANALYTICS_ROUTES],
        # The console serves more than the gateway: its document lists the analytics API too.
        document=console_document,
    )
)
app.register_lifespan_task(gateway_lifespan)
app.register_lifespan_task(retention_task)
app.register_lifespan_task(alerts_task)
app.register_lifespan_task(fleet_engines_task)
app.register_lifespan_task(fleet_host_task)
app.add_middleware(AuthMiddleware())
