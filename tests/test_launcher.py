"""`llm-console run`'s worker knob: passed to Reflex's prod server, refused where workers could not share state."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_console import launcher
from llm_console.settings import Settings


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[arg-type]


def test_console_workers_reach_reflex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")  # no npm lookup
    monkeypatch.delenv("GRANIAN_WORKERS", raising=False)
    env = launcher.reflex_env(settings(tmp_path, redis_url="redis://redis:6379/0", console_workers=3), 3000)
    assert env["GRANIAN_WORKERS"] == "3" and env["REFLEX_USE_GRANIAN"] == "true"
    assert env["LLMC_REDIS_URL"] == "redis://redis:6379/0"
    assert "GRANIAN_WORKERS" not in launcher.reflex_env(settings(tmp_path), 3000)  # 0: Reflex decides


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="LLMC_CONSOLE_WORKERS above 1 needs LLMC_REDIS_URL"):
        launcher.run_console(settings(tmp_path, console_workers=2), demo=False, port=3999)
    assert not (tmp_path / "llm_console.db").exists(), "refused before touching the database"
