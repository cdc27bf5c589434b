"""The gateway in front of `fakeai`, an OpenAI-compatible fake server nobody here wrote, with the `openai` SDK.

A peer implementation catches what a home-grown simulator shares with the gateway's own assumptions: fakeai,
for one, sends stream usage on the last content chunk rather than in a separate `choices: []` chunk. fakeai is a
pinned test dependency, so a server that will not start fails these tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.integration.fixtures_gateway import Deployment, Gateway, fakeai, gateway

CHAT_MODEL = "openai/gpt-oss-120b"
EMBED_MODEL = "text-embedding-3-small"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about the tides and the moon."}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with fakeai(tmp_path_factory.mktemp("fakeai")) as root:
        routes = [Deployment("fake-chat", root + "/v1", CHAT_MODEL), Deployment("fake-embed", root, EMBED_MODEL)]
        with gateway(tmp_path_factory.mktemp("gw-fakeai"), routes) as gw:
            yield gw


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=30)


async def test_chat_completion_through_the_gateway(stack: Gateway) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(model="fake-chat", messages=MESSAGES, max_tokens=40)
        completion = raw.parse()
    assert completion.choices[0].message.content
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.alias, row.model, row.status, row.stream) == (
        "/v1/chat/completions",
        "fake-chat",
        CHAT_MODEL,
        "ok",
        False,
    )
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_streamed_chat_usage_is_logged(stack: Gateway, include_usage: bool) -> None:
    async with client(stack) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="fake-chat",
            messages=MESSAGES,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True} if include_usage else openai.omit,
        )
        chunks = [chunk async for chunk in raw.parse()]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert all(ch.choices for ch in chunks), "fakeai sends no usage-only chunk, so the client must see none"
    row = stack.wait_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.alias, row.status, row.stream) == ("/v1/chat/completions", "fake-chat", "ok", True)
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    if include_usage:
        usage = next(ch.usage for ch in reversed(chunks) if ch.usage is not None)
        assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


async def test_stream_without_include_usage_carries_no_usage_to_the_client(stack: Gateway) -> None:
    """OpenAI's contract: without `include_usage`, no chunk carries usage (fakeai alone sends none then)."""
    async with client(stack) as c:
        stream = await c.chat.completions.create(model="fake-chat", messages=MESSAGES, max_tokens=20, stream=True)
        chunks = [chunk async for chunk in stream]
    assert chunks and all(ch.usage is None for ch in chunks)


async def test_embeddings_through_the_gateway(stack: Gateway) -> None:
    """`fake-embed` was added with fakeai's root URL (no `/v1`): the gateway must address `/v1/embeddings`."""
    async with client(stack) as c:
        raw = await c.embeddings.with_raw_response.create(model="fake-embed", input=["alpha", "beta gamma"])
        result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == len(result.data[1].embedding) > 0
    assert result.usage.prompt_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.alias, row.model, row.status) == ("/v1/embeddings", "fake-embed", EMBED_MODEL, "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (result.usage.prompt_tokens, 0)


async def test_anthropic_sdk_messages_through_the_gateway_to_fakeai(stack: Gateway) -> None:
    """The Anthropic SDK against fakeai: /v1/messages translated to chat completions and back."""
    async with anthropic.AsyncAnthropic(base_url=stack.url, api_key=stack.key, max_retries=0, timeout=30) as c:
        raw = await c.messages.with_raw_response.create(
            model="fake-chat", max_tokens=40, messages=[{"role": "user", "content": "Tell me about the tides."}]
        )
        message = await raw.parse()
        async with c.messages.stream(
            model="fake-chat", max_tokens=40, messages=[{"role": "user", "content": "And the moon?"}]
        ) as stream:
            streamed = await stream.get_final_message()
    assert message.content and message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    row = stack.wait_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.status) == ("/v1/messages", "ok")
    # Anthropic's input_tokens leave out cache reads (fakeai simulates prefix-cache hits); the row counts all
    cached = message.usage.cache_read_input_tokens or 0
    assert (row.prompt_tokens, row.cached_tokens) == (message.usage.input_tokens + cached, cached)
    assert row.completion_tokens == message.usage.output_tokens
    assert streamed.content and streamed.usage.output_tokens > 0
