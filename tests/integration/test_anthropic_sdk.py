"""The official `anthropic` SDK against the real gateway's /v1/messages, on both kinds of deployment.

`chat` routes to the simulator's OpenAI side (the gateway translates Messages <-> Chat Completions both ways);
`claude` routes to its native Anthropic /v1/messages (`--kind anthropic`). The reverse path, the `openai` SDK's
chat completions against `claude`, is checked here too. Usage the client sees must equal the log row's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llm_console.db.models import RequestLog
from tests.integration.fixtures_gateway import SIM_CHAT_MODEL, Deployment, Gateway, gateway, simulator

CLAUDE_MODEL = "claude-sim-haiku"  # an extra simulator model, served on its Anthropic route
BOTH = pytest.mark.parametrize("alias", ["chat", "claude"])
QUESTION: list[Any] = [{"role": "user", "content": "Describe a lighthouse in two sentences."}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    logs = tmp_path_factory.mktemp("sim-anthropic")
    with simulator(logs, "--models", f"{SIM_CHAT_MODEL},{CLAUDE_MODEL}") as sim:
        routes = [
            Deployment("chat", sim + "/v1", SIM_CHAT_MODEL),
            Deployment("claude", sim, CLAUDE_MODEL, kind="anthropic"),
        ]
        with gateway(tmp_path_factory.mktemp("gw-anthropic"), routes, scoped=["chat"]) as gw:
            yield gw


def claude_client(gw: Gateway, key: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=key or gw.key, max_retries=0, timeout=30)


def openai_client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=30)


def assert_messages_row(row: RequestLog, alias: str, *, stream: bool, usage: Any) -> None:
    assert (row.endpoint, row.alias, row.status, row.status_code, row.stream) == (
        "/v1/messages",
        alias,
        "ok",
        200,
        stream,
    )
    assert (row.prompt_tokens, row.completion_tokens) == (usage.input_tokens, usage.output_tokens)


@BOTH
async def test_create_returns_text_stop_reason_and_usage(stack: Gateway, alias: str) -> None:
    async with claude_client(stack) as c:
        raw = await c.messages.with_raw_response.create(model=alias, max_tokens=64, messages=QUESTION)
        message = await raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model
    assert message.content and message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert_messages_row(stack.wait_row(raw.headers["x-request-id"]), alias, stream=False, usage=message.usage)


@BOTH
async def test_system_prompt_reaches_the_upstream(stack: Gateway, alias: str) -> None:
    """The upstream counts the system prompt as input, so a long one shows up in `input_tokens`."""
    system = "You are a terse assistant who answers in the style of a ship's log, always. " * 4
    async with claude_client(stack) as c:
        bare = await c.messages.create(model=alias, max_tokens=16, messages=QUESTION)
        with_system = await c.messages.create(model=alias, max_tokens=16, messages=QUESTION, system=system)
        as_blocks = await c.messages.create(
            model=alias, max_tokens=16, messages=QUESTION, system=[{"type": "text", "text": system}]
        )
    assert with_system.usage.input_tokens > bare.usage.input_tokens + 40
    assert as_blocks.usage.input_tokens == with_system.usage.input_tokens


@BOTH
async def test_stream_text_and_final_message_agree(stack: Gateway, alias: str) -> None:
    async with claude_client(stack) as c:
        async with c.messages.stream(model=alias, max_tokens=64, messages=QUESTION, system="Be brief.") as stream:
            request_id = stream.response.headers["x-request-id"]
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert len(pieces) > 1
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert_messages_row(stack.wait_row(request_id), alias, stream=True, usage=final.usage)


@BOTH
async def test_a_tool_definition_is_accepted(stack: Gateway, alias: str) -> None:
    async with claude_client(stack) as c:
        message = await c.messages.create(
            model=alias,
            max_tokens=64,
            messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "auto"},
        )
        async with c.messages.stream(model=alias, max_tokens=32, messages=QUESTION, tools=[WEATHER_TOOL]) as stream:
            streamed = await stream.get_final_message()
    assert message.content and {block.type for block in message.content} <= {"text", "tool_use"}
    assert message.stop_reason in ("end_turn", "tool_use", "max_tokens")
    assert streamed.usage.output_tokens > 0


async def test_errors_are_anthropic_shaped_sdk_exceptions(stack: Gateway) -> None:
    async with claude_client(stack) as full, claude_client(stack, stack.scoped_key) as scoped:
        with pytest.raises(anthropic.NotFoundError) as unknown:
            await full.messages.create(model="no-such-alias", max_tokens=16, messages=QUESTION)
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await scoped.messages.create(model="claude", max_tokens=16, messages=QUESTION)
        with pytest.raises(anthropic.BadRequestError) as zero:
            await full.messages.create(model="claude", max_tokens=0, messages=QUESTION)
        with pytest.raises(anthropic.BadRequestError) as forbidden:
            await full.messages.create(
                model="claude", max_tokens=16, messages=QUESTION, extra_body={"base_url": "http://10.0.0.1/"}
            )
    async with claude_client(stack, "sk-llmc-not-a-real-key") as bad:
        with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
            await bad.messages.create(model="claude", max_tokens=16, messages=QUESTION)
    expected = [
        (unknown.value, 404, "not_found_error", "model_not_found"),
        (denied.value, 403, "permission_error", "model_not_allowed"),
        (zero.value, 400, "invalid_request_error", None),
        (forbidden.value, 400, "invalid_request_error", "forbidden_parameter"),
        (unauthenticated.value, 401, "authentication_error", "invalid_api_key"),
    ]
    for exc, status, kind, code in expected:
        body: Any = exc.body
        assert exc.status_code == status and body["type"] == "error", body
        assert (body["error"]["type"], body["error"]["code"]) == (kind, code)
        assert body["error"]["message"]
    assert zero.value.body["error"]["param"] == "max_tokens"  # type: ignore[index]


@BOTH
async def test_missing_max_tokens_is_a_400_in_anthropic_shape(stack: Gateway, alias: str) -> None:
    """The SDK will not send a request without `max_tokens`, so a raw one does."""
    headers = {"x-api-key": stack.key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as c:
        resp = await c.post("/v1/messages", json={"model": alias, "messages": QUESTION})
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "max_tokens"


async def test_openai_sdk_chat_against_the_native_anthropic_alias(stack: Gateway) -> None:
    async with openai_client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="claude",
            messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
            max_tokens=48,
        )
        completion = raw.parse()
        plain_stream = await c.chat.completions.with_raw_response.create(
            model="claude", messages=QUESTION, max_tokens=48, stream=True
        )
        plain_chunks = [chunk async for chunk in plain_stream.parse()]
        usage_stream = await c.chat.completions.with_raw_response.create(
            model="claude", messages=QUESTION, max_tokens=48, stream=True, stream_options={"include_usage": True}
        )
        usage_chunks = [chunk async for chunk in usage_stream.parse()]
    assert completion.object == "chat.completion" and completion.model == "claude"
    assert completion.choices[0].message.content and completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0

    assert "".join(ch.choices[0].delta.content or "" for ch in plain_chunks if ch.choices)
    assert all(ch.usage is None for ch in plain_chunks) and all(ch.choices for ch in plain_chunks)
    assert plain_chunks[-1].choices[0].finish_reason in ("stop", "length")

    streamed_usage = usage_chunks[-1].usage
    assert usage_chunks[-1].choices == [] and streamed_usage is not None
    assert streamed_usage.prompt_tokens > 0 and streamed_usage.completion_tokens > 0

    ids = [r.headers["x-request-id"] for r in (raw, plain_stream, usage_stream)]
    rows = stack.wait_rows(ids)
    for request_id, stream, seen in zip(ids, (False, True, True), (usage, None, streamed_usage), strict=True):
        row = rows[request_id]
        assert (row.endpoint, row.alias, row.model, row.status, row.stream) == (
            "/v1/chat/completions",
            "claude",
            CLAUDE_MODEL,
            "ok",
            stream,
        )
        assert row.prompt_tokens > 0 and row.completion_tokens > 0
        if seen is not None:
            assert (row.prompt_tokens, row.completion_tokens) == (seen.prompt_tokens, seen.completion_tokens)
