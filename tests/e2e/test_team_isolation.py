"""Team isolation over the real websocket: a member of team A never sees team B's keys, logs, spend or
credentials, and cannot change their own role, team or budget.

Two teams, a member in each, a key per team and one gateway call per key, all in the console's own
database; then member A's signed-in socket calls the handlers the pages use (and the analytics API with
the same cookie). Team B's key name, prefix, request id, prompt and team name must never come back.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import openai
import pytest
import socketio
from reflex_base.utils.format import format_event_handler
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import make_engine, session
from llm_console.db.models import Budget, Membership, RequestLog, User, VirtualKey
from llm_console.services import keys, teams, users
from llm_console.services.sessions import COOKIE_NAME, SessionUser
from llm_console.state.costs import CostsState
from llm_console.state.key_forms import KeyFormState
from llm_console.state.keys import KeysState
from llm_console.state.logs import LogsState
from llm_console.state.organization import UsersState
from llm_console.state.spend import SpendState
from llm_console.state.teams import TeamsState
from tests.e2e.conftest import ADMIN_EMAIL, MODEL, Console
from tests.e2e.test_socket_guard import NAMESPACE, in_thread, session_cookie

pytestmark = pytest.mark.browser


def event(state: type, handler: str) -> str:
    return format_event_handler(state.event_handlers[handler])  # type: ignore[attr-defined]


KEYS_LOAD, KEYS_FILTER = event(KeysState, "load"), event(KeysState, "set_filter")
OPEN_CREATE, OPEN_EDIT, SUBMIT = (event(KeyFormState, h) for h in ("open_create", "open_edit", "submit"))
OWNER_TYPE = event(KeyFormState, "choose_owner_type")
LOGS_LOAD, LOGS_OPEN = event(LogsState, "load"), event(LogsState, "open_request")
SPEND_LOAD, COSTS_LOAD = event(SpendState, "load"), event(CostsState, "load")
CHANGE_ROLE = event(UsersState, "change_role")
TEAM_SELECT, ADD_MEMBER, SET_MEMBER_ROLE = (event(TeamsState, h) for h in ("select", "add_member", "set_member_role"))
BUDGET_REFUSED = "Only admins can set a key"


@dataclass(frozen=True)
class Side:
    """One team with its member, its key and the request that key made."""

    team_id: int
    team: str
    user_id: int
    email: str
    password: str
    key_id: int
    key_name: str
    prefix: str
    prompt: str
    request_id: str


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


def admin_actor(engine: Engine) -> SessionUser:
    with session(engine) as s:
        row = s.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
    assert row.id is not None
    return SessionUser(row.id, row.email, row.name, row.role)


def make_side(console: Console, engine: Engine, label: str, tag: str) -> Side:
    admin = admin_actor(engine)
    team = teams.create_team(engine, name=f"Team {label} {tag}", actor=admin)
    email, password = f"iso-{label.lower()}-{tag}@localhost", f"iso-{label}-password-{tag}"
    user = users.create_user(engine, email=email, password=password, role="member", actor="test", name=f"M{label}")
    assert team.id is not None and user.id is not None
    teams.add_member(engine, team_id=team.id, user_id=user.id, role="member", actor=admin)
    key_name = f"iso-key-{label.lower()}-{tag}"
    minted = keys.create_key(engine, name=key_name, actor="test", team_id=team.id)
    prompt = f"isolation prompt of team {label} {tag}"
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=minted.secret, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=5
        )
    assert raw.parse().choices[0].message.content
    return Side(
        team.id, team.name, user.id, email, password, minted.id, key_name, minted.prefix, prompt,
        raw.headers["x-request-id"],
    )  # fmt: skip


def wait_for_rows(engine: Engine, request_ids: list[str], timeout_s: float = 15) -> None:
    """The log writer flushes in batches: wait until every request has its row."""
    deadline = time.monotonic() + timeout_s
    while True:
        with session(engine) as s:
            found = set(s.exec(select(RequestLog.id).where(RequestLog.id.in_(request_ids))).all())  # type: ignore[attr-defined]
        if found == set(request_ids):
            return
        assert time.monotonic() < deadline, f"log rows never written: {set(request_ids) - found}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sides(console: Console, engine: Engine) -> tuple[Side, Side]:
    tag = secrets.token_hex(3)
    a, b = make_side(console, engine, "A", tag), make_side(console, engine, "B", tag)
    wait_for_rows(engine, [a.request_id, b.request_id])
    return a, b


@pytest.fixture(scope="module")
def member_a(console: Console, sides: tuple[Side, Side]) -> str:
    return in_thread(session_cookie(console, sides[0].email, sides[0].password))


async def exchange(
    console: Console, cookie: str, events: list[tuple[str, dict[str, Any]]], path: str = "/", query: str = ""
) -> str:
    """Send `events` in order over one signed-in socket and return everything pushed back, as text.

    Reflex runs one socket's events one after another, so a last, harmless event whose answer names a fresh
    marker (a redirect to /keys?q=<marker>) tells us every earlier event is done.
    """
    marker = f"done-{uuid.uuid4().hex}"
    received: list[object] = []
    done = asyncio.Event()

    def on_event(data: object) -> None:
        received.append(data)
        if marker in json.dumps(data):
            done.set()

    sio = socketio.AsyncClient(reconnection=False)
    sio.on("event", on_event, namespace=NAMESPACE)
    await sio.connect(
        f"{console.url}?token={uuid.uuid4()}",
        socketio_path="_event",
        transports=["websocket"],
        headers={"Cookie": f"{COOKIE_NAME}={cookie}"},
        wait_timeout=10,
        namespaces=[NAMESPACE],
    )
    router = {"pathname": path, "query": dict(parse_qsl(query)), "asPath": f"{path}?{query}" if query else path}
    try:
        for name, payload in [*events, (KEYS_FILTER, {"name": "q", "value": marker})]:
            await sio.emit("event", {"name": name, "payload": payload, "router_data": router}, namespace=NAMESPACE)
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await sio.disconnect()
    return json.dumps(without_router(received))


def without_router(value: Any) -> Any:
    """What the server pushed, less the router state it echoes (our own path and query, not its data)."""
    if isinstance(value, dict):
        return {k: without_router(v) for k, v in value.items() if not k.startswith("rx_router_")}
    if isinstance(value, list):
        return [without_router(v) for v in value]
    return value


def talk(
    console: Console, cookie: str, events: list[tuple[str, dict[str, Any]]], path: str = "/", query: str = ""
) -> str:
    return in_thread(exchange(console, cookie, events, path, query))


def secrets_of(side: Side) -> list[str]:
    """What must never reach anyone outside `side`'s team."""
    return [side.team, side.key_name, side.prefix, side.request_id, side.prompt]


