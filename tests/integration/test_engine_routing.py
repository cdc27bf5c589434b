"""Engine-aware routing across real processes: two simulator servers behind one alias, a standalone
`llm-console gateway`, and this test process running the fleet's real `engines_loop` against the same database
(as the console's "fleet-engines" leader would). Traffic sent with the official `openai` SDK goes where the
engine queues say while samples are fresh, and where the alias's fallback strategy says once they go stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import httpx
import openai
import pytest
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.fleet.collector import engines_loop
from llm_console.fleet.routing_signals import fresh_engine_rows
from llm_console.gateway.balancer import Balancer
from llm_console.gateway.routing import load_route_table
from llm_console.gateway.ssrf import AllowList
from llm_console.gateway.upstream import UpstreamClient
from llm_console.services.deployments import set_price
from llm_console.services.routing_rules import RuleChange, get_rule, save_rule
from llm_console.settings import Settings
from tests.integration.fixtures_gateway import Deployment, Gateway, gateway, simulator

ALIAS = "chat-x"
CHEAP, DEAR = "sim-cheap", "sim-dear"  # two names for the same simulated model, priced apart
INTERVAL_S = 0.5  # scrape, and gateways read the samples, this often
STALE_S = 2.0
REFRESH_S = 0.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str, str]]:
    """(the gateway, the busy simulator's root, the idle one's root).

    The busy one generates one sequence at a time, slowly, so calls sent to it queue as vLLM's do; the idle
    one answers at once. Both serve both model names, so the alias's two deployments differ only in price.
    """
    logs = tmp_path_factory.mktemp("engine-routing")
    models = ("--models", f"{CHEAP},{DEAR}")
    slow = ("--max-num-seqs", "1", "--ttft-ms", "200", "--tps", "20")
    with simulator(logs, *models, *slow) as busy, simulator(logs, *models) as idle:
        deployments = [Deployment(ALIAS, f"{busy}/v1", CHEAP), Deployment(ALIAS, f"{idle}/v1", DEAR)]
        settings = {
            "LLMC_FLEET_ENGINE_INTERVAL_S": str(INTERVAL_S),
            "LLMC_FLEET_ENGINE_STALE_S": str(STALE_S),
            "LLMC_ROUTE_REFRESH_INTERVAL_S": str(REFRESH_S),
            "LLMC_HEALTH_CHECK_INTERVAL_S": "0",
        }
        with gateway(logs, deployments, **settings) as gw:
            yield gw, busy, idle


@contextlib.asynccontextmanager
async def held_open(base: str, n: int) -> AsyncIterator[None]:
    """`n` long streamed calls sent straight to one simulator (not through the gateway), cancelled on exit."""

    async def one(client: httpx.AsyncClient) -> None:
        body = {"model": CHEAP, "messages": [{"role": "user", "content": "x"}], "max_tokens": 200, "stream": True}
        async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
            async for _ in resp.aiter_bytes():
                pass

    async with httpx.AsyncClient(timeout=120) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(n)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def scraping(engine: Engine, database_url: str) -> AsyncIterator[None]:
    """The fleet's engine loop, as the console runs it: scrape every deployment's /metrics through the guarded
    upstream client, store the readings in fleet_engines (where every gateway process reads them)."""
    table = load_route_table(engine, SecretBox("engine-routing-test-secret-0123456789"))
    allow = AllowList.parse(table.allowlist)  # add-deployment --allow-private put the simulators' address there
    client = UpstreamClient(lambda: allow)
    await client.start()
    runtime = SimpleNamespace(
        routes=table, upstream=client, balancer=Balancer(failure_threshold=3, cooldown_s=30)
    )  # only its signals are fed here; the gateway process routes
    settings = Settings(database_url=database_url, fleet_engine_interval_s=INTERVAL_S)
    task = asyncio.create_task(engines_loop(engine, settings, runtime))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def until(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def drive(gw: Gateway, n: int, concurrency: int) -> Counter[int]:
    """`n` chat calls through the gateway with the openai SDK; how many each deployment served (its log rows)."""
    gate = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=10) as client:

        async def one(i: int) -> str:
            async with gate:
                raw = await client.chat.completions.with_raw_response.create(
                    model=ALIAS, messages=[{"role": "user", "content": f"call {i}"}], max_tokens=1
                )
                raw.parse()
                return raw.headers["x-request-id"]

        ids = await asyncio.gather(*(one(i) for i in range(n)))
    rows = await asyncio.to_thread(gw.wait_rows, ids)
    assert all(r.status_code == 200 for r in rows.values())
    return Counter(r.deployment_id for r in rows.values() if r.deployment_id is not None)


def engine_idle(base: str) -> bool:
    """Nothing running or waiting on the simulator at `base` (read straight from its /metrics)."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    gauges = ("vllm:num_requests_running", "vllm:num_requests_waiting")
    return all(f'{name}{{model_name="{CHEAP}"}} 0.0' in text for name in gauges)


