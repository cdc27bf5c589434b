"""A migrated SQLite database and a SecretBox for service tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade

SECRET_KEY = "unit-test-secret-key-0123456789abcdef"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "services.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{db_path.as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET_KEY)


def everything_stored(engine: Engine, db_path: Path) -> bytes:
    """Every row of every table as text, plus the raw database files: where a leaked secret would show."""
    parts: list[bytes] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            parts += [repr(tuple(row)).encode() for row in conn.execute(select(table))]
    for suffix in ("", "-wal"):
        path = Path(str(db_path) + suffix)
        if path.exists():
            parts.append(path.read_bytes())
    return b"\n".join(parts)


@pytest.fixture(autouse=True)
def _no_llmc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LLMC_")]:
        monkeypatch.delenv(name)
