"""Two gateway processes sharing nothing but PostgreSQL and Redis, driven at the same time with the official
`openai` SDK: together they stay within a key's RPM and its budget (plus one reservation), and a key revoked
through one is refused by the other within the documented bound (LLMC_ROUTE_REFRESH_INTERVAL_S)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine, session
from llm_console.db.models import RateLimit, RequestLog
from llm_console.services.audit import record
from llm_console.services.budgets import set_budget
from llm_console.services.deployments import set_price
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.limits_admin import BudgetLimits, RateLimits
from llm_console.services.tier_admin import assign_tier, save_tier
from llm_console.settings import Settings
from tests.conftest import REDIS_URL, cli_env, free_port, fresh_postgres, missing_service, spawn, stop, wait_http
from tests.integration.fixtures_gateway import SIM_CHAT_MODEL, run_cli_batch, simulator

ALIAS = "chat"
REFRESH_S = 1.0
RPM = 60


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str]]:
    """(the two gateways' /v1 URLs, the PostgreSQL URL)."""
    with start_replicas(tmp_path_factory.mktemp("replicas"), REFRESH_S) as (urls, db, _):
        yield urls, db


@contextlib.contextmanager
def start_replicas(logs: Path, refresh_s: float) -> Iterator[tuple[list[str], str, str]]:
    """Two gateways on one fresh PostgreSQL database and Redis: (their /v1 URLs, the database URL, the Redis
    prefix)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"replicas-{uuid.uuid4().hex[:10]}"
    with fresh_postgres() as db, simulator(logs) as sim:
        env = cli_env(
            logs,
            LLMC_ENV="dev",
            LLMC_DATABASE_URL=db,
            LLMC_REDIS_URL=REDIS_URL,
            LLMC_REDIS_PREFIX=prefix,
            LLMC_SECRET_KEY="replica-test-secret-0123456789",
            LLMC_KEY_CACHE_TTL_S="300",  # revocations must arrive through the refresh, not a short cache
            LLMC_ROUTE_REFRESH_INTERVAL_S=str(refresh_s),
            LLMC_LOG_FLUSH_INTERVAL_S="0.1",
            LLMC_HEALTH_CHECK_INTERVAL_S="0",
        )
        add = ["add-deployment", ALIAS, f"{sim}/v1", "--model", SIM_CHAT_MODEL, "--allow-private"]
        run_cli_batch(env, [["migrate"], add])
        procs, urls = [], []
        try:
            for i in range(2):
                port = free_port()
                cmd = [sys.executable, "-m", "llm_console.cli", "gateway", "--port", str(port)]
                procs.append(spawn(cmd, env, logs / f"gateway-{i}.log"))
                urls.append(f"http://127.0.0.1:{port}")
            for url, proc in zip(urls, procs, strict=True):
                wait_http(f"{url}/gateway/health", 60, proc)
            yield [f"{u}/v1" for u in urls], db, prefix
        finally:
            for proc in procs:
                stop(proc)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
            if keys:
                client.delete(*keys)


async def drive(urls: list[str], secret: str, n: int, concurrency: int, **extra: object) -> list[int]:
    """`n` chat calls spread over both replicas, `concurrency` at a time; the status of each."""
    clients = [openai.AsyncOpenAI(base_url=u, api_key=secret, max_retries=0, timeout=30) for u in urls]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            try:
                await clients[i % len(clients)].chat.completions.create(
                    model=ALIAS,
                    messages=[{"role": "user", "content": f"hello {i}"}],
                    **extra,  # type: ignore[arg-type]
                )
            except openai.APIStatusError as exc:
                return exc.status_code
            return 200

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        for c in clients:
            await c.close()


def limit(engine: object, key_id: int, **values: int) -> None:
    with session(engine) as s:  # type: ignore[arg-type]
        s.add(RateLimit(entity_type="key", entity_id=key_id, **values))
        record(s, actor="test", action="limits.set", target_type="rate_limit", target_id=f"key:{key_id}")
        s.commit()


async def test_two_replicas_together_stay_within_rpm(replicas: tuple[list[str], str]) -> None:
    urls, db = replicas
    engine = make_engine(db)
    key = create_key(engine, name="rpm", actor="test")
    limit(engine, key.id, rpm=RPM)
    started = time.monotonic()
    codes = await drive(urls, key.secret, 3 * RPM, concurrency=24)
    elapsed = time.monotonic() - started
    assert elapsed < 55, "the drive must fit in one window for the count to mean anything"
    admitted = codes.count(200)
    assert set(codes) <= {200, 429}
    assert RPM <= admitted <= RPM * 1.01, (admitted, elapsed)
    engine.dispose()


async def test_two_replicas_together_stay_within_a_budget_plus_one_reservation(
    replicas: tuple[list[str], str],
) -> None:
    urls, db = replicas
    engine = make_engine(db)
    set_price(engine, model=SIM_CHAT_MODEL, input_per_mtok=100.0, output_per_mtok=100.0, actor="test")
    key = create_key(engine, name="budget", actor="test")
    budget = 0.02  # USD: about a dozen calls of ~15 prompt and <= 20 completion tokens
    set_budget(engine, "key", key.id, daily_usd=budget, monthly_usd=None, actor="test")
    await asyncio.sleep(REFRESH_S * 2.5)  # both replicas load the price with their route table
    codes = await drive(urls, key.secret, 80, concurrency=16, max_tokens=20)
    assert set(codes) <= {200, 429} and 429 in codes
    with engine.connect() as conn:
        for _ in range(50):  # the replicas flush their log rows every 0.1 s
            count, spent = conn.execute(
                select(func.count(), func.coalesce(func.sum(RequestLog.cost_usd), 0.0)).where(  # type: ignore[arg-type]
                    RequestLog.key_id == key.id, RequestLog.status == "ok"
                )
            ).one()
            if count == codes.count(200):
                break
            await asyncio.sleep(0.1)
            conn.rollback()
    body = len(b'{"messages":[{"role":"user","content":"hello 79"}],"model":"chat","max_tokens":20}')
    reservation = (body // 4 + 1 + 20) * 100.0 / 1e6
    assert count == codes.count(200)
    assert spent <= budget + reservation, (spent, budget, reservation)
    assert spent >= budget - reservation  # the budget was usable nearly to the end
    engine.dispose()


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_the_bound(
    replicas: tuple[list[str], str],
) -> None:
    urls, db = replicas
    engine = make_engine(db)
    key = create_key(engine, name="revoked", actor="test")
    assert await drive(urls, key.secret, 4, concurrency=2) == [200] * 4  # both replicas now cache the key
    assert revoke_key(engine, key.id, actor="test")
    revoked_at = time.monotonic()
    refused_at: dict[int, float] = {}
    while len(refused_at) < 2 and time.monotonic() - revoked_at < 15:
        for i, url in enumerate(urls):
            if i not in refused_at and (await drive([url], key.secret, 1, 1)) == [401]:
                refused_at[i] = time.monotonic() - revoked_at
        await asyncio.sleep(0.05)
    assert set(refused_at) == {0, 1}
    bound = REFRESH_S + 1.0  # one refresh interval, plus the stamp query and scheduling on a busy machine
    assert max(refused_at.values()) <= bound, refused_at
    engine.dispose()


@pytest.fixture
def quiet_replicas(tmp_path: Path) -> Iterator[tuple[list[str], str, Settings]]:
    """Two replicas whose refresh loops wait 60 s: within a test, only the Redis announcement tells them of a
    change. (their /v1 URLs, the database URL, settings a service in this process announces with)"""
    with start_replicas(tmp_path, 60.0) as (urls, db, prefix):
        yield urls, db, Settings(database_url=db, redis_url=REDIS_URL, redis_prefix=prefix, _env_file=None)  # type: ignore[call-arg]


async def test_a_tier_change_applies_on_the_next_request_of_every_replica(
    quiet_replicas: tuple[list[str], str, Settings],
) -> None:
    urls, db, settings = quiet_replicas
    engine = make_engine(db)
    try:
        await _tier_changes_apply_at_once(urls, engine, settings)
    finally:
        engine.dispose()


async def _tier_changes_apply_at_once(urls: list[str], engine: Engine, settings: Settings) -> None:
    key = create_key(engine, name="tiered", actor="test")

    def tier(tier_id: int | None, rpm: int) -> int:
        view = save_tier(
            engine,
            role="admin",
            actor="test",
            tier_id=tier_id,
            name="Tiny",
            description="",
            rank=0,
            limits=RateLimits(rpm=rpm),
            budget=BudgetLimits(),
            settings=settings,
        )
        return view.id

    tier_id = tier(None, 2)
    assign_tier(
        engine, role="admin", actor="test", entity_type="key", entity_id=key.id, tier_id=tier_id, settings=settings
    )
    # One call on each replica uses the tier's 2 RPM (counted together in Redis); both now cache the key.
    assert [(await drive([u], key.secret, 1, 1))[0] for u in urls] == [200, 200]
    assert [(await drive([u], key.secret, 1, 1))[0] for u in urls] == [429, 429]

    async def next_answers(expected: int) -> dict[int, float]:
        """Per replica, how long after the change its first call got `expected` (polling up to 1 s)."""
        changed, seen = time.monotonic(), {}
        while len(seen) < len(urls) and time.monotonic() - changed < 1.0:
            for i, url in enumerate(urls):
                if i not in seen and (await drive([url], key.secret, 1, 1)) == [expected]:
                    seen[i] = time.monotonic() - changed
            await asyncio.sleep(0.02)
        return seen

    tier(tier_id, 100)  # raised: both replicas admit again at once, 60 s before their refresh loops would look
    assert set(await next_answers(200)) == {0, 1}
    tier(tier_id, 3)  # lowered below the 4 calls admitted this minute: both refuse at once
    assert set(await next_answers(429)) == {0, 1}
