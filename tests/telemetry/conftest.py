"""A migrated SQLite database, a SecretBox, settings without LLMC_* from the environment, and the receiver."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.settings import Settings
from tests.telemetry.receiver import Receiver, Running

SECRET_KEY = "telemetry-test-secret-key-0123456789"


@pytest.fixture(autouse=True)
def _no_llmc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("LLMC_", "LANGFUSE_", "OTEL_"))]:
        monkeypatch.delenv(name)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "telemetry.db"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy (migrating takes most of a second)."""
    path = tmp_path_factory.mktemp("telemetry-template") / "template.db"
    upgrade(f"sqlite:///{path.as_posix()}")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file before copying
    return path


@pytest.fixture
def engine(db_path: Path, migrated_template: Path) -> Iterator[Engine]:
    shutil.copyfile(migrated_template, db_path)
    eng = make_engine(f"sqlite:///{db_path.as_posix()}")
    yield eng
    eng.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET_KEY)


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings for a test: a data folder of its own, the receiver on 127.0.0.1 allow-listed, quick status."""
    base: dict[str, Any] = {
        "env": "dev",
        "data_dir": tmp_path,
        "upstream_allowlist": ["127.0.0.1/32"],
        "telemetry_status_interval_s": 0.2,
        "telemetry_export_timeout_s": 3.0,
    }
    return Settings(**(base | values))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Running(Receiver())
    yield running.receiver
    running.stop()
