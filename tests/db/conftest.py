"""Fresh databases for storage tests: a migrated SQLite file, and a throw-away PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = sqlite_url(tmp_path / "test.db")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A new empty PostgreSQL database (see tests/conftest.py: skips locally, fails under CI=true)."""
    return postgres_database
