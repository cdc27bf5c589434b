"""Helpers for the simulator tests: a real server on a free 127.0.0.1 port, an in-process client, SSE parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest_asyncio

from llm_console.simulator import SimulatorConfig, create_app
from llm_console.simulator.server import SimulatorServer, serve_async

StartSim = Callable[..., Awaitable[SimulatorServer]]


@pytest_asyncio.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start `SimulatorConfig.fast(**overrides)` servers on free ports; all are stopped after the test."""
    servers: list[SimulatorServer] = []

    async def start(**overrides: Any) -> SimulatorServer:
        server = await serve_async(port=0, config=SimulatorConfig.fast(**overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def asgi_client(config: SimulatorConfig) -> httpx.AsyncClient:
    """An in-process client for wire-level checks the SDKs would hide."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(config)), base_url="http://sim")


def named_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Decode `event:`/`data:` frames, failing on any frame that is not exactly that pair."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), block
        events.append((event_line[7:], orjson.loads(data_line[6:])))
    return events
