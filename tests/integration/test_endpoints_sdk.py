"""Every OpenAI-style endpoint through the real standalone gateway with the official async `openai` SDK.

The simulator serves the OpenAI routes, the Azure deployment routes and rerank; each test checks what the client
got, then the gateway's own log row (endpoint, alias, status, tokens) for the same `x-request-id`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlmodel import col, select

from llm_console.db.engine import make_engine
from llm_console.db.models import Deployment as DeploymentRow
from llm_console.db.models import Provider, RequestLog
from tests.integration.fixtures_gateway import (
    SIM_CHAT_MODEL,
    SIM_EMBED_MODEL,
    SIM_RERANK_MODEL,
    Deployment,
    Gateway,
    gateway,
    metric_value,
    simulator,
)

AZURE_MODEL = "qwen2.5-7b-instruct"  # the simulator model that doubles as the Azure deployment name
ALIASES = ["azure-chat", "azure-llama", "chat", "embed", "rerank"]
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name three rivers in Europe."}]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator(tmp_path_factory.mktemp("sim-endpoints")) as url:
        yield url


def routes(sim_url: str) -> list[Deployment]:
    return [
        Deployment("chat", sim_url + "/v1", SIM_CHAT_MODEL),
        Deployment("embed", sim_url + "/v1", SIM_EMBED_MODEL),
        Deployment("rerank", sim_url + "/v1", SIM_RERANK_MODEL),
        Deployment("azure-chat", sim_url, AZURE_MODEL, kind="azure", api_version="2024-10-21"),
        # Same model and host as `chat`, but Azure: must become a deployment of its own.
        Deployment("azure-llama", sim_url, SIM_CHAT_MODEL, kind="azure", api_version="2024-10-21"),
    ]


@pytest.fixture(scope="module")
def stack(sim: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Active health checks are off here: the simulator has no Azure model list (see the health-check test below),
    # so a probe landing mid-module would open the Azure circuit and make unrelated tests flaky.
    with gateway(
        tmp_path_factory.mktemp("gw-endpoints"), routes(sim), scoped=["chat"], LLMC_HEALTH_CHECK_INTERVAL_S="0"
    ) as gw:
        yield gw


def client(gw: Gateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.v1, api_key=key or gw.key, max_retries=0, timeout=30)


def assert_row(
    row: RequestLog,
    *,
    endpoint: str,
    alias: str,
    stream: bool,
    prompt: int | None = None,
    completion: int | None = None,
) -> None:
    """An ok row; exact token counts when the client saw usage, else at least one of each (stream usage)."""
    assert (row.endpoint, row.alias, row.status, row.status_code, row.stream) == (endpoint, alias, "ok", 200, stream)
    assert row.error_type is None and row.latency_ms > 0
    if prompt is not None:
        assert row.prompt_tokens == prompt
    else:
        assert row.prompt_tokens > 0
    if completion is not None:
        assert row.completion_tokens == completion
    elif endpoint not in ("/v1/embeddings", "/v1/rerank"):
        assert row.completion_tokens > 0


async def test_chat_completion_reports_usage_and_logs_it(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=40)
        completion = raw.parse()
    assert completion.model and completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row,
        endpoint="/v1/chat/completions",
        alias="chat",
        stream=False,
        prompt=usage.prompt_tokens,
        completion=usage.completion_tokens,
    )
    assert row.model == SIM_CHAT_MODEL and row.attempts == 1


async def test_chat_stream_without_include_usage_hides_the_injected_usage_chunk(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES, max_tokens=40, stream=True
        )
        chunks = [chunk async for chunk in raw.parse()]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    assert all(ch.choices for ch in chunks), "the usage-only chunk the gateway asked for reached the client"
    assert all(ch.usage is None for ch in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(row, endpoint="/v1/chat/completions", alias="chat", stream=True)


async def test_chat_stream_with_include_usage_ends_with_one_usage_chunk(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES, max_tokens=40, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in raw.parse()]
    with_usage = [ch for ch in chunks if ch.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row,
        endpoint="/v1/chat/completions",
        alias="chat",
        stream=True,
        prompt=usage.prompt_tokens,
        completion=usage.completion_tokens,
    )


async def test_legacy_completions_plain_and_streamed(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.completions.with_raw_response.create(model="chat", prompt="Once upon a time", max_tokens=30)
        plain = raw.parse()
        streamed_raw = await c.completions.with_raw_response.create(
            model="chat", prompt="Once upon a time", max_tokens=30, stream=True
        )
        chunks = [chunk async for chunk in streamed_raw.parse()]
    assert plain.choices[0].text and plain.usage is not None and plain.usage.completion_tokens > 0
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert all(ch.choices for ch in chunks) and all(ch.usage is None for ch in chunks)
    rows = stack.wait_rows([raw.headers["x-request-id"], streamed_raw.headers["x-request-id"]])
    assert_row(
        rows[raw.headers["x-request-id"]],
        endpoint="/v1/completions",
        alias="chat",
        stream=False,
        prompt=plain.usage.prompt_tokens,
        completion=plain.usage.completion_tokens,
    )
    assert_row(rows[streamed_raw.headers["x-request-id"]], endpoint="/v1/completions", alias="chat", stream=True)


async def test_embeddings_have_one_vector_per_input_and_usage(stack: Gateway) -> None:
    inputs = ["the quick brown fox", "jumps over", "the lazy dog"]
    async with client(stack) as c:
        raw = await c.embeddings.with_raw_response.create(model="embed", input=inputs)
        result = raw.parse()
        shortened = await c.embeddings.create(model="embed", input="short", dimensions=64)
    assert [d.index for d in result.data] == [0, 1, 2]
    sizes = {len(d.embedding) for d in result.data}
    assert len(sizes) == 1 and sizes.pop() > 64
    assert result.data[0].embedding != result.data[2].embedding
    assert len(shortened.data[0].embedding) == 64
    assert result.usage.prompt_tokens > 0 and result.usage.total_tokens == result.usage.prompt_tokens
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row, endpoint="/v1/embeddings", alias="embed", stream=False, prompt=result.usage.prompt_tokens, completion=0
    )


async def test_rerank_sorts_results_and_honours_top_n(stack: Gateway) -> None:
    """The openai SDK has no rerank method: a plain httpx call with the same virtual key."""
    documents = ["The weather is mild today.", "Paris is the capital of France.", "Bananas are yellow."]
    body = {"model": "rerank", "query": "What is the capital of France?", "documents": documents, "top_n": 2}
    async with httpx.AsyncClient(base_url=stack.v1, headers={"authorization": f"Bearer {stack.key}"}) as c:
        raw = await c.post("/rerank", json=body)
    assert raw.status_code == 200, raw.text
    result = raw.json()
    results = result["results"]
    assert len(results) == 2
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert results[0]["index"] == 1 and {r["index"] for r in results} <= {0, 1, 2}
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row, endpoint="/v1/rerank", alias="rerank", stream=False, prompt=result["usage"]["total_tokens"], completion=0
    )


async def test_responses_api_plain(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.responses.with_raw_response.create(model="chat", input="Say hello.", max_output_tokens=512)
        response = raw.parse()
    assert response.status == "completed" and response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row,
        endpoint="/v1/responses",
        alias="chat",
        stream=False,
        prompt=response.usage.input_tokens,
        completion=response.usage.output_tokens,
    )


async def test_responses_api_streamed(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.responses.with_raw_response.create(
            model="chat", input="Say hello.", max_output_tokens=512, stream=True
        )
        events = [event async for event in raw.parse()]
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    final: Any = events[-1]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas and deltas == final.response.output_text
    usage = final.response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert_row(
        row,
        endpoint="/v1/responses",
        alias="chat",
        stream=True,
        prompt=usage.input_tokens,
        completion=usage.output_tokens,
    )


async def test_models_list_and_retrieve_respect_the_key_scope(stack: Gateway) -> None:
    async with client(stack) as full, client(stack, stack.scoped_key) as scoped:
        assert sorted([m.id async for m in full.models.list()]) == ALIASES
        assert [m.id async for m in scoped.models.list()] == ["chat"]
        model = await scoped.models.retrieve("chat")
        assert (model.id, model.object) == ("chat", "model")
        assert (await full.models.retrieve("embed")).id == "embed"
        with pytest.raises(openai.NotFoundError) as hidden:
            await scoped.models.retrieve("embed")  # exists, but a scoped key may not learn that
        assert hidden.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            await full.models.retrieve("no-such-alias")


async def test_gateway_errors_map_to_sdk_exceptions_and_are_logged(stack: Gateway) -> None:
    async with client(stack) as full, client(stack, stack.scoped_key) as scoped, client(stack, "sk-llmc-wrong") as bad:
        with pytest.raises(openai.NotFoundError) as unknown:
            await full.chat.completions.create(model="no-such-alias", messages=MESSAGES)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await scoped.embeddings.create(model="embed", input="x")
        with pytest.raises(openai.BadRequestError) as forbidden:
            await full.chat.completions.create(
                model="chat", messages=MESSAGES, extra_body={"api_base": "http://169.254.169.254/"}
            )
        with pytest.raises(openai.BadRequestError) as invalid:
            await full.chat.completions.create(model="chat", messages=[], max_tokens=5)
        with pytest.raises(openai.AuthenticationError) as unauthenticated:
            await bad.models.list()
    assert (unknown.value.status_code, unknown.value.code, unknown.value.param) == (404, "model_not_found", "model")
    assert (denied.value.status_code, denied.value.code, denied.value.param) == (403, "model_not_allowed", "model")
    assert (forbidden.value.code, forbidden.value.param) == ("forbidden_parameter", "api_base")
    assert invalid.value.param == "messages"
    assert unauthenticated.value.status_code == 401 and unauthenticated.value.code == "invalid_api_key"
    # A forbidden field is refused before the body is validated, so that row names no alias.
    cases = {unknown.value: ("no-such-alias", 404), denied.value: ("embed", 403), forbidden.value: ("", 400)}
    rows = stack.wait_rows([exc.response.headers["x-request-id"] for exc in cases])
    for exc, (alias, status) in cases.items():
        row = rows[exc.response.headers["x-request-id"]]
        assert (row.alias, row.status, row.status_code, row.error_type) == (alias, "error", status, exc.code)
        assert row.prompt_tokens == row.completion_tokens == 0


def deployment_kind(gw: Gateway, deployment_id: int | None) -> str | None:
    engine = make_engine(gw.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(col(Provider.kind))
                .join(DeploymentRow, col(DeploymentRow.provider_id) == col(Provider.id))
                .where(DeploymentRow.id == deployment_id)
            ).scalar_one_or_none()
    finally:
        engine.dispose()


async def test_azure_deployment_answers_the_plain_openai_client(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(model="azure-chat", messages=MESSAGES, max_tokens=30)
        completion = raw.parse()
        streamed = await c.chat.completions.with_raw_response.create(
            model="azure-chat", messages=MESSAGES, max_tokens=30, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in streamed.parse()]
        legacy = await c.completions.create(model="azure-chat", prompt="Hello", max_tokens=10)
    assert completion.choices[0].message.content and completion.usage is not None
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    assert legacy.choices[0].text
    rows = stack.wait_rows([raw.headers["x-request-id"], streamed.headers["x-request-id"]])
    plain_row, stream_row = rows[raw.headers["x-request-id"]], rows[streamed.headers["x-request-id"]]
    assert_row(
        plain_row,
        endpoint="/v1/chat/completions",
        alias="azure-chat",
        stream=False,
        prompt=completion.usage.prompt_tokens,
        completion=completion.usage.completion_tokens,
    )
    assert_row(
        stream_row,
        endpoint="/v1/chat/completions",
        alias="azure-chat",
        stream=True,
        prompt=usage.prompt_tokens,
        completion=usage.completion_tokens,
    )
    assert plain_row.model == AZURE_MODEL and deployment_kind(stack, plain_row.deployment_id) == "azure"


async def test_same_model_and_host_under_another_provider_kind_is_its_own_deployment(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(model="azure-llama", messages=MESSAGES, max_tokens=10)
        assert (raw.parse()).choices[0].message.content
    row = stack.wait_row(raw.headers["x-request-id"])
    assert row.alias == "azure-llama" and row.status == "ok"
    assert deployment_kind(stack, row.deployment_id) == "azure"


def test_azure_deployment_survives_active_health_checks(sim: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    azure = [r for r in routes(sim) if r.alias == "azure-chat"]
    with gateway(tmp_path_factory.mktemp("gw-health"), azure, LLMC_HEALTH_CHECK_INTERVAL_S="0.2") as gw:
        time.sleep(1.0)  # several probe rounds
        with openai.OpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=30) as c:
            completion = c.chat.completions.create(model="azure-chat", messages=MESSAGES, max_tokens=10)
    assert completion.choices[0].message.content


async def test_metrics_count_each_request_by_endpoint_alias_and_status(stack: Gateway) -> None:
    series = [
        ("/v1/chat/completions", "chat", "ok", 2),
        ("/v1/completions", "chat", "ok", 1),
        ("/v1/embeddings", "embed", "ok", 1),
        ("/v1/rerank", "rerank", "ok", 1),
        ("/v1/responses", "chat", "ok", 1),
        ("/v1/chat/completions", "azure-chat", "ok", 1),
        ("/v1/chat/completions", "ghost-alias", "error", 1),
    ]

    def counts() -> list[float]:
        text = stack.metrics()
        return [
            metric_value(text, "llmc_gateway_requests_total", endpoint=e, alias=a, status=s) for e, a, s, _ in series
        ]

    before = counts()
    async with client(stack) as c:
        await c.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=5)
        [_ async for _ in await c.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=5, stream=True)]
        await c.completions.create(model="chat", prompt="Hi", max_tokens=5)
        await c.embeddings.create(model="embed", input="hi")
        await c.post("/rerank", cast_to=object, body={"model": "rerank", "query": "q", "documents": ["a", "b"]})
        await c.responses.create(model="chat", input="Hi", max_output_tokens=256)
        await c.chat.completions.create(model="azure-chat", messages=MESSAGES, max_tokens=5)
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model="ghost-alias", messages=MESSAGES)
    deadline = time.monotonic() + 5  # a stream is counted when its relay closes, just after the client's last byte
    while (after := counts()) != [b + n for b, (*_, n) in zip(before, series, strict=True)]:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [a - b for a, b in zip(after, before, strict=True)] == [n for *_, n in series]
    text = stack.metrics()
    assert metric_value(text, "llmc_gateway_tokens_total", alias="chat", kind="completion") > 0
    assert 'deployment=""' in "".join(line for line in text.splitlines() if "ghost-alias" in line)
