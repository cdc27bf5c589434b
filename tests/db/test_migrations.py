"""Alembic brings a fresh SQLite or PostgreSQL database to exactly the schema in `SQLModel.metadata`."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from llm_console.db import migrate, models  # noqa: F401  (models registers the tables)
from llm_console.db.engine import make_engine

from .conftest import sqlite_url, upgrade


def assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert set(SQLModel.metadata.tables) <= tables
            assert tables - set(SQLModel.metadata.tables) == {"alembic_version"}
            for name, table in SQLModel.metadata.tables.items():
                columns = {c["name"] for c in inspect(conn).get_columns(name)}
                assert columns == set(table.columns.keys()), name
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, SQLModel.metadata) == []
            assert ctx.get_current_revision() == migrate_head()
    finally:
        engine.dispose()


def migrate_head() -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No path_separator found", DeprecationWarning)
        head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_expected_tables_exist_in_the_metadata() -> None:
    assert {
        "requests",
        "spans",
        "usage_rollups",
        "budgets",
        "maintenance_runs",
        "virtual_keys",
        "providers",
        "audit_events",
    } <= set(SQLModel.metadata.tables)


def test_upgrade_fresh_sqlite_creates_every_table(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fresh.db")
    upgrade(url)
    assert_schema_matches_models(url)


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "twice.db")
    upgrade(url)
    upgrade(url)
    assert_schema_matches_models(url)


def test_upgrade_creates_the_data_folder(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nested" / "dir" / "x.db")
    upgrade(url)
    assert (tmp_path / "nested" / "dir" / "x.db").is_file()


@pytest.mark.postgres
def test_upgrade_fresh_postgres_creates_every_table(postgres_url: str) -> None:
    upgrade(postgres_url)
    assert_schema_matches_models(postgres_url)


def test_upgrade_emits_no_warnings(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        migrate.upgrade(sqlite_url(tmp_path / "w.db"))
        gc.collect()
    assert [str(w.message) for w in caught] == []


@pytest.mark.postgres
def test_upgrade_leaves_no_connection_open(postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No path_separator found", DeprecationWarning)
        migrate.upgrade(postgres_url)
    try:
        with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            (open_connections,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()  # type: ignore[misc]
        assert open_connections == 0
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