def assert_only_a(pushed: str, a: Side, b: Side, where: str) -> None:
    leaked = [
        f"{text!r} in …{pushed[max(0, i - 300) : i + 100]}…" for text in secrets_of(b) if (i := pushed.find(text)) >= 0
    ]
    assert leaked == [], f"{where}: team B's data reached member A:\n" + "\n".join(leaked)


def test_member_a_sees_team_a_keys_never_team_b_keys(console: Console, sides: tuple[Side, Side], member_a: str) -> None:
    a, b = sides
    pushed = talk(console, member_a, [(KEYS_LOAD, {})], "/keys")
    assert a.key_name in pushed and a.prefix in pushed
    assert_only_a(pushed, a, b, "keys page")
    # Searching for team B's key by its name finds no prefix, by its prefix no name (the search echoes back).
    pushed = talk(console, member_a, [(KEYS_LOAD, {})], "/keys", f"q={b.key_name}")
    assert b.prefix not in pushed and b.team not in pushed
    pushed = talk(console, member_a, [(KEYS_LOAD, {})], "/keys", f"q={b.prefix}")
    assert b.key_name not in pushed and b.team not in pushed
    # The owner choices of the create dialog offer team A, never team B.
    pushed = talk(console, member_a, [(OPEN_CREATE, {}), (OWNER_TYPE, {"kind": "team"})], "/keys")
    assert a.team in pushed
    assert_only_a(pushed, a, b, "create key dialog")
    # Editing team B's key by id is refused: its dialog never opens with its values.
    pushed = talk(console, member_a, [(OPEN_EDIT, {"key_id": str(b.key_id)})], "/keys")
    assert_only_a(pushed, a, b, "edit dialog of team B's key")


def test_member_a_sees_team_a_logs_never_team_b_logs(console: Console, sides: tuple[Side, Side], member_a: str) -> None:
    a, b = sides
    pushed = talk(console, member_a, [(LOGS_LOAD, {})], "/logs")
    assert a.request_id in pushed
    assert_only_a(pushed, a, b, "logs page")
    pushed = talk(console, member_a, [(LOGS_LOAD, {})], "/logs", f"id={a.request_id}")
    assert a.prompt in pushed  # a member reads the bodies of their own team's requests
    for query in (f"id={b.request_id}", f"team={b.team_id}", f"key={b.key_id}"):
        pushed = talk(console, member_a, [(LOGS_LOAD, {})], "/logs", query)
        assert '"detail_rx_state_": {"' not in pushed, query  # no request opened
        assert_only_a(pushed.replace(query, ""), a, b, f"logs page with {query}")  # less its own URL, echoed
    # A body search for team B's prompt (echoed back in the filter box) finds none of its rows.
    pushed = talk(console, member_a, [(LOGS_LOAD, {})], "/logs", f"q={b.prompt}")
    assert_only_a(pushed.replace(b.prompt, ""), a, b, "logs page searching team B's prompt")
    pushed = talk(console, member_a, [(LOGS_OPEN, {"request_id": b.request_id})], "/logs")
    assert b.prompt not in pushed and b.team not in pushed


