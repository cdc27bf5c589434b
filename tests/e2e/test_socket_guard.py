"""A raw Socket.IO client calling protected event handlers directly, as any connected socket can."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import parse_qsl

import httpx
import openai
import pytest
import socketio
from reflex_base.utils.format import format_event_handler

from llm_console.services.sessions import COOKIE_NAME
from llm_console.state.logs import LogsState
from llm_console.state.overview import OverviewState
from llm_console.state.usage import UsageState
from tests.conftest import run_cli
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Console

LOAD = format_event_handler(OverviewState.event_handlers["load"])
LIVE = format_event_handler(OverviewState.event_handlers["live"])
LOGS_LOAD = format_event_handler(LogsState.event_handlers["load"])
LOGS_OPEN = format_event_handler(LogsState.event_handlers["open_request"])
USAGE_LOAD = format_event_handler(UsageState.event_handlers["load"])
USAGE_SET = format_event_handler(UsageState.event_handlers["set_param"])
SECRET_PROMPT = "socket-guard-private-prompt-7f3a"
VIEWER_EMAIL, VIEWER_PASSWORD = "viewer@localhost", "viewer-password-123"
T = TypeVar("T")
NAMESPACE = "/_event"  # Reflex serves its events on this Socket.IO namespace


async def call(
    console: Console, name: str, payload: dict[str, object], cookie: str | None, path: str = "/", query: str = ""
) -> str:
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
            {
                "name": name,
                "payload": payload,
                "router_data": {
                    "pathname": path,
                    "query": dict(parse_qsl(query)),
                    "asPath": f"{path}?{query}" if query else path,
                },
            },
            namespace=NAMESPACE,
        )
        await asyncio.sleep(3)
    finally:
        await sio.disconnect()
    return json.dumps(received)


async def session_cookie(console: Console, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
    async with httpx.AsyncClient(base_url=console.url) as client:
        resp = await client.post("/auth/login", data={"email": email, "password": password})
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


@pytest.fixture(scope="module")
def private_request(console: Console) -> str:
    """A request whose prompt only a signed-in member or above may read."""
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="e2e-model", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=5
        )
    in_thread(asyncio.sleep(1.5))  # the log writer flushes every 0.2 s here
    return raw.headers["x-request-id"]


def test_dashboard_handlers_refuse_anonymous_sockets(console: Console, private_request: str) -> None:
    for name, payload, path, query in [
        (LOGS_LOAD, {}, "/logs", f"id={private_request}"),
        (LOGS_OPEN, {"request_id": private_request}, "/logs", ""),
        (USAGE_LOAD, {}, "/usage", "range=7d"),
        (USAGE_SET, {"name": "range", "value": "7d"}, "/usage", ""),
    ]:
        for cookie in (None, "forged-session-token"):
            pushed = in_thread(call(console, name, payload, cookie, path, query))
            assert SECRET_PROMPT not in pushed and "e2e-model" not in pushed, name
            assert "range=7d" not in pushed, name  # not even a navigation comes back


def without_router(pushed: str) -> str:
    """What the server pushed, minus echoes of the caller's own URL (router data, the page's query vars)."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "router" not in str(k) and "query" not in str(k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(json.loads(pushed)))


def _own_key(console: Console, email: str) -> str:
    """A gateway key owned by the user with `email`, minted in the console's own database."""
    from sqlmodel import select

    from llm_console.db.engine import make_engine, session
    from llm_console.db.models import User
    from llm_console.services.keys import create_key

    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    try:
        with session(engine) as s:
            user = s.exec(select(User).where(User.email == email)).one()
        return create_key(engine, name=f"{email} key", actor="test", user_id=user.id).secret
    finally:
        engine.dispose()


def test_bodies_reach_members_but_not_viewers(console: Console, private_request: str) -> None:
    env = {**console.env, "VIEWER_PW": VIEWER_PASSWORD}
    done = run_cli(env, "create-admin", VIEWER_EMAIL, "--role", "viewer", "--password-env", "VIEWER_PW")
    assert done.returncode == 0 or "exists" in done.stderr, done.stderr
    viewer = in_thread(session_cookie(console, VIEWER_EMAIL, VIEWER_PASSWORD))
    # The admin's request belongs to no team of the viewer's: not even its row reaches them (the URL they
    # sent comes back in router data and the page's query vars, dropped before looking).
    pushed = without_router(in_thread(call(console, LOGS_LOAD, {}, viewer, "/logs", f"id={private_request}")))
    assert private_request not in pushed
    # Their own request: the row and its trace, yes; its prompt, no (bodies need member or above).
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=_own_key(console, VIEWER_EMAIL), max_retries=0) as c:
        own = c.chat.completions.with_raw_response.create(
            model="e2e-model", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=5
        ).headers["x-request-id"]
    in_thread(asyncio.sleep(1.5))
    seen_by_viewer = in_thread(call(console, LOGS_LOAD, {}, viewer, "/logs", f"id={own}"))
    assert own in seen_by_viewer
    assert SECRET_PROMPT not in seen_by_viewer
    admin = in_thread(session_cookie(console))
    assert SECRET_PROMPT in in_thread(call(console, LOGS_LOAD, {}, admin, "/logs", f"id={private_request}"))
