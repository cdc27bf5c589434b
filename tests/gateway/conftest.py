"""A started gateway on a fresh SQLite file, its upstream a scripted fake served on a real local port."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import event

from llm_console.db.migrate import upgrade
from llm_console.gateway import GatewayRuntime, create_gateway
from llm_console.services.deployments import add_deployment
from llm_console.services.keys import create_key

from .fakes import (
    ALIAS,
    PROVIDER_KEY,
    UPSTREAM_MODEL,
    FakeUpstream,
    Gateway,
    GatewayFactory,
    HttpUpstream,
    QueryLog,
    StreamingASGITransport,
    make_settings,
)


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def make_gateway(tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> GatewayFactory:
    """Build a started gateway; keyword arguments override Settings; `streaming=True` uses the unbuffered client."""
    for name in [n for n in os.environ if n.startswith("LLMC_")]:
        monkeypatch.delenv(name)

    @contextlib.asynccontextmanager
    async def factory(
        *, streaming: bool = False, allowed_aliases: list[str] | None = None, **overrides: Any
    ) -> AsyncIterator[Gateway]:
        defaults = {"log_flush_interval_s": 0.02, "upstream_allowlist": ["127.0.0.1/32"], "retry_backoff_ms": 1.0}
        settings = make_settings(tmp_path, **{**defaults, **overrides})
        upgrade(settings.database_url)
        rt = GatewayRuntime(settings)
        try:
            async with HttpUpstream(upstream) as server:
                key = create_key(rt.engine, name="test", actor="test", allowed_aliases=allowed_aliases)
                dep = add_deployment(
                    rt.engine,
                    rt.box,
                    alias=ALIAS,
                    base_url=server.base_url,
                    model=UPSTREAM_MODEL,
                    api_key=PROVIDER_KEY,
                    actor="test",
                    extra_allowlist=settings.upstream_allowlist,
                )
                assert dep.id is not None
                app = create_gateway(runtime=rt)
                transport: httpx.AsyncBaseTransport = (
                    StreamingASGITransport(app) if streaming else httpx.ASGITransport(app=app)
                )
                async with rt.lifespan():
                    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                        yield Gateway(rt, client, key, dep.id, upstream, settings, server.base_url)
        finally:
            rt.engine.dispose()

    return factory


@pytest_asyncio.fixture
async def gw(make_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    async with make_gateway() as gateway:
        yield gateway


@pytest.fixture
def query_log(gw: Gateway) -> Iterator[QueryLog]:
    log = QueryLog()
    event.listen(gw.rt.engine, "before_cursor_execute", log)
    yield log
    event.remove(gw.rt.engine, "before_cursor_execute", log)


@pytest_asyncio.fixture
async def gw_stream(make_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    """A gateway whose test client sees response bytes as the app sends them."""
    async with make_gateway(streaming=True) as gateway:
        yield gateway
