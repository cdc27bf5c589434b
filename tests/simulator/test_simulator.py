"""The simulator speaks the OpenAI wire format, streams incrementally and reports vLLM metrics."""

from __future__ import annotations

import asyncio
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
import pytest_asyncio
import uvicorn

from llm_console.simulator import SimulatorConfig, create_app
from llm_console.simulator.__main__ import build_config, build_parser
from llm_console.simulator.__main__ import main as simulator_main
from llm_console.simulator.engine import count_tokens
from llm_console.simulator.server import serve_async

MODEL = "llama-3.1-8b-instruct"
GREETING = [{"role": "user", "content": "Hello there, simulator!"}]
SAMPLE = re.compile(r"^(?P<name>[^{\s]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def client_for(config: SimulatorConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(config)), base_url="http://sim")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(SimulatorConfig.fast(seed=7)) as c:
        yield c


def sse_payloads(text: str) -> list[Any]:
    """Decode each `data:` event; `[DONE]` is kept as the string itself."""
    events = [block for block in text.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events), events
    return [e[6:] if e == "data: [DONE]" else orjson.loads(e[6:]) for e in events]


def metric_samples(text: str) -> dict[str, float]:
    """Map `name{labels}` to its value, failing on any line that is not valid exposition."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"bad exposition line: {line!r}"
        samples[f"{match['name']}{{{match['labels']}}}"] = float(match["value"])
    return samples


def gauge(samples: dict[str, float], name: str) -> float:
    return samples[f'{name}{{model_name="{MODEL}"}}']


def success(samples: dict[str, float], reason: str) -> float:
    return samples[f'vllm:request_success_total{{finished_reason="{reason}",model_name="{MODEL}"}}']


@pytest.mark.asyncio
async def test_chat_completion_shape_and_usage(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": GREETING})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == math.ceil(len("Hello there, simulator!") / 4) + 4
    assert 8 <= usage["completion_tokens"] <= 256
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.asyncio
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_caps_the_completion(client: httpx.AsyncClient, field: str) -> None:
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": GREETING, field: 5})
    choice = response.json()["choices"][0]
    assert response.json()["usage"]["completion_tokens"] == 5
    assert len(choice["message"]["content"].split()) == 5
    assert choice["finish_reason"] == "length"


@pytest.mark.asyncio
@pytest.mark.parametrize("include_usage", [True, False])
async def test_chat_stream_events(client: httpx.AsyncClient, include_usage: bool) -> None:
    body = {"model": MODEL, "messages": GREETING, "max_tokens": 6, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_payloads(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    if include_usage:
        usage_chunk = chunks.pop()
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}
        assert all(c["usage"] is None for c in chunks)
    else:
        assert all("usage" not in c for c in chunks)
    finish = chunks.pop()
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["choices"][0]["delta"] == {}
    content = chunks[1:]
    assert len(content) == 6
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert len(text.split()) == 6


@pytest.mark.asyncio
async def test_legacy_completions(client: httpx.AsyncClient) -> None:
    plain = await client.post("/v1/completions", json={"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4})
    body = plain.json()
    assert body["object"] == "text_completion"
    assert len(body["choices"][0]["text"].split()) == 4
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}

    streamed = await client.post(
        "/v1/completions",
        json={
            "model": MODEL,
            "prompt": [1, 2, 3],
            "max_tokens": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = sse_payloads(streamed.text)
    assert events[-1] == "[DONE]"
    assert [e["choices"][0]["finish_reason"] for e in events[:4]] == [None, None, None, "length"]
    assert events[4]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b'{"model": "llama', None),
        (b"\xff\xfe not utf-8", None),
        (b"[1, 2]", None),
        (b"[" * 5000 + b"]" * 5000, None),
        (b'{"messages": []}', "model"),
        (b'{"model": 3, "messages": []}', "model"),
        (b'{"model": "llama-3.1-8b-instruct"}', "messages"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": "hi"}', "messages"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": [{"content": "x"}]}', "messages[0]"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user", "content": 1}]}', "messages[0]"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user"}], "max_tokens": -1}', "max_tokens"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user"}], "max_tokens": "9"}', "max_tokens"),
        (b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
        (
            b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user"}], "stream_options": {}}',
            "stream_options",
        ),
    ],
)
async def test_bad_requests_get_openai_400(client: httpx.AsyncClient, content: bytes, param: str | None) -> None:
    response = await client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert error["param"] == param


@pytest.mark.asyncio
async def test_prompt_longer_than_context_is_rejected() -> None:
    async with client_for(SimulatorConfig.fast(max_model_len=10)) as c:
        response = await c.post("/v1/chat/completions", json={"model": MODEL, "messages": GREETING, "max_tokens": 5})
    assert response.status_code == 400
    assert "maximum context length is 10" in response.json()["error"]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
async def test_unknown_model_is_404(client: httpx.AsyncClient, path: str) -> None:
    body = {"model": "gpt-9", "messages": GREETING, "prompt": "x", "input": "x"}
    response = await client.post(path, json=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "gpt-9" in error["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_injected_errors_are_openai_500s(stream: bool) -> None:
    async with client_for(SimulatorConfig.fast(error_rate=1.0)) as c:
        response = await c.post("/v1/chat/completions", json={"model": MODEL, "messages": GREETING, "stream": stream})
        metrics = metric_samples((await c.get("/metrics")).text)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert gauge(metrics, "vllm:prompt_tokens_total") == 0


@pytest.mark.asyncio
async def test_embeddings_are_deterministic_unit_vectors(client: httpx.AsyncClient) -> None:
    body = {"model": "bge-small-en", "input": ["alpha", "beta", "alpha"]}
    first = (await client.post("/v1/embeddings", json=body)).json()
    again = (await client.post("/v1/embeddings", json={"model": "bge-small-en", "input": "alpha"})).json()
    vectors = [d["embedding"] for d in first["data"]]
    assert [d["index"] for d in first["data"]] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-9 for v in vectors)
    assert vectors[0] == vectors[2] == again["data"][0]["embedding"]
    assert vectors[0] != vectors[1]
    tokens = sum(count_tokens(t) for t in body["input"])
    assert first["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}

    short = (await client.post("/v1/embeddings", json={**body, "dimensions": 16})).json()
    assert len(short["data"][0]["embedding"]) == 16
    bad = await client.post("/v1/embeddings", json={"model": "bge-small-en", "input": [1, "x"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"


@pytest.mark.asyncio
async def test_models_and_health(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/v1/models")).json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert ids == ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "bge-small-en", "bge-reranker-base"]
    assert all(
        m["object"] == "model" and m["owned_by"] == "vllm" and m["max_model_len"] == 32768 for m in listing["data"]
    )
    assert (await client.get("/health")).status_code == 200


@pytest.mark.asyncio
async def test_metrics_exposition(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json={"model": MODEL, "messages": GREETING, "max_tokens": 3})
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for name, kind in [
        ("vllm:num_requests_running", "gauge"),
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:gpu_cache_usage_perc", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
        ("vllm:prompt_tokens_total", "counter"),
        ("vllm:generation_tokens_total", "counter"),
        ("vllm:request_success_total", "counter"),
        ("vllm:time_to_first_token_seconds", "histogram"),
        ("vllm:e2e_request_latency_seconds", "histogram"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text
    samples = metric_samples(text)
    assert all(f'model_name="{MODEL}"' in key for key in samples)
    assert gauge(samples, "vllm:prompt_tokens_total") == 10
    assert gauge(samples, "vllm:generation_tokens_total") == 3
    assert success(samples, "length") == 1
    assert gauge(samples, "vllm:time_to_first_token_seconds_count") == 1
    assert samples[f'vllm:e2e_request_latency_seconds_bucket{{le="+Inf",model_name="{MODEL}"}}'] == 1
    assert gauge(samples, "vllm:num_requests_running") == 0


async def _wait_for(client: httpx.AsyncClient, check: Any, within: float = 5.0) -> dict[str, float]:
    deadline = time.monotonic() + within
    while True:
        samples = metric_samples((await client.get("/metrics")).text)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"metrics never matched: {samples}"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_running_waiting_and_kv_cache_follow_in_flight_streams() -> None:
    config = SimulatorConfig(ttft_ms=0, tokens_per_second=25, jitter=0, max_num_seqs=1)
    body = {"model": MODEL, "messages": GREETING, "max_tokens": 6, "stream": True}
    async with client_for(config) as c:
        streams = [asyncio.create_task(c.post("/v1/chat/completions", json=body)) for _ in range(2)]
        busy = await _wait_for(
            c, lambda s: gauge(s, "vllm:num_requests_running") == 1 and gauge(s, "vllm:num_requests_waiting") == 1
        )
        assert 0 < gauge(busy, "vllm:kv_cache_usage_perc") == gauge(busy, "vllm:gpu_cache_usage_perc") < 1
        responses = await asyncio.gather(*streams)
        assert all(r.status_code == 200 and r.text.endswith("data: [DONE]\n\n") for r in responses)
        idle = metric_samples((await c.get("/metrics")).text)
    assert gauge(idle, "vllm:num_requests_running") == 0
    assert gauge(idle, "vllm:num_requests_waiting") == 0
    assert gauge(idle, "vllm:kv_cache_usage_perc") == 0
    assert success(idle, "length") == 2
    # Six tokens 40 ms apart take 0.2 s; the second stream also queued behind the first.
    assert gauge(idle, "vllm:e2e_request_latency_seconds_sum") >= 0.55


@pytest.fixture
def live_base_url() -> Iterator[str]:
    """A real uvicorn server on a free port, in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = SimulatorConfig(ttft_ms=20, tokens_per_second=40, jitter=0, seed=1)
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False, ws="none", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_openai_sdk_against_real_server(live_base_url: str) -> None:
    with openai.OpenAI(base_url=live_base_url, api_key="x", max_retries=0) as sdk:
        reply = sdk.chat.completions.create(model=MODEL, messages=GREETING, max_tokens=5)
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage is not None and reply.usage.total_tokens == 15

        stamps: list[float] = []
        text, usage = "", None
        stream = sdk.chat.completions.create(
            model=MODEL, messages=GREETING, max_tokens=10, stream=True, stream_options={"include_usage": True}
        )
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
                stamps.append(time.monotonic())
        assert len(stamps) == 10 and len(text.split()) == 10
        assert usage is not None and usage.completion_tokens == 10
        # Ten tokens at 40/s arrive over ~225 ms; a buffered body would deliver them all at once.
        assert stamps[-1] - stamps[0] > 0.15

        embedding = sdk.embeddings.create(model="bge-small-en", input="alpha")
        assert len(embedding.data[0].embedding) == 384
        assert [m.id for m in sdk.models.list()][:1] == [MODEL]
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="nope", messages=GREETING)


