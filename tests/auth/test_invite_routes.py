"""POST /auth/invite/accept: creates the invited account and signs it in; every refusal goes back readably."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.applications import Starlette

from llm_console.auth import invite_routes
from llm_console.db.engine import make_engine, session
from llm_console.db.migrate import upgrade
from llm_console.db.models import User
from llm_console.services.invitations import create_invitation
from llm_console.services.sessions import COOKIE_NAME, SessionUser, resolve
from llm_console.services.users import create_user
from llm_console.settings import Settings

PASSWORD = "a-good-long-password"


@pytest.fixture
def invite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'invite.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
async def client(invite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    ctx = SimpleNamespace(engine=invite_engine, settings=Settings(env="dev", session_ttl_hours=2))
    monkeypatch.setattr(invite_routes, "get_context", lambda: ctx)
    app = Starlette(routes=invite_routes.INVITE_ROUTES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
        yield c


def token_for(engine: Engine, email: str = "new@example.com", role: str = "member") -> str:
    admin = create_user(engine, email=f"admin-{email}", password=None, role="admin", actor="t")
    made = create_invitation(
        engine,
        email=email,
        role=role,
        base_url="http://console.test",
        ttl_hours=1,
        actor=SessionUser(admin.id or 0, admin.email, "", "admin"),
    )
    return parse_qs(urlsplit(made.link).query)["token"][0]


def error_of(resp: httpx.Response) -> tuple[str, str]:
    assert resp.status_code == 303, resp.text
    target = urlsplit(resp.headers["location"])
    assert target.path == "/invite"
    query = parse_qs(target.query)
    return query.get("token", [""])[0], query["error"][0]


async def test_accepting_creates_the_user_and_signs_in(client: httpx.AsyncClient, invite_engine: Engine) -> None:
    token = token_for(invite_engine, role="operator")

    resp = await client.post("/auth/invite/accept", data={"token": token, "name": "Nia", "password": PASSWORD})

    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = resp.headers["set-cookie"]
    assert COOKIE_NAME in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    signed_in = resolve(invite_engine, resp.cookies[COOKIE_NAME])
    assert signed_in is not None and (signed_in.email, signed_in.role, signed_in.name) == (
        "new@example.com",
        "operator",
        "Nia",
    )
    again = await client.post("/auth/invite/accept", data={"token": token, "name": "Nia", "password": PASSWORD})
    assert error_of(again) == (token, "used")


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"name": "N", "password": "short"}, "password"),
        ({"name": "N\x00", "password": PASSWORD}, "name"),
        ({"name": "N" * 201, "password": PASSWORD}, "name"),
    ],
)
async def test_bad_fields_return_to_the_page_and_change_nothing(
    client: httpx.AsyncClient, invite_engine: Engine, form: dict[str, str], code: str
) -> None:
    token = token_for(invite_engine)
    resp = await client.post("/auth/invite/accept", data={"token": token, **form})
    assert error_of(resp) == (token, code)
    assert COOKIE_NAME not in resp.headers.get("set-cookie", "")
    with session(invite_engine) as s:
        assert s.exec(select(User).where(User.email == "new@example.com")).first() is None


async def test_unknown_or_hostile_tokens(client: httpx.AsyncClient) -> None:
    for token in ("nope", "<script>alert(1)</script>", "' OR 1=1 --", "x" * 500):
        resp = await client.post("/auth/invite/accept", data={"token": token, "name": "N", "password": PASSWORD})
        echoed, code = error_of(resp)
        assert code == "invalid"
        assert "<" not in resp.headers["location"] and len(resp.headers["location"]) < 300
        assert echoed in (token, "")


async def test_oversized_or_odd_bodies_are_refused_without_reading_them(client: httpx.AsyncClient) -> None:
    big = await client.post("/auth/invite/accept", data={"token": "t", "name": "x" * 10_000, "password": PASSWORD})
    assert error_of(big)[1] == "invalid"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap must hold while streaming
        for _ in range(100):
            yield b"name=" + b"x" * 1000 + b"&"

    streamed = await client.post(
        "/auth/invite/accept", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert error_of(streamed)[1] == "invalid"
    as_json = await client.post("/auth/invite/accept", json={"token": "t", "name": "n", "password": PASSWORD})
    assert error_of(as_json)[1] == "invalid"
    bad_utf8 = await client.post(
        "/auth/invite/accept",
        content=b"name=%ff%fe&token=\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert bad_utf8.status_code == 303
    assert (await client.get("/auth/invite/accept")).status_code == 405
