"""Configuration announcements over the real Redis: heard by every listener of the installation (and not by
another installation's), a failing callback does not end the subscription, and Redis being away never
raises into the service that changed something or crashes the listener."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from llm_console.services import config_bus
from llm_console.services.config_bus import announce, listen
from llm_console.services.limits_admin import BudgetLimits, RateLimits
from llm_console.services.tier_admin import save_tier
from llm_console.settings import Settings
from tests.conftest import REDIS_URL, missing_service
from tests.limits.conftest import redis_available


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, env="dev", _env_file=None, **kw)  # type: ignore[call-arg]


@pytest.fixture
def redis_settings(tmp_path: Path) -> Settings:
    if not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    return settings(tmp_path, redis_url=REDIS_URL, redis_prefix=f"bus-{uuid.uuid4().hex[:10]}")


async def wait_for(condition: Any, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not heard in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def listening(s: Settings, on_change: Any) -> Any:
    ready = asyncio.Event()
    task = asyncio.create_task(listen(s, on_change, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 5)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_every_listener_of_the_installation_hears_an_announcement(
    redis_settings: Settings, tmp_path: Path
) -> None:
    heard: list[str] = []
    other = settings(tmp_path, redis_url=REDIS_URL, redis_prefix=f"bus-{uuid.uuid4().hex[:10]}")
    async with (
        listening(redis_settings, lambda: heard.append("a")),
        listening(redis_settings, lambda: heard.append("b")),
        listening(other, lambda: heard.append("other installation")),
    ):
        assert await asyncio.to_thread(announce, redis_settings, "tier")
        await wait_for(lambda: len(heard) == 2)
        await asyncio.sleep(0.2)
    assert sorted(heard) == ["a", "b"]


async def test_a_failing_callback_does_not_end_the_subscription(redis_settings: Settings) -> None:
    calls: list[int] = []

    def on_change() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    async with listening(redis_settings, on_change) as task:
        await asyncio.to_thread(announce, redis_settings)
        await wait_for(lambda: len(calls) == 1)
        await asyncio.to_thread(announce, redis_settings)
        await wait_for(lambda: len(calls) == 2)
        assert not task.done()


async def test_services_announce_after_their_commit(redis_settings: Settings, engine: Any) -> None:
    heard: list[int] = []
    async with listening(redis_settings, lambda: heard.append(1)):
        await asyncio.to_thread(
            lambda: save_tier(
                engine,
                role="admin",
                actor="root",
                tier_id=None,
                name="Free",
                description="",
                rank=0,
                limits=RateLimits(rpm=5),
                budget=BudgetLimits(),
                settings=redis_settings,
            )
        )
        await wait_for(lambda: heard == [1])


def test_without_redis_there_is_nothing_to_announce(tmp_path: Path) -> None:
    assert announce(settings(tmp_path)) is False


def test_an_unreachable_redis_never_raises_into_the_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    assert announce(settings(tmp_path, redis_url="redis://127.0.0.1:1/0")) is False
    assert time.monotonic() - started < config_bus.PUBLISH_TIMEOUT_S + 1
    assert "could not announce" in caplog.text


async def test_the_listener_keeps_retrying_while_redis_is_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_bus, "BACKOFF_S", (0.01,))
    task = asyncio.create_task(listen(settings(tmp_path, redis_url="redis://127.0.0.1:1/0"), lambda: None))
    await asyncio.sleep(0.3)
    assert not task.done()  # still trying, not crashed
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
