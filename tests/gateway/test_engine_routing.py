"""Engine-aware routing, end to end inside one process: where traffic goes as engine samples say (fake clock,
seeded RNG), what the alias's fallback strategy does once every sample is stale, and the scraper that feeds
it, against real simulator processes and a tiny server without engine metrics."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route as HttpRoute

from llm_console.fleet.engines import NO_METRICS_RETRY_S, EngineScraper, metrics_url
from llm_console.gateway.balancer import KV_FULL, Balancer, EngineSample, EngineSignals
from llm_console.gateway.pricing import Price
from llm_console.gateway.routing import STRATEGIES, Policy, Route, Target
from llm_console.gateway.ssrf import AllowList
from llm_console.gateway.upstream import UpstreamClient
from tests.integration.fixtures_gateway import SIM_CHAT_MODEL, simulator

STALE_S = 15.0
LOOPBACK = AllowList.parse(["127.0.0.0/8"])


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def target(dep_id: int, *, weight: int = 1, price: float | None = None, api_base: str = "", **options: str) -> Target:
    base = api_base or f"http://engine-{dep_id}.test/v1"
    return Target(
        deployment_id=dep_id,
        deployment=f"dep-{dep_id}",
        model=SIM_CHAT_MODEL,
        api_base=base,
        kind="openai",
        api_key=None,
        price=Price(price, price) if price is not None else None,
        weight=weight,
        options=dict(options),
        host=httpx.URL(base).host,
    )


def sample(clock: FakeClock, waiting: float, kv: float = 0.1, running: float = 1) -> EngineSample:
    return EngineSample(waiting=waiting, running=running, kv_cache_usage=kv, at=clock())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bal(clock: FakeClock) -> Balancer:
    signals = EngineSignals(stale_after_s=STALE_S, clock=clock)
    return Balancer(failure_threshold=3, cooldown_s=30, rng=random.Random(7), clock=clock, signals=signals)


def traffic(bal: Balancer, route: Route, n: int = 400) -> Counter[int]:
    """Where `n` requests go one after another (each taken and finished, as the gateway's proxy does)."""
    sent: Counter[int] = Counter()
    for _ in range(n):
        chosen = bal.order(route)[0]
        probe = bal.acquire(chosen)
        bal.release(chosen, ok=True, ttfb_ms=50.0, probe=probe)
        sent[chosen.deployment_id] += 1
    return sent


def test_a_queued_engine_gets_nothing_while_an_idle_one_is_there(bal: Balancer, clock: FakeClock) -> None:
    # The queued engine has 10x the weight: weights only break ties between equally loaded engines.
    busy, idle = target(1, weight=10), target(2)
    bal.signals.update(1, sample(clock, waiting=8))
    bal.signals.update(2, sample(clock, waiting=0))
    assert traffic(bal, Route("x", (busy, idle), "engine_aware")) == {2: 400}
    # The same route under plain weights sends most of it to the queued engine.
    assert traffic(bal, Route("x", (busy, idle), "weighted"))[1] > 300


def test_requests_sent_since_the_sample_count_as_queued_so_the_short_queue_is_not_flooded(
    bal: Balancer, clock: FakeClock
) -> None:
    short, longer = target(1), target(2)
    bal.signals.update(1, sample(clock, waiting=0))
    bal.signals.update(2, sample(clock, waiting=3))
    route = Route("x", (short, longer), "engine_aware")
    held: list[Target] = []
    for _ in range(10):  # ten concurrent requests before the next sample: none finishes
        chosen = bal.order(route)[0]
        bal.acquire(chosen)
        held.append(chosen)
    sent = Counter(t.deployment_id for t in held)
    # 0 + 3 sent on the short queue ties with 3 waiting on the other; from then on they alternate
    assert sent == {1: 6, 2: 4}, sent
    # A new sample taken with those requests in flight already counts them: the gateway's own count restarts.
    bal.signals.update(1, EngineSample(5, 1, 0.1, clock(), inflight_at=bal.state(1).inflight))
    bal.signals.update(2, EngineSample(0, 4, 0.1, clock(), inflight_at=bal.state(2).inflight))
    assert bal.order(route)[0].deployment_id == 2
    for t in held:
        bal.release(t, ok=True)


def test_equal_queues_leave_it_to_kv_cache_headroom(bal: Balancer, clock: FakeClock) -> None:
    a, b, c = target(1), target(2), target(3)
    bal.signals.update(1, sample(clock, waiting=2, kv=0.70))
    bal.signals.update(2, sample(clock, waiting=2, kv=0.20))
    bal.signals.update(3, sample(clock, waiting=2, kv=0.45))
    route = Route("x", (a, b, c), "engine_aware")
    assert traffic(bal, route) == {2: 400}
    assert [t.deployment_id for t in bal.order(route)] == [2, 3, 1]
    # Within one 5 % step of KV use the engines tie, and the weighted tie-break spreads the traffic.
    bal.signals.update(1, sample(clock, waiting=2, kv=0.21))
    sent = traffic(bal, route)
    assert sent[1] > 100 and sent[2] > 100 and sent[3] == 0


def test_a_full_kv_cache_goes_last_even_with_an_empty_queue(bal: Balancer, clock: FakeClock) -> None:
    full, queued, less_queued = target(1, weight=50), target(2), target(3)
    bal.signals.update(1, sample(clock, waiting=0, kv=KV_FULL))
    bal.signals.update(2, sample(clock, waiting=5, kv=0.30))
    bal.signals.update(3, sample(clock, waiting=3, kv=0.60))
    route = Route("x", (full, queued, less_queued), "engine_aware")
    for _ in range(100):
        assert [t.deployment_id for t in bal.order(route)] == [3, 2, 1]
    bal.signals.update(1, sample(clock, waiting=0, kv=KV_FULL - 0.01))  # just under full: its empty queue wins
    assert traffic(bal, route) == {1: 400}


def test_one_stale_engine_loses_to_a_fresh_busier_one(bal: Balancer, clock: FakeClock) -> None:
    went_quiet, fresh = target(1, weight=10), target(2)
    bal.signals.update(1, sample(clock, waiting=0))
    clock.advance(10.0)
    bal.signals.update(2, sample(clock, waiting=6, kv=0.8))
    route = Route("x", (went_quiet, fresh), "engine_aware")
    assert traffic(bal, route, 50) == {1: 50}  # both fresh: the empty queue
    clock.advance(STALE_S - 10.0 + 0.1)  # the first sample is now older than the stale limit
    assert traffic(bal, route) == {2: 400}


@pytest.mark.parametrize("when", ["never_sampled", "all_stale"])
def test_without_fresh_samples_the_alias_fallback_decides(bal: Balancer, clock: FakeClock, when: str) -> None:
    cheap, dear = target(1, weight=1, price=0.1), target(2, weight=3, price=5.0)
    if when == "all_stale":
        bal.signals.update(1, sample(clock, waiting=9))  # stale figures must not matter at all
        bal.signals.update(2, sample(clock, waiting=0))
        clock.advance(STALE_S + 1.0)
    # One request stuck on the cheap deployment: least-busy (the default fallback) would avoid it.
    bal.acquire(cheap)

    def route(fallback: str | None) -> Route:
        policy = Policy.from_settings({"engine_fallback": fallback} if fallback else {})
        return Route("x", (cheap, dear), "engine_aware", policy)

    assert traffic(bal, route(None)) == {2: 400}
    assert traffic(bal, route("least_busy")) == {2: 400}
    assert traffic(bal, route("lowest_cost")) == {1: 400}
    weighted = traffic(bal, route("weighted"), 4000)
    # Weights 1:3 -> 25 % on the cheap one; one standard deviation over 4,000 draws is 0.7 %, the band 4 %.
    assert weighted[1] / 4000 == pytest.approx(0.25, abs=0.04)

    # A fresh sample again: the engine-aware ranking takes over from whatever the fallback is.
    bal.signals.update(1, sample(clock, waiting=0))
    bal.signals.update(2, sample(clock, waiting=4))
    assert traffic(bal, route("lowest_cost"), 50) == {1: 50}
    bal.signals.update(1, sample(clock, waiting=4))
    bal.signals.update(2, sample(clock, waiting=0))
    assert traffic(bal, route("lowest_cost"), 50) == {2: 50}


@pytest.mark.parametrize("value", ["engine_aware", "fastest", "", "LOWEST_COST", 3, None, ["weighted"], True])
def test_policy_refuses_engine_aware_and_junk_as_the_fallback(value: object) -> None:
    assert Policy.from_settings({"engine_fallback": value}).engine_fallback == "least_busy"


@pytest.mark.parametrize("value", [s for s in STRATEGIES if s != "engine_aware"])
def test_policy_keeps_every_other_strategy_as_the_fallback(value: str) -> None:
    assert Policy.from_settings({"engine_fallback": value, "retries": 2}).engine_fallback == value


# -- where metrics live -----------------------------------------------------------------------------------


def test_metrics_url_rules() -> None:
    assert metrics_url(target(1, api_base="http://10.0.0.5:8000/v1")) == "http://10.0.0.5:8000/metrics"
    assert metrics_url(target(1, api_base="http://10.0.0.5:8000/")) == "http://10.0.0.5:8000/metrics"
    assert metrics_url(target(1, api_base="http://10.0.0.5:8000/v1", metrics_url="OFF")) is None
    same_host = "http://10.0.0.5:9100/prom"
    assert metrics_url(target(1, api_base="http://10.0.0.5:8000/v1", metrics_url=same_host)) == same_host
    # Another host would let a deployment setting aim the scraper anywhere: ignored.
    assert metrics_url(target(1, api_base="http://10.0.0.5:8000/v1", metrics_url="http://169.254.169.254/")) is None
    hosted = Target(
        2, "claude", "claude", "https://api.anthropic.com", "anthropic", None, None, host="api.anthropic.com"
    )
    assert metrics_url(hosted) is None


# -- the scraper against real servers ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def upstream_client(allow: AllowList = LOOPBACK) -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(lambda: allow)
    await client.start()
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def busy_with(base: str, n: int) -> AsyncIterator[None]:
    """`n` long streamed chat calls held open on `base`; leaving cancels them (the simulator frees the slots)."""

    async def one(client: httpx.AsyncClient) -> None:
        body = {"model": SIM_CHAT_MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": 200}
        async with client.stream("POST", f"{base}/v1/chat/completions", json={**body, "stream": True}) as resp:
            async for _ in resp.aiter_bytes():
                pass

    async with httpx.AsyncClient(timeout=60) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(n)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(busy, idle) simulator roots: one sequence at a time, 300 ms to the first token, 20 tokens/s."""
    logs = tmp_path_factory.mktemp("engine-sims")
    slow = ("--max-num-seqs", "1", "--ttft-ms", "300", "--tps", "20")
    with simulator(logs, *slow) as busy, simulator(logs, *slow) as idle:
        yield busy, idle


async def test_scraping_two_simulators_reads_queues_and_rates(sims: tuple[str, str]) -> None:
    busy, idle = sims
    shared = target(3, api_base=f"{busy}/v1")  # a second deployment on the busy server: scraped once
    targets = [target(1, api_base=f"{busy}/v1"), target(2, api_base=f"{idle}/v1"), shared]
    async with upstream_client() as client, busy_with(busy, 3):
        for _ in range(200):  # until the simulator has taken all three calls
            if (await EngineScraper(client).scrape(targets[:1]))[0].waiting == 2:
                break
            await asyncio.sleep(0.05)
        scraper = EngineScraper(client)
        first = {r.deployment_id: r for r in await scraper.scrape(targets)}
        assert all(r.ok for r in first.values()), first
        assert (first[1].running, first[1].waiting) == (1.0, 2.0)
        assert (first[2].running, first[2].waiting, first[2].kv_cache_usage) == (0.0, 0.0, 0.0)
        assert (first[1].kv_cache_usage or 0) > 0
        assert first[3].values() == first[1].values()
        assert SIM_CHAT_MODEL in first[1].models
        # Throughput needs two scrapes: none on the first one after start.
        assert first[1].generation_tps is None and first[2].generation_tps is None

        await asyncio.sleep(1.5)
        second = {r.deployment_id: r for r in await scraper.scrape(targets)}
    # One sequence at 20 tokens/s, no jitter: up to 20 tokens a second (less while the next one starts up).
    assert second[1].generation_tps is not None and 8 <= second[1].generation_tps <= 26, second[1]
    assert second[2].generation_tps == 0.0 and second[2].prompt_tps == 0.0
    assert second[1].ttft_p50_ms is not None and second[1].ttft_p50_ms >= 100
    assert second[3].generation_tps == second[1].generation_tps


async def test_the_ssrf_guard_applies_to_scrapes(sims: tuple[str, str]) -> None:
    busy, _ = sims
    async with upstream_client(AllowList()) as client:
        scraper = EngineScraper(client)
        [refused] = await scraper.scrape([target(1, api_base=f"{busy}/v1")])
        assert not refused.ok and refused.error and "allow-list" in refused.error, refused.error
        # A refused address is not "no engine metrics": it is asked again next round (the allow-list may change).
        assert not (await scraper.scrape([target(1, api_base=f"{busy}/v1")]))[0].ok


@contextlib.contextmanager
def no_metrics_server() -> Iterator[tuple[str, Counter[str]]]:
    """A tiny server: 404 at /metrics, Prometheus text without vLLM series at /prom (LiteLLM's kind), JSON at
    /json (fakeai's kind); counts requests per path."""
    hits: Counter[str] = Counter()

    async def missing(request: Request) -> PlainTextResponse:
        hits[request.url.path] += 1
        return PlainTextResponse("not found", status_code=404)

    async def other_metrics(request: Request) -> PlainTextResponse:
        hits[request.url.path] += 1
        return PlainTextResponse("# TYPE litellm_requests_total counter\nlitellm_requests_total 3\n")

    async def json_metrics(request: Request) -> JSONResponse:
        hits[request.url.path] += 1
        return JSONResponse({"requests": {}, "latency": {}})

    app = Starlette(
        routes=[HttpRoute("/metrics", missing), HttpRoute("/prom", other_metrics), HttpRoute("/json", json_metrics)]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, ws="none", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", hits
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


async def test_a_server_without_engine_metrics_is_asked_again_only_after_the_retry_interval() -> None:
    clock = FakeClock()
    with no_metrics_server() as (root, hits):
        not_found = target(1, api_base=f"{root}/v1")
        not_vllm = target(2, api_base=f"{root}/v1", metrics_url=f"{root}/prom")
        json = target(3, api_base=f"{root}/v1", metrics_url=f"{root}/json")
        off = target(4, api_base=f"{root}/v1", metrics_url="off")
        elsewhere = target(5, api_base=f"{root}/v1", metrics_url="http://10.1.2.3/metrics")
        every = [not_found, not_vllm, json, off, elsewhere]
        async with upstream_client() as client:
            scraper = EngineScraper(client, clock=clock)
            readings = {r.deployment_id: r for r in await scraper.scrape(every)}
            assert sorted(readings) == [1, 2, 3]  # "off" and another host's URL are never requested
            assert not readings[1].ok and readings[1].error == f"no engine metrics at {root}/metrics (HTTP 404)"
            assert not readings[2].ok and "no vllm: metrics" in (readings[2].error or "")
            assert not readings[3].ok and (readings[3].error or "").startswith("not Prometheus exposition text")
            assert all(r.running is None and r.waiting is None for r in readings.values())
            assert hits == {"/metrics": 1, "/prom": 1, "/json": 1}

            clock.advance(NO_METRICS_RETRY_S - 1)
            again = {r.deployment_id: r for r in await scraper.scrape(every)}
            assert [again[i].error for i in (1, 2, 3)] == [readings[i].error for i in (1, 2, 3)]
            assert hits == {"/metrics": 1, "/prom": 1, "/json": 1}  # reported from memory, not asked

            clock.advance(1)
            await scraper.scrape(every)
            assert hits == {"/metrics": 2, "/prom": 2, "/json": 2}
