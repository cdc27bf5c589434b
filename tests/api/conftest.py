"""A database seeded with hand-chosen requests (SQLite, and real PostgreSQL) and clients of the analytics API.

The figures the tests expect are worked out by hand from the records below (see test_aggregates.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette

import llm_console.gateway  # noqa: F401  (imported first, as the other storage tests do)
from llm_console.api import make_analytics_routes
from llm_console.db.engine import make_engine
from llm_console.db.logstore import write_batch
from llm_console.db.migrate import upgrade
from llm_console.db.models import Deployment, Provider, Team
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.services.budgets import set_budget
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.sessions import COOKIE_NAME, SessionCache, start_session
from llm_console.services.users import create_user
from tests.conftest import fresh_postgres

NOW = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)
WINDOW = {"from": "2026-03-15T11:00", "to": "2026-03-15T12:30"}  # holds r1..r5, and nothing else
CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
PREFIX = "/api/v1/analytics"
ROLES = ("admin", "operator", "member", "viewer")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 15, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class World:
    """Everything seeded: ids by name, session tokens by role, key secrets by kind, records by name."""

    engine: Engine
    users: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)
    team_id: int = 0
    deployments: dict[str, int] = field(default_factory=dict)
    records: dict[str, LogRecord] = field(default_factory=dict)

    def rid(self, name: str) -> str:
        return self.records[name].id


def record(name: str, when: datetime, **values: Any) -> LogRecord:
    values.setdefault("endpoint", CHAT)
    values.setdefault("model", "upstream-" + str(values.get("alias", "")))
    return LogRecord(id=f"00000000-0000-7000-8000-{name.encode().hex():0>12}"[-36:], created_at=when, **values)


def seed(engine: Engine) -> World:
    w = World(engine)
    for role in ROLES:
        user = create_user(engine, email=f"{role}@example.com", password=None, role=role, actor="test")
        assert user.id is not None
        w.users[role] = user.id
        w.sessions[role] = start_session(engine, user, ttl_hours=1)
    with Session(engine) as s:
        team = Team(name="research")
        p1 = Provider(name="openai-main", api_base="https://api.openai.example")
        p2 = Provider(name="azure-eu", kind="azure", api_base="https://azure.example")
        s.add_all([team, p1, p2])
        s.flush()
        assert p1.id is not None and p2.id is not None and team.id is not None
        deps = {
            "gpt-a": Deployment(name="gpt-a", provider_id=p1.id, model="gpt-4o"),
            "gpt-b": Deployment(name="gpt-b", provider_id=p2.id, model="gpt-4o"),
            "llama-a": Deployment(name="llama-a", provider_id=p1.id, model="llama"),
        }
        s.add_all(deps.values())
        s.commit()
        w.team_id = team.id
        w.deployments = {name: d.id for name, d in deps.items() if d.id is not None}
    minted = {
        "analytics": create_key(engine, name="dash", actor="test", user_id=w.users["admin"], scopes=["analytics"]),
        "gateway": create_key(engine, name="app", actor="test", user_id=w.users["member"], team_id=w.team_id),
        "revoked": create_key(engine, name="old", actor="test", scopes=["analytics"]),
        "expired": create_key(
            engine, name="late", actor="test", scopes=["analytics"], expires_at=datetime.now(UTC) - timedelta(days=1)
        ),
    }
    revoke_key(engine, minted["revoked"].id, actor="test")
    w.keys = {kind: m.secret for kind, m in minted.items()}
    w.key_ids = {kind: m.id for kind, m in minted.items()}
    member, admin, team = w.users["member"], w.users["admin"], w.team_id
    app_key, dash_key = w.key_ids["gateway"], w.key_ids["analytics"]
    d = w.deployments
    secret_in_body = "my key is sk-llmc-ABCDEFGHIJKLMNOPQRSTUV and Bearer abc123def456ghi789jkl"
    records = [
        record("r1", at(12, 1, 10), alias="gpt", deployment_id=d["gpt-a"], key_id=app_key, user_id=member,
               team_id=team, stream=True, prompt_tokens=100, completion_tokens=50, cost_usd=0.01, latency_ms=120,
               ttfb_ms=40, request_body='{"messages":[{"role":"user","content":"Hi O\'Brien, 50% off_sale"}]}',
               response_body='{"choices":[{"message":{"content":"Hello"}}]}'),
        record("r2", at(12, 1, 40), alias="gpt", deployment_id=d["gpt-a"], key_id=app_key, user_id=member,
               team_id=team, stream=True, prompt_tokens=200, completion_tokens=100, cost_usd=0.02, latency_ms=180,
               ttfb_ms=60, request_body='{"messages":[{"role":"user","content":"' + secret_in_body + '"}]}',
               spans=[SpanRecord("auth", 0.0, 1.0, attributes={"authorization": "Bearer sk-llmc-XYZXYZXYZXYZ"}),
                      SpanRecord("upstream", 2.0, 170.0, attributes={"status_code": 200, "api_key": "prov-secret"})]),
        record("r3", at(12, 5), alias="gpt", deployment_id=d["gpt-b"], key_id=dash_key, user_id=admin,
               status="error", status_code=502, error_type="upstream_unavailable", error_message="connect failed",
               prompt_tokens=300, latency_ms=2500, request_body='{"messages":"plain"}'),
        record("r4", at(12, 10, 30), alias="llama", deployment_id=d["llama-a"], key_id=dash_key, user_id=admin,
               stream=True, prompt_tokens=50, completion_tokens=25, cost_usd=0.005, latency_ms=45, ttfb_ms=20,
               request_body='{"prompt":"100 percent"}'),
        record("r5", at(12, 20), endpoint=EMBED, alias="llama", deployment_id=d["llama-a"], key_id=app_key,
               user_id=member, team_id=team, prompt_tokens=10, cost_usd=0.0001, latency_ms=8, embedding_dims=768),
        # Outside WINDOW: earlier today, earlier this month, last month (spend, ranges).
        record("r6", at(10), alias="gpt", deployment_id=d["gpt-a"], key_id=app_key, user_id=member, team_id=team,
               cost_usd=1.0, latency_ms=300),
        record("r7", at(9, day=2), alias="gpt", deployment_id=d["gpt-a"], user_id=member, cost_usd=2.0),
        record("r8", at(9, day=20, month=2), alias="gpt", deployment_id=d["gpt-a"], user_id=member, cost_usd=5.0),
    ]  # fmt: skip
    write_batch(engine, records)
    w.records = {f"r{i}": r for i, r in enumerate(records, start=1)}
    set_budget(engine, "user", member, 1.0, 100.0, actor="test")  # day 1.0301 -> exceeded
    set_budget(engine, "user", admin, 0.006, None, actor="test")  # day 0.005 -> warning (83%)
    set_budget(engine, "user", w.users["viewer"], None, 10.0, actor="test")  # nothing spent -> ok
    return w


def migrated_sqlite(path: Path) -> Engine:
    url = f"sqlite:///{path.as_posix()}"
    upgrade(url)
    return make_engine(url)


@contextlib.contextmanager
def backend_engine(kind: str, folder: Path) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = migrated_sqlite(folder / "api.db")
        yield engine
        engine.dispose()
        return
    with fresh_postgres() as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The seeded world on SQLite and on PostgreSQL, shared by a module's read-only tests."""
    with backend_engine(request.param, tmp_path_factory.mktemp("api")) as engine:
        yield seed(engine)


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    """A fresh seeded SQLite world for tests that change it."""
    engine = migrated_sqlite(tmp_path / "api.db")
    yield seed(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_llmc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LLMC_")]:
        monkeypatch.delenv(name)


def make_app(engine: Engine, *, key_ttl_s: float = 0.0) -> Starlette:
    sessions = SessionCache(engine)
    routes = make_analytics_routes(lambda: engine, lambda: sessions, now=lambda: NOW, key_ttl_s=key_ttl_s)
    return Starlette(routes=routes)


class Client:
    """The API over ASGI, signed in as a role (cookie) or with a key, as each call says."""

    def __init__(self, http: httpx.AsyncClient, world: World) -> None:
        self.http = http
        self.world = world

    def auth(self, as_: str) -> dict[str, str]:
        if as_ in self.world.keys:
            return {"Authorization": f"Bearer {self.world.keys[as_]}"}
        if as_ in self.world.sessions:
            return {"Cookie": f"{COOKIE_NAME}={self.world.sessions[as_]}"}
        return {}

    async def get(self, path: str, as_: str = "analytics", **params: Any) -> httpx.Response:
        url = path if path.startswith("/") else f"{PREFIX}/{path}"
        return await self.http.get(url, params=params or None, headers=self.auth(as_))

    async def ok(self, path: str, as_: str = "analytics", **params: Any) -> Any:
        resp = await self.get(path, as_, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@contextlib.asynccontextmanager
async def open_client(world: World, **app_options: Any) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=make_app(world.engine, **app_options))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Client(http, world)


@pytest.fixture
async def api(world: World) -> AsyncIterator[Client]:
    async with open_client(world) as client:
        yield client


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error with this status (and code)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]
