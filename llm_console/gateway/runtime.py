"""Everything the gateway keeps for its lifetime: settings, DB engine, caches, pools, log writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import httpx
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.gateway.auth import KeyCache, KeyInfo, key_info_from_row
from llm_console.gateway.logwriter import LogWriter
from llm_console.gateway.providers.openai_compat import UpstreamPool
from llm_console.gateway.routing import RouteTable, load_route_table
from llm_console.services.keys import find_by_hash
from llm_console.settings import Settings

log = logging.getLogger("llm_console.gateway")


class GatewayRuntime:
    """Created once per process; `lifespan()` starts and stops what needs starting."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.box = SecretBox(settings.resolved_secret_key())
        self.rng = random.Random()
        self.routes = RouteTable({})
        self.keys = KeyCache(self._lookup_key, ttl=settings.key_cache_ttl_s)
        self.upstream = UpstreamPool(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            timeout_s=settings.upstream_timeout_s,
            transport=transport,
        )
        self.log = LogWriter(
            self.engine,
            spool_dir=settings.data_dir / "spool",
            queue_size=settings.log_queue_size,
            batch_size=settings.log_batch_size,
            flush_interval_s=settings.log_flush_interval_s,
        )
        self._refresher: asyncio.Task[None] | None = None

    def _lookup_key(self, key_hash: str) -> KeyInfo | None:
        row = find_by_hash(self.engine, key_hash)
        return key_info_from_row(row) if row is not None else None

    async def reload_routes(self) -> None:
        self.routes = await asyncio.to_thread(load_route_table, self.engine, self.box)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.route_refresh_interval_s)
            try:
                await self.reload_routes()
            except Exception as exc:  # keep serving the last good table
                log.warning("route table refresh failed: %s", type(exc).__name__)

    async def start(self) -> None:
        await self.reload_routes()
        await self.log.start()
        self._refresher = asyncio.create_task(self._refresh_loop(), name="llmc-route-refresh")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.upstream.aclose()
        await self.log.stop()

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