@pytest.mark.asyncio
async def test_client_disconnect_mid_stream_frees_the_slot() -> None:
    config = SimulatorConfig(ttft_ms=0, tokens_per_second=20, jitter=0)
    server = await serve_async(port=0, config=config)
    async with server, httpx.AsyncClient(base_url=server.url) as c:
        body = {"model": MODEL, "messages": GREETING, "max_tokens": 200, "stream": True}
        async with c.stream("POST", "/v1/chat/completions", json=body) as response:
            lines = response.aiter_lines()
            while not (await anext(lines)).startswith('data: {"id"'):
                pass
            await _wait_for(c, lambda s: gauge(s, "vllm:num_requests_running") == 1)
        idle = await _wait_for(c, lambda s: gauge(s, "vllm:num_requests_running") == 0)
        assert success(idle, "abort") == 1
        assert gauge(idle, "vllm:kv_cache_usage_perc") == 0
        assert gauge(idle, "vllm:generation_tokens_total") < 200


@pytest.mark.asyncio
async def test_serve_async_reports_a_busy_port() -> None:
    server = await serve_async(port=0)
    async with server:
        with pytest.raises(OSError):
            await serve_async(port=server.port)
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{server.url}/health")).status_code == 200


def test_config_validation_and_cli_flags() -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(jitter=2)
    assert SimulatorConfig.fast().token_delay_s == 0
    assert SimulatorConfig(tokens_per_second=50).token_delay_s == pytest.approx(0.02)
    with pytest.raises(SystemExit):
        simulator_main(["--error-rate", "3"])
    args = build_parser().parse_args(["--fast", "--error-rate", "0.1", "--seed", "4", "--models", "a, b"])
    config = build_config(args)
    assert (config.error_rate, config.ttft_ms, config.seed, config.models) == (0.1, 0.0, 4, ["a", "b"])
