"""A Limiter over a fresh SQLite database, with counters in this process or in the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.limits.limiter import Limiter
from llm_console.settings import Settings
from tests.conftest import REDIS_URL, missing_service


class Clock:
    """Time the tests set: limits are judged at `now`, never waited for."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, env="dev", _env_file=None, **overrides)  # type: ignore[call-arg]


LimiterFactory = Callable[..., Awaitable[Limiter]]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    return str(request.param)


@pytest_asyncio.fixture
async def make_limiter(tmp_path: Path, backend: str) -> AsyncIterator[LimiterFactory]:
    """Build started limiters on one migrated SQLite file; Redis keys under a prefix of this test's own."""
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    upgrade(url)
    engine = make_engine(url)
    made: list[Limiter] = []
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    async def factory(clock: Clock, **overrides: Any) -> Limiter:
        extra: dict[str, Any] = {"limits_backend": backend, "redis_prefix": prefix, "database_url": url}
        if backend == "redis":
            extra["redis_url"] = REDIS_URL
        limiter = Limiter(settings_for(tmp_path, **{**extra, **overrides}), engine, clock=clock)
        made.append(limiter)
        await limiter.start()
        return limiter

    yield factory
    for limiter in made:
        await limiter.stop()
    engine.dispose()
    if backend == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
        if keys:
            client.delete(*keys)
