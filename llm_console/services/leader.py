"""Leader election for background jobs: each job runs in one process across every worker and replica.

Every console worker runs every lifespan task, and every replica runs every worker, so a loop that must
run once (retention, alerts, persisting health results) takes a Redis lock first. The key
`<LLMC_REDIS_PREFIX>:leader:<job>` (`llmc:leader:<job>` by default) is set with SET NX PX and a random
token, renewed every TTL/3 by an atomic compare-and-PEXPIRE and deleted by compare-and-DEL on the way out,
so a process only ever extends or frees its own lock. The job runs only while this process holds the lock
and is cancelled as soon as a renewal fails (the lock went to someone else, or Redis did not answer within
TTL/4), which is about half a TTL after the last good renewal: well before the lock can expire and be
taken elsewhere. Waiting processes try again every ~TTL/2, so a holder that dies is replaced at most
1.5 TTL after its last renewal, and one that shuts down cleanly within TTL/2. Without `LLMC_REDIS_URL`
there is one process to coordinate, so every job simply runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from llm_console.settings import Settings

log = logging.getLogger("llm_console.leader")

# SET NX PX, or extend the lock if it is already ours (a renewal that timed out may still have landed).
ACQUIRE_SCRIPT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
Job = Callable[[], Awaitable[None]]
# A Redis answer slower than this share of the TTL counts as a failure: the holder must notice a dead
# connection and stop its job before the lock it can no longer renew expires.
OP_TIMEOUT_SHARE = 0.25
RELEASE_TIMEOUT_S = 2.0  # shutdown should not wait long for a Redis that is away; the TTL frees the lock anyway


def lock_key(job_name: str, prefix: str = "llmc") -> str:
    """The job's lock key under the installation's Redis prefix, so installations sharing a Redis never collide."""
    return f"{prefix}:leader:{job_name}"


def holder_identity() -> str:
    """This process as lock holders are shown (host and pid); the lock's token adds a random part."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class JobLeader:
    """Who holds one job's lock now, and for how much longer unless it renews."""

    job: str
    holder: str
    expires_in_s: float


class LeaderLock:
    """One job's lock as this process sees it: acquire, renew and release only ever touch our own token."""

    def __init__(self, client: Redis, job_name: str, ttl_s: float, prefix: str = "llmc") -> None:
        if ttl_s <= 0:
            raise ValueError("the leader lock TTL must be positive")
        self.client = client
        self.job_name = job_name
        self.key = lock_key(job_name, prefix)
        self.ttl_s = ttl_s
        self.token = f"{holder_identity()}:{secrets.token_hex(8)}"
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._unreachable = False
        self.held = False  # the lock may be ours in Redis (set on taking it, cleared when surely not ours)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    async def _call(self, op: Callable[[], Awaitable[object]], timeout_s: float | None = None) -> object:
        """Run one Redis command, bounded by a share of the TTL; errors are logged once per outage, then raised."""
        try:
            async with asyncio.timeout(timeout_s or self.ttl_s * OP_TIMEOUT_SHARE):
                result = await op()
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._unreachable:
                log.warning(
                    "leader lock %s: Redis unreachable (%s); the job does not run in this process until it is back",
                    self.job_name,
                    type(exc).__name__,
                )
            self._unreachable = True
            raise
        if self._unreachable:
            log.info("leader lock %s: Redis reachable again", self.job_name)
            self._unreachable = False
        return result

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it (SET NX PX); False when someone else holds it or Redis is away."""
        try:
            done = await self._call(lambda: self._acquire(keys=[self.key], args=[self.token, self._ttl_ms]))
        except (RedisError, OSError, TimeoutError):
            return False
        self.held = done == 1
        return self.held

    async def renew(self) -> bool:
        """Extend our own lock by a TTL; False when it is gone, someone else's, or Redis cannot be reached."""
        try:
            done = await self._call(lambda: self._renew(keys=[self.key], args=[self.token, self._ttl_ms]))
        except (RedisError, OSError, TimeoutError):
            return False  # it may still be ours: `held` stays, so shutdown still tries to release it
        self.held = done == 1
        return self.held

    async def release(self) -> None:
        """Delete the lock if it is still ours, so a waiting process takes over at once rather than after the TTL."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            timeout = min(self.ttl_s * OP_TIMEOUT_SHARE, RELEASE_TIMEOUT_S)
            await self._call(lambda: self._release(keys=[self.key], args=[self.token]), timeout)


async def run_as_leader(
    job_name: str,
    job: Job,
    settings: Settings,
    *,
    ttl_s: float | None = None,
    client: Redis | None = None,
) -> None:
    """Run `job()` in the one process, across every worker and replica, that holds the `job_name` lock.

    Usable as the body of a Reflex lifespan task: it returns when the job returns, and cancelling it
    cancels the job and releases the lock. A job that raises is logged and started again (by whichever
    process then holds the lock) after half a TTL. `ttl_s` defaults to `LLMC_LEADER_TTL_S`; `client`
    (tests, or sharing one pool between jobs) defaults to a new client on `LLMC_REDIS_URL`, closed on exit.
    """
    if client is None and not settings.redis_url:
        await job()  # one replica, one worker: nobody to coordinate with
        return
    ttl = float(ttl_s if ttl_s is not None else settings.leader_ttl_s)
    own = client is None
    if client is None:
        assert settings.redis_url is not None
        timeout = ttl * OP_TIMEOUT_SHARE
        client = Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    lock = LeaderLock(client, job_name, ttl, settings.redis_prefix)
    try:
        while True:
            if await lock.acquire():
                log.info("leader lock %s: taken by %s; the job runs here", job_name, holder_identity())
                if await _lead(lock, job):
                    return
            await asyncio.sleep(ttl / 2 * random.uniform(0.8, 1.0))
    finally:
        await lock.release()
        if own:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


async def _lead(lock: LeaderLock, job: Job) -> bool:
    """Run the job while renewing the lock every TTL/3; True when the job returned by itself.

    A lost renewal cancels the job; a job that fails is logged and the lock released for the next round.
    """

    async def body() -> None:
        await job()

    task = asyncio.create_task(body(), name=f"leader:{lock.job_name}")
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=lock.ttl_s / 3)
            if done:
                if task.cancelled():
                    return True
                exc = task.exception()
                if exc is None:
                    return True
                log.error("leader job %s failed; it restarts after half a TTL", lock.job_name, exc_info=exc)
                await lock.release()
                return False
            if not await lock.renew():
                log.warning("leader lock %s: lost by %s; the job is stopped here", lock.job_name, holder_identity())
                return False
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


async def leader_status(settings: Settings, *, client: Redis | None = None) -> list[JobLeader] | None:
    """Every job lock held now, by job name (for the console); None without Redis, where each process runs its jobs.

    Raises `redis.exceptions.RedisError` when Redis is configured but cannot be reached.
    """
    if client is None and not settings.redis_url:
        return None
    own = client is None
    if client is None:
        assert settings.redis_url is not None
        client = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        out: list[JobLeader] = []
        start = lock_key("", settings.redis_prefix)
        async for raw in client.scan_iter(match=start + "*", count=100):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                value, ttl_ms = await pipe.execute()
            if value is None:
                continue  # expired between the scan and the read
            token = value.decode() if isinstance(value, bytes) else str(value)
            out.append(JobLeader(key[len(start) :], token.rsplit(":", 1)[0], max(0, int(ttl_ms)) / 1000))
        return sorted(out, key=lambda leader: leader.job)
    finally:
        if own:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
