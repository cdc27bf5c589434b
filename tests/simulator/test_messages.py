"""Anthropic's Messages API works with the official anthropic SDK, plain and streamed, in Anthropic's shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pydantic
import pytest
import pytest_asyncio
from anthropic.types import Message, RawMessageStreamEvent

from llm_console.simulator import SimulatorConfig
from llm_console.simulator.engine import count_tokens
from llm_console.simulator.server import SimulatorServer
from tests.simulator.conftest import StartSim, asgi_client, named_events
from tests.simulator.test_simulator import metric_samples

MODEL = "llama-3.1-8b-instruct"
PROMPT = "Hello there, simulator!"
USER = [{"role": "user", "content": PROMPT}]
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)


def sdk_for(server: SimulatorServer, api_key: str = "x") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.url, api_key=api_key, max_retries=0, _strict_response_validation=True
    )


@pytest_asyncio.fixture
async def sdk(start_sim: StartSim) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk_for(await start_sim(seed=21)) as client:
        yield client


async def test_plain_message_through_the_sdk(sdk: anthropic.AsyncAnthropic) -> None:
    reply = await sdk.messages.create(model=MODEL, max_tokens=200, messages=USER, system="Be brief.")
    assert reply.id.startswith("msg_")
    assert (reply.type, reply.role, reply.model) == ("message", "assistant", MODEL)
    (block,) = reply.content
    assert block.type == "text" and block.text
    assert reply.stop_reason == "end_turn" and reply.stop_sequence is None
    usage = reply.usage
    assert usage.input_tokens == count_tokens("Be brief.") + 4 + count_tokens(PROMPT) + 4
    assert usage.output_tokens == len(block.text.split())
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)


async def test_max_tokens_stops_with_max_tokens(sdk: anthropic.AsyncAnthropic) -> None:
    reply = await sdk.messages.create(model=MODEL, max_tokens=3, messages=USER)
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 3
    assert len(reply.content[0].text.split()) == 3


async def test_blocks_system_blocks_and_tools_count_as_input(sdk: anthropic.AsyncAnthropic) -> None:
    tool = {"name": "lookup", "description": "Find a word.", "input_schema": {"type": "object", "properties": {}}}
    reply = await sdk.messages.create(
        model=MODEL,
        max_tokens=20,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "system", "content": "Use plain words."},
            {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "found it"}]},
        ],
        tools=[tool],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.5},  # this SDK release has no argument for it; older clients send it
    )
    plain_tool = '{"name":"lookup","description":"Find a word.","input_schema":{"type":"object","properties":{}}}'
    expected = (
        count_tokens("Be brief.") + 4
        + count_tokens("Use plain words.") + 4
        + count_tokens(PROMPT) + 4
        + count_tokens('{"q":1}') + 4
        + count_tokens("found it") + 4
        + count_tokens(plain_tool)
    )  # fmt: skip
    assert reply.usage.input_tokens == expected


async def test_stream_helper_assembles_the_final_message(sdk: anthropic.AsyncAnthropic) -> None:
    async with sdk.messages.stream(model=MODEL, max_tokens=200, messages=USER) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == text and text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == count_tokens(PROMPT) + 4
    assert final.usage.output_tokens == len(text.split())


async def test_raw_stream_events_through_the_sdk(sdk: anthropic.AsyncAnthropic) -> None:
    stream = await sdk.messages.create(model=MODEL, max_tokens=4, messages=USER, stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert start.message.usage.input_tokens == count_tokens(PROMPT) + 4
    assert start.message.usage.output_tokens == 1 and start.message.content == []
    assert delta.delta.stop_reason == "max_tokens" and delta.usage.output_tokens == 4


async def test_wire_frames_match_anthropic() -> None:
    async with asgi_client(SimulatorConfig.fast(seed=4)) as c:
        body = {"model": MODEL, "max_tokens": 50, "messages": USER}
        plain = await c.post("/v1/messages", json=body)
        streamed = await c.post("/v1/messages", json={**body, "stream": True})
    Message.model_validate(plain.json())
    assert plain.json()["usage"] == {
        "input_tokens": count_tokens(PROMPT) + 4,
        "output_tokens": len(plain.json()["content"][0]["text"].split()),
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = named_events(streamed.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert all(name == data["type"] for name, data in events)
    for name, data in events:
        if name != "ping":
            EVENTS.validate_python(data)


async def _learn_text(start_sim: StartSim, seed: int) -> str:
    async with sdk_for(await start_sim(seed=seed)) as sdk:
        reply = await sdk.messages.create(model=MODEL, max_tokens=256, messages=USER)
    return reply.content[0].text


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequences_cut_the_same_text(start_sim: StartSim, stream: bool) -> None:
    text = await _learn_text(start_sim, seed=99)
    words = text.split()
    stop = f" {words[3]} {words[4]}"
    expected = text[: text.index(stop)]
    async with sdk_for(await start_sim(seed=99)) as sdk:
        if stream:
            async with sdk.messages.stream(model=MODEL, max_tokens=256, messages=USER, stop_sequences=[stop]) as s:
                reply = await s.get_final_message()
        else:
            reply = await sdk.messages.create(model=MODEL, max_tokens=256, messages=USER, stop_sequences=[stop])
    assert reply.content[0].text == expected
    assert (reply.stop_reason, reply.stop_sequence) == ("stop_sequence", stop)
    # The tokens that spelled the stop sequence were generated, so they are billed.
    assert reply.usage.output_tokens == len(text[: text.index(stop) + len(stop)].split())


async def test_sdk_error_classes(start_sim: StartSim) -> None:
    async with sdk_for(await start_sim(max_model_len=30)) as sdk:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await sdk.messages.create(model="claude-nope", max_tokens=5, messages=USER)
        assert missing.value.body == {
            "type": "error",
            "error": {"type": "not_found_error", "message": "model: claude-nope"},
        }
        with pytest.raises(anthropic.BadRequestError) as too_long:
            await sdk.messages.create(model=MODEL, max_tokens=100, messages=USER)
        assert "exceed context limit" in str(too_long.value)
    async with sdk_for(await start_sim(error_rate=1.0)) as failing:
        with pytest.raises(anthropic.OverloadedError) as overloaded:
            await failing.messages.create(model=MODEL, max_tokens=5, messages=USER)
        assert overloaded.value.status_code == 529
        assert overloaded.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }


@pytest.mark.parametrize(
    "body",
    [
        {"max_tokens": 5, "messages": USER},
        {"model": 5, "max_tokens": 5, "messages": USER},
        {"model": MODEL, "messages": USER},
        {"model": MODEL, "max_tokens": 0, "messages": USER},
        {"model": MODEL, "max_tokens": "5", "messages": USER},
        {"model": MODEL, "max_tokens": True, "messages": USER},
        {"model": MODEL, "max_tokens": 5},
        {"model": MODEL, "max_tokens": 5, "messages": []},
        {"model": MODEL, "max_tokens": 5, "messages": ["hi"]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": [{"type": "image"}]}]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user"}]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": 7}]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "system": 3},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "system": [{"type": "image"}]},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "stop_sequences": "END"},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "temperature": 1.5},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "tools": [{"description": "nameless"}]},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "metadata": "x"},
        {"model": MODEL, "max_tokens": 5, "messages": USER, "stream": "yes"},
    ],
)
async def test_bad_requests_get_anthropic_400(body: dict[str, Any]) -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        response = await c.post("/v1/messages", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error"
    assert set(payload["error"]) == {"type", "message"}
    assert payload["error"]["type"] == "invalid_request_error" and payload["error"]["message"]


async def test_non_json_body_gets_anthropic_400() -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        response = await c.post("/v1/messages", content=b"\xff{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


async def test_messages_share_the_engine_metrics() -> None:
    async with asgi_client(SimulatorConfig.fast(seed=8)) as c:
        body = {"model": MODEL, "max_tokens": 6, "messages": USER}
        await c.post("/v1/messages", json=body)
        await c.post("/v1/messages", json={**body, "stream": True})
        samples = metric_samples((await c.get("/metrics")).text)
    label = f'model_name="{MODEL}"'
    assert samples[f"vllm:prompt_tokens_total{{{label}}}"] == 2 * (count_tokens(PROMPT) + 4)
    assert samples[f"vllm:generation_tokens_total{{{label}}}"] == 12
    assert samples[f'vllm:request_success_total{{finished_reason="length",{label}}}'] == 2
    assert samples[f"vllm:time_to_first_token_seconds_count{{{label}}}"] == 2
    assert samples[f"vllm:num_requests_running{{{label}}}"] == 0
