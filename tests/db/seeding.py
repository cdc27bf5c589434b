"""Seeding helpers for the query tests, and a `db` fixture over SQLite and real PostgreSQL.

Each test module migrates one SQLite template file and (lazily, for the postgres variants) one PostgreSQL
database; every test then gets a copy of the SQLite file or the PostgreSQL database with its tables
emptied, which keeps a few hundred database tests within seconds.

Test modules import the fixtures under names that differ from the fixture names (ruff would otherwise
read a test's `db` argument as a redefinition of the import):

    from tests.db.seeding import backends_fixture, db_fixture  # noqa: F401
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import llm_console.gateway  # noqa: F401  (first, as tests/db/test_logstore.py does: the import cycle)
from llm_console.db.engine import make_engine
from llm_console.db.logstore import write_batch
from llm_console.db.migrate import upgrade
from llm_console.db.models import Budget, Deployment, Provider, Team, User, VirtualKey
from llm_console.db.records import LogRecord, SpanRecord
from tests.conftest import fresh_postgres

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0, month: int = 3) -> datetime:
    """A UTC instant in 2026 (March unless told)."""
    return datetime(2026, month, day, hour, minute, second, micro, tzinfo=UTC)


def rec(
    when: datetime,
    *,
    id: str | None = None,
    endpoint: str = CHAT,
    alias: str = "gpt",
    deployment_id: int | None = 1,
    key_id: int | None = None,
    user_id: int | None = None,
    team_id: int | None = None,
    status: str = "ok",
    stream: bool = False,
    prompt: int = 0,
    completion: int = 0,
    cached: int = 0,
    cost: float = 0.0,
    latency: float = 100.0,
    ttfb: float | None = None,
    request_body: str | None = None,
    response_body: str | None = None,
    embedding_dims: int | None = None,
    spans: Iterable[tuple[str, float]] = (),
) -> LogRecord:
    """One log record with every figure the tests look at chosen explicitly (everything else zero)."""
    return LogRecord(
        id=id or str(uuid.uuid4()),
        created_at=when,
        endpoint=endpoint,
        alias=alias,
        model=f"upstream-{alias}",
        deployment_id=deployment_id,
        key_id=key_id,
        user_id=user_id,
        team_id=team_id,
        status=status,
        status_code=200 if status == "ok" else 502,
        stream=stream,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cost_usd=cost,
        latency_ms=latency,
        ttfb_ms=ttfb,
        request_body=request_body,
        response_body=response_body,
        embedding_dims=embedding_dims,
        spans=[SpanRecord(name, start, 1.0, attributes={"n": i}) for i, (name, start) in enumerate(spans)],
    )


def write(engine: Engine, *records: LogRecord) -> list[LogRecord]:
    write_batch(engine, list(records))
    return list(records)


def add_rows(engine: Engine, *rows: SQLModel) -> None:
    with Session(engine) as s:
        for row in rows:
            s.add(row)
            s.flush()  # in order, so foreign keys find their parents
        s.commit()


def directory_rows() -> list[SQLModel]:
    """Providers, deployments, users, teams and keys with fixed ids, for name lookups."""
    return [
        Provider(id=1, name="openai-main", api_base="https://api.openai.example"),
        Provider(id=2, name="azure-eu", kind="azure", api_base="https://azure.example"),
        Deployment(id=1, name="gpt-a", provider_id=1, model="gpt-4o"),
        Deployment(id=2, name="gpt-b", provider_id=1, model="gpt-4o-mini"),
        Deployment(id=3, name="gpt-eu", provider_id=2, model="gpt-4o"),
        User(id=1, email="alice@example.com"),
        User(id=2, email="bob@example.com"),
        Team(id=1, name="research"),
        VirtualKey(id=1, key_hash="a" * 64, prefix="sk-abc", name="ci"),
        VirtualKey(id=2, key_hash="b" * 64, prefix="sk-def", name=""),
    ]


def budget(entity: str, entity_id: int, daily: float | None = None, monthly: float | None = None) -> Budget:
    return Budget(entity_type=entity, entity_id=entity_id, daily_usd=daily, monthly_usd=monthly)


def empty_all(engine: Engine) -> None:
    """Delete every row of every application table (children first); far quicker than TRUNCATE on tiny tables."""
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


class Backends:
    """Migrated databases shared by one test module, made on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stack = contextlib.ExitStack()
        self._template: Path | None = None
        self._pg: Engine | None = None

    def sqlite_copy(self, dest: Path) -> Engine:
        if self._template is None:
            template = self.folder / "template.db"
            upgrade(f"sqlite:///{template.as_posix()}")
            with contextlib.closing(sqlite3.connect(template)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file before copying
            self._template = template
        shutil.copyfile(self._template, dest)
        return make_engine(f"sqlite:///{dest.as_posix()}")

    def postgres(self) -> Engine:
        if self._pg is None:
            url = self._stack.enter_context(fresh_postgres())
            upgrade(url)
            self._pg = make_engine(url)
            self._stack.callback(self._pg.dispose)
        empty_all(self._pg)
        return self._pg

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module", name="db_backends")
def backends_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    backends = Backends(tmp_path_factory.mktemp("db-template"))
    yield backends
    backends.close()


@pytest.fixture(params=BACKENDS, name="db")
def db_fixture(request: pytest.FixtureRequest, db_backends: Backends, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database: a SQLite file, or the module's PostgreSQL database emptied."""
    if request.param == "sqlite":
        engine = db_backends.sqlite_copy(tmp_path / "test.db")
        yield engine
        engine.dispose()
    else:
        yield db_backends.postgres()


def backend(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "postgres"


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()
