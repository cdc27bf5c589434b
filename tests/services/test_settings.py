"""Settings refuse placeholder secrets outside dev, generate one secret key once, and default under data_dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_console.settings import PLACEHOLDER_SECRETS, SECRET_KEY_FILE, Settings

REAL_SECRET = "q7Lw0yQ2b9XkP4sV8nR1tZ6m"


def settings(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize("value", [*sorted(PLACEHOLDER_SECRETS), "CHANGEME", "short-but-real"])
def test_placeholder_or_short_secret_is_refused_outside_dev(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError, match="LLMC_SECRET_KEY"):
        settings(env="prod", data_dir=tmp_path, secret_key=value)


@pytest.mark.parametrize("value", ["changeme", "dev"])
def test_placeholder_secret_is_accepted_in_dev(tmp_path: Path, value: str) -> None:
    s = settings(env="dev", data_dir=tmp_path, secret_key=value)
    assert s.resolved_secret_key() == value
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_real_secret_is_accepted_in_prod(tmp_path: Path) -> None:
    s = settings(env="prod", data_dir=tmp_path, secret_key=REAL_SECRET)
    assert s.resolved_secret_key() == REAL_SECRET
    assert REAL_SECRET not in repr(s)


def test_env_defaults_to_prod() -> None:
    assert settings().env == "prod"


def test_placeholder_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMC_SECRET_KEY", "changeme")
    with pytest.raises(ValidationError):
        settings()


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = settings(data_dir=data_dir).resolved_secret_key()

    path = data_dir / SECRET_KEY_FILE
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert path.read_text() == first
    assert settings(data_dir=data_dir).resolved_secret_key() == first  # a restart keeps the same key
    assert settings(data_dir=tmp_path / "other").resolved_secret_key() != first


def test_database_url_defaults_to_sqlite_under_data_dir(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path / "d")
    assert s.database_url == f"sqlite:///{(tmp_path / 'd' / 'llm_console.db').as_posix()}"
    assert s.is_sqlite


def test_explicit_database_url_wins(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path, database_url="postgresql://u@db/llmc")
    assert s.database_url == "postgresql://u@db/llmc"
    assert not s.is_sqlite


def test_values_come_from_llmc_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LLMC_MAX_REQUEST_BODY_BYTES", "2048")
    s = settings()
    assert s.data_dir == tmp_path
    assert s.max_request_body_bytes == 2048


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_request_body_bytes", 10), ("log_queue_size", 1), ("key_cache_ttl_s", -1), ("log_flush_interval_s", 0)],
)
def test_out_of_range_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        settings(**{field: value})


def test_redis_limits_need_a_redis_url_and_the_zone_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LLMC_LIMITS_BACKEND=redis needs LLMC_REDIS_URL"):
        settings(data_dir=tmp_path, limits_backend="redis")
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        settings(data_dir=tmp_path, budget_timezone="Mars/Olympus")
    assert settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0").uses_redis_limits  # auto: Redis
    assert not settings(data_dir=tmp_path).uses_redis_limits