async def test_traffic_follows_engine_queues_then_the_alias_fallback(stack: tuple[Gateway, str, str]) -> None:
    gw, busy, _idle = stack
    started = time.monotonic()
    engine = make_engine(gw.database_url)
    try:
        ids = {link.model: link.deployment_id for link in get_rule(engine, ALIAS).links}
        weights = dict.fromkeys(ids.values(), 1)
        # Through the routing editor's service: engine-aware, fallback left at the default (least busy).
        save_rule(engine, alias=ALIAS, change=RuleChange("engine_aware", weights), actor="test")
        set_price(engine, model=CHEAP, input_per_mtok=0.1, output_per_mtok=0.2, actor="test")
        set_price(engine, model=DEAR, input_per_mtok=3.0, output_per_mtok=15.0, actor="test")

        async with held_open(busy, 8), scraping(engine, gw.database_url):

            def queue_seen() -> bool:
                rows = {row[0]: row for row in fresh_engine_rows(engine, STALE_S)}
                return ids[DEAR] in rows and ids[CHEAP] in rows and rows[ids[CHEAP]][1] >= 3

            await until(queue_seen, 15, "the busy engine's queue in fleet_engines")
            await asyncio.sleep(2 * max(INTERVAL_S, REFRESH_S) + 0.5)  # the gateway reads samples and the rule
            rows = {row[0]: row for row in fresh_engine_rows(engine, STALE_S)}
            assert rows[ids[CHEAP]][1] >= 3 and rows[ids[DEAR]][1] == 0, rows  # (waiting) busy queued, idle not
            fresh = await drive(gw, 40, concurrency=4)
        phase1_s = time.monotonic() - started
        # Cheaper, and weighted 1:1, yet the queued engine gets (almost) nothing while samples are fresh.
        assert fresh[ids[DEAR]] >= 36, fresh

        # Scraping stopped; the busy engine drains. The alias now falls back to the lowest cost.
        stopped = time.monotonic()
        pinned = RuleChange("engine_aware", weights, engine_fallback="lowest_cost")
        assert save_rule(engine, alias=ALIAS, change=pinned, actor="test") is True
        await until(lambda: engine_idle(busy), 20, "the busy simulator to drain")
        await asyncio.sleep(max(0.0, STALE_S + 2 * INTERVAL_S + 0.5 - (time.monotonic() - stopped)))
        assert fresh_engine_rows(engine, STALE_S) == []  # every sample is stale now, in the gateway too
        stale = await drive(gw, 20, concurrency=2)
        # The lowest-cost fallback picks the cheap (formerly busy) deployment; least-busy would split 50/50
        # and engine-aware on the last samples would pick the other one.
        assert stale[ids[CHEAP]] >= 18, stale
    finally:
        engine.dispose()
    total_s = time.monotonic() - started
    print(f"engine-aware phase {phase1_s:.1f} s, whole test {total_s:.1f} s; fresh {fresh}, stale {stale}")
    assert total_s < 60