def test_spend_shows_member_a_only_team_a_and_costs_are_refused(
    console: Console, sides: tuple[Side, Side], member_a: str
) -> None:
    a, b = sides
    start = len(console.log.read_text(errors="replace"))
    pushed = talk(console, member_a, [(SPEND_LOAD, {})], "/spend")
    assert a.email in pushed and b.email not in pushed
    assert_only_a(pushed, a, b, "/spend")
    pushed = talk(console, member_a, [(COSTS_LOAD, {})], "/costs")
    assert_only_a(pushed, a, b, "/costs")
    assert a.team not in pushed and a.key_name not in pushed
    log = console.log.read_text(errors="replace")[start:]
    assert f"refused event {COSTS_LOAD} for member " in log
    assert f"refused event {SPEND_LOAD} " not in log


def test_the_analytics_api_scopes_member_a_to_team_a(console: Console, sides: tuple[Side, Side], member_a: str) -> None:
    a, b = sides
    with httpx.Client(base_url=f"{console.url}/api/v1/analytics", cookies={COOKIE_NAME: member_a}) as client:
        listed = client.get("/requests", params={"range": "24h", "limit": 200})
        assert listed.status_code == 200, listed.text
        assert a.request_id in listed.text
        assert_only_a(listed.text, a, b, "analytics requests")
        for params in ({"team": str(b.team_id)}, {"key": str(b.key_id)}, {"q": b.prompt}):
            resp = client.get("/requests", params=params)
            assert resp.status_code in (200, 400), f"{params}: {resp.status_code}"
            assert_only_a(resp.text.replace(b.prompt, "") if "q" in params else resp.text, a, b, f"requests {params}")
        assert client.get(f"/requests/{b.request_id}").status_code == 404
        own = client.get(f"/requests/{a.request_id}")
        assert own.status_code == 200 and a.request_id in own.text
        for path, params in (("/breakdown", {"dim": "team"}), ("/user-spend", {})):
            resp = client.get(path, params=params)
            assert resp.status_code == 403, f"{path}: {resp.status_code}"
            assert_only_a(resp.text, a, b, path)


def membership(engine: Engine, user_id: int) -> dict[int, str]:
    with session(engine) as s:
        return {m.team_id: m.role for m in s.exec(select(Membership).where(Membership.user_id == user_id))}


def key_state(engine: Engine, side: Side) -> tuple[Any, ...]:
    """A key's row and its budget, as comparable values."""
    with session(engine) as s:
        row = s.get(VirtualKey, side.key_id)
        budget = s.get(Budget, ("key", side.key_id))
        keys_of_team = s.exec(select(VirtualKey.id).where(VirtualKey.team_id == side.team_id)).all()
    assert row is not None
    return row.name, row.team_id, row.user_id, budget, sorted(keys_of_team)


def test_member_a_cannot_change_their_role_team_or_budget(
    console: Console, engine: Engine, sides: tuple[Side, Side], member_a: str
) -> None:
    a, b = sides
    role_before = users.get_user(engine, a.user_id)
    assert role_before is not None and role_before.role == "member"
    teams_before, key_before = membership(engine, a.user_id), key_state(engine, a)
    assert teams_before == {a.team_id: "member"}
    start = len(console.log.read_text(errors="replace"))
    talk(
        console,
        member_a,
        [
            (CHANGE_ROLE, {"user_id": str(a.user_id), "role": "admin"}),
            (TEAM_SELECT, {"team_id": str(b.team_id)}),
            (ADD_MEMBER, {"form": {"email": a.email, "role": "admin"}}),
            (TEAM_SELECT, {"team_id": str(a.team_id)}),
            (SET_MEMBER_ROLE, {"user_id": str(a.user_id), "role": "admin"}),
        ],
        "/organization",
    )
    log = console.log.read_text(errors="replace")[start:]
    for name in (CHANGE_ROLE, TEAM_SELECT, ADD_MEMBER, SET_MEMBER_ROLE):
        assert f"refused event {name} for member " in log, name
    # A budget on a new key, and on their own team's key: the form is served, the service refuses.
    budget = {"daily_usd": "1000", "monthly_usd": "5000"}
    pushed = talk(console, member_a, [(OPEN_CREATE, {}), (SUBMIT, {"form": {"name": "iso-sneaky", **budget}})], "/keys")
    assert BUDGET_REFUSED in pushed
    pushed = talk(
        console,
        member_a,
        [(OPEN_EDIT, {"key_id": str(a.key_id)}), (SUBMIT, {"form": {"name": a.key_name, **budget}})],
        "/keys",
    )
    assert BUDGET_REFUSED in pushed
    after = users.get_user(engine, a.user_id)
    assert after is not None and after.role == "member"
    assert membership(engine, a.user_id) == teams_before
    assert key_state(engine, a) == key_before
    with session(engine) as s:
        assert s.exec(select(VirtualKey).where(VirtualKey.name == "iso-sneaky")).first() is None
