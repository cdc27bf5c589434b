"""Leader election against the real Redis: one runner per job, takeover within the TTL, clean release.

Each "process" is a `run_as_leader` task with its own Redis client (its own connections), so the lock is
the only thing the contenders share. Job names are unique per test; only their own keys are touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from llm_console.services.leader import holder_identity, leader_status, lock_key, run_as_leader
from llm_console.settings import Settings
from tests.conftest import REDIS_URL, free_port, missing_service

TTL = 1.0
SLACK = 1.0  # scheduling noise on a busy two-core machine


def settings(redis_url: str | None) -> Settings:
    return Settings(redis_url=redis_url, _env_file=None)  # type: ignore[call-arg]


def client_at(url: str = REDIS_URL) -> Redis:
    return Redis.from_url(url, socket_timeout=TTL / 4, socket_connect_timeout=TTL / 4)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    probe = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)  # a busy machine is not "away"
    try:
        await probe.execute_command("PING")
    except RedisError as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await probe.aclose()
    client = client_at()
    yield client
    await client.aclose()


@pytest.fixture
async def job_name(redis: Redis) -> AsyncIterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    await redis.delete(lock_key(name))


class Runs:
    """What each contender's job did, and how many ran at once (must never exceed one)."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}
        self.stops: dict[str, list[float]] = {}
        self.running: set[str] = set()
        self.most_at_once = 0

    def job(self, who: str) -> Callable[[], Awaitable[None]]:
        async def body() -> None:
            self.starts.setdefault(who, []).append(time.monotonic())
            self.running.add(who)
            self.most_at_once = max(self.most_at_once, len(self.running))
            try:
                await asyncio.Event().wait()  # a background loop: runs until cancelled
            finally:
                self.running.discard(who)
                self.stops.setdefault(who, []).append(time.monotonic())

        return body


