"""Demo traffic sends a realistic mix, stays within its limits and counts every outcome."""

from __future__ import annotations

import asyncio
import random
import socket

import httpx
import orjson
import pytest

from llm_console.demo.traffic import BAD_MODEL, MAX_IN_FLIGHT, TrafficStats, _chat_url, _payload, run_traffic
from llm_console.simulator import SimulatorConfig, create_app
from llm_console.simulator.engine import Engine

MODELS = ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct"]


@pytest.mark.asyncio
async def test_stats_add_up_against_the_simulator() -> None:
    app = create_app(SimulatorConfig.fast(seed=5))
    engine: Engine = app.state.engine
    stats = await run_traffic(
        "http://sim",
        "sk-demo",
        MODELS,
        rate_per_second=200,
        max_requests=10,
        transport=httpx.ASGITransport(app=app),
        seed=11,
    )
    assert stats.sent == 10
    assert stats.ok + stats.errors == 10
    assert stats.ok >= 8
    # Only successful requests reach the engine; failures here can only be the deliberate bad model.
    assert sum(engine.finished.values()) == stats.ok
    assert engine.prompt_tokens_total > 0


@pytest.mark.asyncio
async def test_unknown_models_and_server_errors_are_counted_not_raised() -> None:
    app = create_app(SimulatorConfig.fast(error_rate=1.0))
    transport = httpx.ASGITransport(app=app)
    stats = await run_traffic("http://sim", "", ["nope"], 500, max_requests=6, transport=transport, seed=1)
    assert stats == TrafficStats(sent=6, ok=0, errors=6)
    stats = await run_traffic("http://sim", "", MODELS, 500, max_requests=6, transport=transport, seed=2)
    assert stats == TrafficStats(sent=6, ok=0, errors=6)


@pytest.mark.asyncio
async def test_unreachable_upstream_counts_errors() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        stats = await run_traffic(url, "k", MODELS, rate_per_second=500, max_requests=3)
    assert stats == TrafficStats(sent=3, ok=0, errors=3)


@pytest.mark.asyncio
async def test_stop_event_ends_the_run_and_concurrency_stays_bounded() -> None:
    peak = 0
    in_flight = 0
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal peak, in_flight
        seen.append(request)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        body = orjson.loads(request.content)
        if body.get("stream"):
            return httpx.Response(200, content=b'data: {"choices": []}\n\ndata: [DONE]\n\n')
        return httpx.Response(200, json={"choices": []})

    stop = asyncio.Event()
    run = asyncio.create_task(
        run_traffic("http://gw/v1/", "sk-1", MODELS, 1000, stop=stop, transport=httpx.MockTransport(handler))
    )
    await asyncio.sleep(0.3)
    stop.set()
    stats = await asyncio.wait_for(run, timeout=5)
    assert stats.sent > MAX_IN_FLIGHT
    assert stats.ok + stats.errors == stats.sent
    assert peak == MAX_IN_FLIGHT
    assert {r.url.path for r in seen} == {"/v1/chat/completions"}
    assert {r.headers["authorization"] for r in seen} == {"Bearer sk-1"}


@pytest.mark.asyncio
async def test_truncated_stream_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if orjson.loads(request.content).get("stream"):
            return httpx.Response(200, content=b'data: {"choices": []}\n\n')
        return httpx.Response(200, json={"choices": []})

    stats = await run_traffic(
        "http://gw", "", MODELS, 1000, max_requests=40, transport=httpx.MockTransport(handler), seed=3
    )
    assert stats.sent == 40 and 0 < stats.errors < 40 and stats.ok + stats.errors == 40


def test_payload_mix() -> None:
    rng = random.Random(0)
    payloads = [_payload(rng, MODELS) for _ in range(2000)]
    streaming = [p for p in payloads if p.get("stream")]
    assert 0.35 < len(streaming) / len(payloads) < 0.45
    assert all(p["stream_options"] == {"include_usage": True} for p in streaming)
    assert 0.01 < sum(p["model"] == BAD_MODEL for p in payloads) / len(payloads) < 0.05
    assert {p["model"] for p in payloads} == {*MODELS, BAD_MODEL}
    assert all(32 <= p["max_tokens"] <= 200 for p in payloads)
    assert len({p["messages"][-1]["content"] for p in payloads}) > 10
    assert not any("prompt" in p for p in payloads)  # no prompt known: plain messages only


def test_a_quarter_of_the_calls_use_the_stored_prompt_when_there_is_one() -> None:
    rng = random.Random(0)
    payloads = [_payload(rng, MODELS, "support/answer") for _ in range(2000)]
    using = [p for p in payloads if "prompt" in p]
    assert 0.2 < len(using) / len(payloads) < 0.3
    for p in using:
        assert p["messages"] == [] and p["prompt"]["name"] == "support/answer"
        assert set(p["prompt"]["variables"]) == {"company", "question"} and p["prompt"]["variables"]["question"]


def test_chat_url_accepts_bases_with_or_without_v1() -> None:
    assert _chat_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert _chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"


@pytest.mark.asyncio
async def test_rejects_empty_model_list() -> None:
    with pytest.raises(ValueError):
        await run_traffic("http://gw", "", [], max_requests=1)
