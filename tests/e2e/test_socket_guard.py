"""A raw Socket.IO client calling protected event handlers directly, as any connected socket can."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import socketio
from reflex_base.utils.format import format_event_handler

from llm_console.services.sessions import COOKIE_NAME
from llm_console.state.overview import OverviewState
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Console

LOAD = format_event_handler(OverviewState.event_handlers["load"])
LIVE = format_event_handler(OverviewState.event_handlers["live"])
T = TypeVar("T")
NAMESPACE = "/_event"  # Reflex serves its events on this Socket.IO namespace


async def call(console: Console, name: str, payload: dict[str, object], cookie: str | None) -> str:
    """Send one event over a fresh socket and return everything the server pushed back, as text."""
    received: list[object] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("event", lambda data: received.append(data), namespace=NAMESPACE)
    token = str(uuid.uuid4())
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    await sio.connect(
        f"{console.url}?token={token}",
        socketio_path="_event",
        transports=["websocket"],
        headers=headers,
        wait_timeout=10,
        namespaces=[NAMESPACE],
    )
    try:
        await sio.emit(
            "event",
            {"name": name, "payload": payload, "router_data": {"pathname": "/", "query": {}, "asPath": "/"}},
            namespace=NAMESPACE,
        )
        await asyncio.sleep(3)
    finally:
        await sio.disconnect()
    return json.dumps(received)


async def session_cookie(console: Console) -> str:
    async with httpx.AsyncClient(base_url=console.url) as client:
        resp = await client.post("/auth/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert resp.status_code == 303
    return resp.cookies[COOKIE_NAME]


def in_thread(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine on its own loop: the session's sync Playwright owns this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


def test_anonymous_socket_is_refused_protected_handlers(console: Console) -> None:
    assert "Requests (24 h)" not in in_thread(call(console, LOAD, {}, cookie=None))
    assert "Requests (24 h)" not in in_thread(call(console, LOAD, {}, cookie="forged-session-token"))
    assert "Requests (24 h)" not in in_thread(call(console, LIVE, {"generation": 0}, cookie=None))
    assert "refused event" in console.log.read_text()


def test_the_same_call_with_a_valid_session_is_served(console: Console) -> None:
    cookie = in_thread(session_cookie(console))
    assert "Requests (24 h)" in in_thread(call(console, LOAD, {}, cookie=cookie))