async def until(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until `check()` held; fails the test after `timeout_s`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, f"condition not met within {timeout_s:.1f}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def contend(name: str, runs: Runs, who: str, client: Redis) -> asyncio.Task[None]:
    return asyncio.create_task(run_as_leader(name, runs.job(who), settings(REDIS_URL), ttl_s=TTL, client=client))


class CuttableProxy:
    """A TCP hop to Redis that the test can cut: the process behind it loses Redis, nobody else does."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        target = urlsplit(REDIS_URL)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        parts = urlsplit(REDIS_URL)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def test_without_redis_the_job_simply_runs() -> None:
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    await asyncio.wait_for(run_as_leader("retention", job, settings(None)), 2)
    assert ran == [True]
    assert await leader_status(settings(None)) is None


async def test_two_contenders_exactly_one_runs(redis: Redis, job_name: str) -> None:
    runs, a_client, b_client = Runs(), client_at(), client_at()
    a = contend(job_name, runs, "a", a_client)
    b = contend(job_name, runs, "b", b_client)
    try:
        await until(lambda: bool(runs.running), TTL + SLACK)
        await asyncio.sleep(3 * TTL)  # several renewals and retries
        assert runs.most_at_once == 1
        assert len(runs.starts) == 1 and len(next(iter(runs.starts.values()))) == 1, runs.starts
        holder = (await redis.get(lock_key(job_name))).decode()
        assert holder.startswith(holder_identity() + ":")
        assert 0 < await redis.pttl(lock_key(job_name)) <= TTL * 1000
        status = [s for s in await leader_status(settings(REDIS_URL), client=redis) or [] if s.job == job_name]
        assert len(status) == 1 and status[0].holder == holder_identity() and 0 < status[0].expires_in_s <= TTL
    finally:
        await stop(a, b)
        await a_client.aclose()
        await b_client.aclose()
    assert not runs.running
    assert await redis.exists(lock_key(job_name)) == 0, "shutdown releases the lock"


async def test_shutdown_hands_over_at_once(redis: Redis, job_name: str) -> None:
    runs, a_client, b_client = Runs(), client_at(), client_at()
    tasks = [contend(job_name, runs, "a", a_client)]
    try:
        await until(lambda: "a" in runs.running, TTL + SLACK)
        tasks.append(contend(job_name, runs, "b", b_client))
        await asyncio.sleep(TTL)
        assert "b" not in runs.starts
        a_token = await redis.get(lock_key(job_name))
        await stop(tasks[0])
        assert runs.stops["a"], "cancelling the leader cancels its job"
        assert await redis.get(lock_key(job_name)) != a_token, "its lock was deleted, not left to expire"
        # Released, not left to expire: the waiting one retries every ~TTL/2 and finds it free.
        waited = await until(lambda: "b" in runs.running, TTL / 2 + SLACK)
        assert waited <= TTL / 2 + SLACK
        assert runs.most_at_once == 1
    finally:
        await stop(*tasks)
        await a_client.aclose()
        await b_client.aclose()


async def test_a_holder_that_loses_redis_stops_and_is_replaced_within_the_ttl(redis: Redis, job_name: str) -> None:
    proxy = CuttableProxy()
    runs, a_client, b_client = Runs(), client_at(await proxy.start()), client_at()
    tasks = [contend(job_name, runs, "a", a_client)]
    try:
        await until(lambda: "a" in runs.running, TTL + SLACK)
        tasks.append(contend(job_name, runs, "b", b_client))
        await asyncio.sleep(TTL)
        cut_at = time.monotonic()
        await proxy.cut()  # "a" can no longer renew: as if its host dropped off the network
        await until(lambda: "b" in runs.running, 1.5 * TTL + SLACK)
        assert runs.stops["a"][0] - cut_at <= TTL, "the cut-off holder stops its job before its lock can expire"
        assert runs.stops["a"][0] < runs.starts["b"][0], "never two at once: the old job stopped first"
        assert runs.starts["b"][0] - cut_at <= 1.5 * TTL + SLACK
        assert runs.most_at_once == 1
        assert not tasks[0].done(), "the cut-off process keeps waiting for Redis; it does not crash"
    finally:
        await stop(*tasks)
        await a_client.aclose()
        await b_client.aclose()


async def test_a_lock_someone_else_took_stops_the_job_and_is_not_extended(redis: Redis, job_name: str) -> None:
    runs, a_client = Runs(), client_at()
    a = contend(job_name, runs, "a", a_client)
    try:
        await until(lambda: "a" in runs.running, TTL + SLACK)
        await redis.set(lock_key(job_name), "intruder", px=int(2 * TTL * 1000))
        await until(lambda: "a" not in runs.running, TTL / 3 + SLACK)
        await asyncio.sleep(TTL / 2)
        assert "a" not in runs.running, "no job while another token holds the lock"
        assert (await redis.get(lock_key(job_name))) == b"intruder"
        assert await redis.pttl(lock_key(job_name)) < 2 * TTL * 1000 - 300, "renewals never extend a foreign lock"
        # Once the intruder's lock expires, the waiting process takes it again.
        await until(lambda: "a" in runs.running, 2 * TTL + SLACK)
        assert len(runs.starts["a"]) == 2
    finally:
        await stop(a)
        await a_client.aclose()
    assert await redis.get(lock_key(job_name)) is None


async def test_a_deleted_lock_is_taken_again_by_one(redis: Redis, job_name: str) -> None:
    runs, a_client, b_client = Runs(), client_at(), client_at()
    a = contend(job_name, runs, "a", a_client)
    b = contend(job_name, runs, "b", b_client)
    try:
        await until(lambda: bool(runs.running), TTL + SLACK)
        first = next(iter(runs.running))
        await redis.delete(lock_key(job_name))
        await until(lambda: runs.stops.get(first) is not None, TTL / 3 + SLACK)
        await until(lambda: bool(runs.running), 1.5 * TTL + SLACK)
        await asyncio.sleep(TTL)
        assert len(runs.running) == 1
        holder = await redis.get(lock_key(job_name))
        assert holder is not None and holder.decode().startswith(holder_identity())
    finally:
        await stop(a, b)
        await a_client.aclose()
        await b_client.aclose()


async def test_unreachable_redis_runs_nothing_and_does_not_crash(caplog: pytest.LogCaptureFixture) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    runs = Runs()
    caplog.set_level(logging.WARNING, logger="llm_console.leader")
    task = asyncio.create_task(run_as_leader("unreachable", runs.job("a"), settings(closed), ttl_s=TTL))
    await asyncio.sleep(2.5 * TTL)  # several attempts
    assert not runs.starts, "without the lock the job must not run"
    assert not task.done(), "it keeps retrying rather than crashing the lifespan"
    warnings = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1, "logged once per outage, not at every retry"
    await asyncio.wait_for(stop(task), 3)
    with pytest.raises(RedisError):
        await leader_status(settings(closed))


async def test_a_failing_job_is_restarted_and_a_finished_one_releases(redis: Redis, job_name: str) -> None:
    calls: list[float] = []

    async def job() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    client = client_at()
    try:
        await asyncio.wait_for(run_as_leader(job_name, job, settings(REDIS_URL), ttl_s=TTL, client=client), 3 * TTL)
    finally:
        await client.aclose()
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.4 * TTL
    assert await redis.exists(lock_key(job_name)) == 0


async def test_installations_with_their_own_prefix_do_not_share_a_lock(redis: Redis, job_name: str) -> None:
    other = f"llmc-test-{uuid.uuid4().hex[:8]}"
    runs, a_client, b_client = Runs(), client_at(), client_at()
    a = contend(job_name, runs, "a", a_client)
    b_settings = Settings(redis_url=REDIS_URL, redis_prefix=other, _env_file=None)  # type: ignore[call-arg]
    b = asyncio.create_task(run_as_leader(job_name, runs.job("b"), b_settings, ttl_s=TTL, client=b_client))
    try:
        await until(lambda: runs.running == {"a", "b"}, TTL + SLACK)
        assert await redis.exists(lock_key(job_name), lock_key(job_name, other)) == 2
    finally:
        await stop(a, b)
        await a_client.aclose()
        await b_client.aclose()
    assert await redis.exists(lock_key(job_name, other)) == 0
