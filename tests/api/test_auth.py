"""Who may read the analytics API: sessions by role, admin keys by scope, and nobody else (always OpenAI-shaped)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session
from starlette.applications import Starlette

from llm_console.api import auth as api_auth
from llm_console.auth.routes import AUTH_ROUTES
from llm_console.db.models import Membership, User, VirtualKey
from llm_console.services import context as console_context
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.sessions import COOKIE_NAME
from llm_console.services.users import create_user
from llm_console.settings import get_settings
from tests.api.conftest import PREFIX, WINDOW, World, assert_error, make_app, open_client

AGGREGATES = ("summary", "timeseries", "by-model", "breakdown?dim=model", "user-spend", "requests")


async def test_no_credentials(sqlite_world: World) -> None:
    async with open_client(sqlite_world) as api:
        for path in (*AGGREGATES, "requests/export", f"requests/{sqlite_world.rid('r1')}"):
            resp = await api.get(path, as_="nobody")
            error = assert_error(resp, 401, "missing_credentials")
            assert error["type"] == "authentication_error"
            assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_bad_cookies(sqlite_world: World) -> None:
    async with open_client(sqlite_world) as api:
        for cookie in (f"{COOKIE_NAME}=not-a-session", f"{COOKIE_NAME}={'x' * 5000}", f'{COOKIE_NAME}="a\\"b"'):
            resp = await api.http.get(f"{PREFIX}/summary", headers={"Cookie": cookie})
            assert_error(resp, 401, "invalid_session")
        for cookie in (f"{COOKIE_NAME}=' OR 1=1 --", f"{COOKIE_NAME}=", "\x00"):  # unreadable: as if absent
            resp = await api.http.get(f"{PREFIX}/summary", headers={"Cookie": cookie})
            assert_error(resp, 401, "missing_credentials")
        resp = await api.http.get(f"{PREFIX}/summary", headers={"Cookie": "other=1; =;;"})
        assert_error(resp, 401, "missing_credentials")


@pytest.mark.parametrize("role", ["admin", "operator"])
async def test_org_wide_roles_read_aggregates_and_rows(sqlite_world: World, role: str) -> None:
    async with open_client(sqlite_world) as api:
        for path in AGGREGATES:
            assert (await api.get(path, as_=role)).status_code == 200, path
        assert (await api.get("requests/export", as_=role)).status_code == 200


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_team_scoped_roles_read_rows_but_not_org_wide_figures(sqlite_world: World, role: str) -> None:
    async with open_client(sqlite_world) as api:
        for path in AGGREGATES[:-1]:
            assert_error(await api.get(path, as_=role), 403, "forbidden")
        assert (await api.get("requests", as_=role)).status_code == 200
        assert (await api.get("requests/export", as_=role)).status_code == 200


async def test_members_see_only_their_teams_and_their_own_requests(sqlite_world: World) -> None:
    """The member owns most rows; the viewer, in no team, sees none; joining the team shows its rows."""
    w = sqlite_world
    async with open_client(w) as api:
        member_rows = {r["id"] for r in (await api.ok("requests", as_="member", **WINDOW))["data"]}
        admin_rows = {r["id"] for r in (await api.ok("requests", as_="admin", **WINDOW))["data"]}
        viewer_rows = {r["id"] for r in (await api.ok("requests", as_="viewer", **WINDOW))["data"]}
        assert viewer_rows == set() and member_rows and member_rows < admin_rows
        hidden = next(iter(admin_rows - member_rows))
        assert_error(await api.get(f"requests/{hidden}", as_="member"), 404, "not_found")
        exported = (await api.get("requests/export", as_="member", format="json", **WINDOW)).text
        assert hidden not in exported and "admin@example.com" not in exported
        with Session(w.engine) as s:
            s.add(Membership(user_id=w.users["viewer"], team_id=w.team_id, role="viewer"))
            s.commit()
        team_rows = {r["id"] for r in (await api.ok("requests", as_="viewer", **WINDOW))["data"]}
        assert team_rows and team_rows <= admin_rows


async def test_bodies_need_member_or_above(sqlite_world: World) -> None:
    detail = f"requests/{sqlite_world.rid('r1')}"
    async with open_client(sqlite_world) as api:
        for role in ("admin", "operator", "member", "analytics"):
            assert (await api.get(detail, as_=role)).status_code == 200, role
        error = assert_error(await api.get(detail, as_="viewer"), 403, "forbidden")
        assert error["type"] == "permission_error"
        # A body search reveals what bodies hold, one guess at a time: the same rule.
        assert_error(await api.get("requests", as_="viewer", q="Brien"), 403, "forbidden")
        assert_error(await api.get("requests/export", as_="viewer", q="Brien"), 403, "forbidden")
        assert (await api.get("requests", as_="member", q="Brien")).status_code == 200
        # A viewer learns nothing about which ids exist.
        assert_error(await api.get("requests/00000000-0000-7000-8000-000000000000", as_="viewer"), 403)


async def test_a_disabled_users_session_stops_working(sqlite_world: World) -> None:
    with Session(sqlite_world.engine) as s:
        user = s.get(User, sqlite_world.users["member"])
        assert user is not None
        user.is_active = False
        s.add(user)
        s.commit()
    async with open_client(sqlite_world) as api:
        assert_error(await api.get("summary", as_="member"), 401, "invalid_session")


async def test_keys_need_the_analytics_scope(sqlite_world: World) -> None:
    async with open_client(sqlite_world) as api:
        assert (await api.get("summary", as_="analytics")).status_code == 200
        error = assert_error(await api.get("summary", as_="gateway"), 403, "missing_scope")
        assert error["type"] == "permission_error"
        assert sqlite_world.keys["gateway"] not in error["message"]


async def test_bad_keys_all_read_the_same(sqlite_world: World) -> None:
    """Unknown, revoked, expired, malformed or SQL-looking: one 401 body, so nothing says a key exists."""
    w = sqlite_world
    headers = [
        f"Bearer {w.keys['revoked']}",
        f"Bearer {w.keys['expired']}",
        f"Bearer {w.keys['analytics']}x",
        "Bearer sk-llmc-" + "A" * 43,
        "Bearer ' OR 1=1 --",
        "Bearer sk-llmc-' OR '1'='1' --",
        'Bearer sk-llmc-"; DROP TABLE virtual_keys; --',
        f"Basic {w.keys['analytics']}",
        f"bearer{w.keys['analytics']}",
        "Bearer",
        "",
        "Bearer " + "sk-llmc-" + "a" * 5000,
    ]
    async with open_client(w) as api:
        bodies = set()
        for header in headers:
            resp = await api.http.get(f"{PREFIX}/summary", headers={"Authorization": header})
            error = assert_error(resp, 401, "invalid_api_key")
            bodies.add(resp.text)
            assert "expired" not in error["message"] and "revoked" not in error["message"]
        assert len(bodies) == 1
        # An explicit key wins over a cookie the browser also sent.
        both = {"Authorization": "Bearer nope", "Cookie": f"{COOKIE_NAME}={w.sessions['admin']}"}
        assert_error(await api.http.get(f"{PREFIX}/summary", headers=both), 401, "invalid_api_key")


async def test_keys_are_looked_up_by_hash_only(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = api_auth.find_by_hash

    def spy(engine: object, key_hash: str) -> object:
        seen.append(key_hash)
        return real(engine, key_hash)  # type: ignore[arg-type]

    monkeypatch.setattr(api_auth, "find_by_hash", spy)
    async with open_client(sqlite_world) as api:
        await api.get("summary", as_="analytics")
        await api.http.get(f"{PREFIX}/summary", headers={"Authorization": "Bearer ' OR 1=1 --"})  # never looked up
        await api.http.get(f"{PREFIX}/summary", headers={"Authorization": "Bearer sk-llmc-' OR '1'='1' --"})
    assert len(seen) == 2 and all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in seen)
    assert sqlite_world.keys["analytics"] not in seen


async def test_key_lookups_are_cached_briefly(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = api_auth.find_by_hash
    monkeypatch.setattr(api_auth, "find_by_hash", lambda e, h: calls.append(h) or real(e, h))
    transport = httpx.ASGITransport(app=make_app(sqlite_world.engine, key_ttl_s=60.0))
    headers = {"Authorization": f"Bearer {sqlite_world.keys['analytics']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for _ in range(3):
            assert (await http.get(f"{PREFIX}/summary", headers=headers)).status_code == 200
    assert len(calls) == 1


async def test_revocation_and_expiry_take_effect(sqlite_world: World) -> None:
    w = sqlite_world
    late = create_key(w.engine, name="late", actor="t", scopes=["analytics"])
    header = {"Authorization": f"Bearer {late.secret}"}
    async with open_client(w) as api:  # key cache TTL 0 in these tests
        assert (await api.http.get(f"{PREFIX}/summary", headers=header)).status_code == 200
        with Session(w.engine) as s:
            row = s.get(VirtualKey, late.id)
            assert row is not None
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(row)
            s.commit()
        assert_error(await api.http.get(f"{PREFIX}/summary", headers=header), 401, "invalid_api_key")
        assert (await api.get("summary", as_="analytics")).status_code == 200
        revoke_key(w.engine, w.key_ids["analytics"], actor="t")
        assert_error(await api.get("summary", as_="analytics"), 401, "invalid_api_key")


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The process-wide console context on a seeded SQLite file (what the mounted app uses)."""
    from tests.api.conftest import migrated_sqlite, seed

    engine = migrated_sqlite(tmp_path / "console.db")
    world = seed(engine)
    monkeypatch.setenv("LLMC_DATABASE_URL", f"sqlite:///{(tmp_path / 'console.db').as_posix()}")
    monkeypatch.setenv("LLMC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    console_context.get_context.cache_clear()
    yield world
    console_context.get_context().engine.dispose()
    console_context.get_context.cache_clear()
    get_settings.cache_clear()
    engine.dispose()


async def test_sign_in_through_the_login_route_then_read(console: World) -> None:
    create_user(console.engine, email="ops@example.com", password="correct horse battery", role="operator", actor="t")
    ctx = console_context.get_context
    from llm_console.api import make_analytics_routes

    app = Starlette(routes=[*AUTH_ROUTES, *make_analytics_routes(lambda: ctx().engine, lambda: ctx().sessions)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        login = await http.post("/auth/login", data={"email": "ops@example.com", "password": "correct horse battery"})
        assert login.status_code == 303 and COOKIE_NAME in login.cookies
        body = (await http.get(f"{PREFIX}/summary", params=WINDOW)).json()
        assert body["totals"]["requests"] == 5
        assert (await http.get(f"{PREFIX}/requests", params={"range": "24h"})).status_code == 200
        await http.post("/auth/logout")
        http.cookies.clear()
        assert_error(await http.get(f"{PREFIX}/summary"), 401, "missing_credentials")
