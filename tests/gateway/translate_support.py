"""Helpers for the translation tests: SSE parsing, the SDKs' stream accumulators, sample streams."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

ANTHROPIC_EVENT = TypeAdapter(RawMessageStreamEvent)
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PNG = "iVBORw0KGgo="


def _sse_body(raw: bytes) -> tuple[int, bytes, dict[str, str]]:
    return 200, raw, {"content-type": "text/event-stream"}


def anthropic_sdk_final(raw: bytes) -> Message:
    """Run `raw` through the Anthropic SDK's own stream parser and accumulator, then validate the result strictly.

    The Anthropic SDK speaks `httpx2` and the OpenAI SDK `httpx`; each gets a mock transport of its own kind.
    """
    status, content, headers = _sse_body(raw)
    transport = httpx2.MockTransport(lambda _req: httpx2.Response(status, content=content, headers=headers))
    with (
        httpx2.Client(transport=transport) as http,
        anthropic.Anthropic(api_key="k", base_url="http://upstream.test", http_client=http) as client,
        client.messages.stream(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream,
    ):
        for _ in stream:
            pass
        final = stream.get_final_message()
    return Message.model_validate(final.to_dict())


def openai_sdk_final(raw: bytes) -> tuple[list[ChatCompletionChunk], ChatCompletion]:
    """Run `raw` through the OpenAI SDK's stream parser, then accumulate the chunks with its stream state."""
    status, content, headers = _sse_body(raw)
    transport = httpx.MockTransport(lambda _req: httpx.Response(status, content=content, headers=headers))
    with (
        httpx.Client(transport=transport) as http,
        openai.OpenAI(api_key="k", base_url="http://upstream.test/v1", http_client=http) as client,
    ):
        chunks = list(
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    return chunks, ChatCompletion.model_validate(state.get_final_completion().model_dump())


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split on blank lines; every event must carry an `event:` name equal to its data's `type`."""
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw[:-2].split(b"\n\n"):
        name_line, data_line = block.split(b"\n")
        assert name_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        name, data = name_line[7:].decode(), orjson.loads(data_line[6:])
        assert data["type"] == name
        if name != "error":
            ANTHROPIC_EVENT.validate_python(data)
        events.append((name, data))
    return events


def parse_chat_sse(raw: bytes) -> list[Any]:
    """Split on blank lines; every event is one `data:` line, a JSON chunk or `[DONE]`."""
    assert raw.endswith(b"\n\n")
    out: list[Any] = []
    for block in raw[:-2].split(b"\n\n"):
        assert block.startswith(b"data: ") and b"\n" not in block
        out.append("[DONE]" if block == b"data: [DONE]" else orjson.loads(block[6:]))
    return out


def chat_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    base = {"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1700000000, "model": "up"}
    if delta is None:
        return base | {"choices": []} | extra
    return base | {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]} | extra


def openai_tool_stream() -> list[dict[str, Any]]:
    """What vLLM/OpenAI send for text, then two parallel tool calls, then the include_usage chunk."""
    call_1 = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    call_2 = {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": '{"tz":'}}
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    return [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "Let me "}),
        chat_chunk({"content": "check."}),
        chat_chunk({"tool_calls": [call_1]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chat_chunk({"tool_calls": [call_2]}),
        chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": ' "CET"}'}}]}),
        chat_chunk({}, "tool_calls"),
        chat_chunk(None, usage=usage | {"prompt_tokens_details": {"cached_tokens": 100}}),
    ]


def anthropic_tool_stream() -> list[tuple[str, dict[str, Any]]]:
    """What Anthropic sends for thinking, text and a tool call (shapes from its streaming documentation)."""
    usage = {"input_tokens": 25, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1}
    message = {"id": "msg_01X", "type": "message", "role": "assistant", "content": [], "model": "claude-x"}
    tool = {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}

    def delta(index: int, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": body}

    events = [
        ("message_start", {"type": "message_start", "message": message | {"stop_reason": None, "usage": usage}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        delta(0, {"type": "thinking_delta", "thinking": "The user wants weather."}),
        delta(0, {"type": "signature_delta", "signature": "sig"}),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        delta(1, {"type": "text_delta", "text": "Okay"}),
        delta(1, {"type": "text_delta", "text": ", checking."}),
        ("content_block_stop", {"index": 1}),
        ("content_block_start", {"index": 2, "content_block": tool}),
        delta(2, {"type": "input_json_delta", "partial_json": ""}),
        delta(2, {"type": "input_json_delta", "partial_json": '{"city": "San'}),
        delta(2, {"type": "input_json_delta", "partial_json": ' Francisco"}'}),
        ("content_block_stop", {"index": 2}),
        (
            "message_delta",
            {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 89}},
        ),
        ("message_stop", {}),
    ]
    return [(name, {"type": name} | data) for name, data in events]


def openai_completion(**message: Any) -> dict[str, Any]:
    finish = message.pop("finish_reason", "stop")
    choice = {"index": 0, "message": {"role": "assistant"} | message, "finish_reason": finish, "logprobs": None}
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 9,
        "total_tokens": 59,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    return {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [choice],
        "usage": usage,
    }
