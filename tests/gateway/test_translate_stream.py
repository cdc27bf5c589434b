"""Anthropic <-> OpenAI translation of streams, checked event by event and through the official SDKs."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from llm_console.gateway.translate import (
    ChatStreamToMessages,
    MessagesStreamToChat,
    chat_response_to_message,
)

from .translate_support import (
    anthropic_sdk_final,
    anthropic_tool_stream,
    chat_chunk,
    openai_completion,
    openai_sdk_final,
    openai_tool_stream,
    parse_anthropic_sse,
    parse_chat_sse,
)


def test_chat_stream_becomes_anthropic_events_the_sdk_accepts() -> None:
    translator = ChatStreamToMessages(model="alias")
    raw = b"".join(translator.feed(chunk) for chunk in openai_tool_stream()) + translator.finish()
    events = parse_anthropic_sse(raw)
    assert [name for name, _ in events] == [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"],
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["id"] == "msg_chatcmpl-abc123"
    assert [data["index"] for name, data in events if name.startswith("content_block")] == [0] * 4 + [1] * 4 + [2] * 4
    assert events[-2][1]["usage"] == {
        "input_tokens": 20,
        "output_tokens": 30,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
    }
    assert translator.usage is not None and translator.usage["prompt_tokens"] == 120

    final = anthropic_sdk_final(raw)
    assert final.model == "alias" and final.stop_reason == "tool_use"
    dumped = final.model_dump(exclude_none=True)
    assert dumped["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"tz": "CET"}},
    ]
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cache_read_input_tokens) == (20, 30, 100)


def test_chat_stream_with_stop_sequence_and_no_usage_chunk() -> None:
    """vLLM names the matched stop string in `choices[].stop_reason`; it becomes Anthropic's stop_sequence."""
    translator = ChatStreamToMessages(model="alias", message_id="msg_fixed")
    last = chat_chunk({}, "stop")
    last["choices"][0]["stop_reason"] = "##"
    raw = translator.feed(chat_chunk({"role": "assistant", "content": "ab"})) + translator.feed(last)
    raw += translator.finish()
    assert translator.finish() == b""
    final = anthropic_sdk_final(raw)
    assert (final.id, final.stop_reason, final.stop_sequence) == ("msg_fixed", "stop_sequence", "##")
    assert final.content[0].type == "text" and final.content[0].text == "ab"
    assert translator.usage is None and final.usage.output_tokens == 0


def test_text_after_a_tool_call_opens_a_new_block_and_stop_with_tools_means_tool_use() -> None:
    """Some servers (older vLLM) finish with "stop" after a tool call; Anthropic clients need "tool_use" there."""
    translator = ChatStreamToMessages(model="alias")
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    chunks = [chat_chunk({"tool_calls": [call]}), chat_chunk({"content": "done"}), chat_chunk({}, "stop")]
    raw = b"".join(translator.feed(chunk) for chunk in chunks) + translator.finish()
    text_deltas = [
        d for n, d in parse_anthropic_sse(raw) if n == "content_block_delta" and d["delta"]["type"] == "text_delta"
    ]
    assert [d["index"] for d in text_deltas] == [1]
    final = anthropic_sdk_final(raw)
    assert final.stop_reason == "tool_use"
    assert [block.type for block in final.content] == ["tool_use", "text"]
    non_streamed = openai_completion(content="", tool_calls=[call | {"function": {"name": "f", "arguments": "{}"}}])
    assert chat_response_to_message(non_streamed, model="m")["stop_reason"] == "tool_use"


def test_empty_chat_stream_still_makes_a_complete_message() -> None:
    raw = ChatStreamToMessages(model="alias").finish()
    assert [name for name, _ in parse_anthropic_sse(raw)] == ["message_start", "message_delta", "message_stop"]
    assert anthropic_sdk_final(raw).content == []


def test_chat_stream_error_is_an_anthropic_error_event_the_sdk_raises() -> None:
    translator = ChatStreamToMessages(model="alias")
    raw = translator.feed(chat_chunk({"content": "partial"})) + translator.error(
        "upstream reset", error_type="overloaded_error"
    )
    assert translator.feed(chat_chunk({"content": "late"})) == b"" and translator.finish() == b""
    name, data = parse_anthropic_sse(raw)[-1]
    assert (name, data) == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "upstream reset"}},
    )
    with pytest.raises(anthropic.APIStatusError, match="upstream reset"):
        anthropic_sdk_final(raw)


def test_anthropic_stream_becomes_chat_chunks_the_sdk_accepts() -> None:
    translator = MessagesStreamToChat(model="alias", include_usage=True)
    raw = b"".join(translator.feed(name, data) for name, data in anthropic_tool_stream()) + translator.finish()
    events = parse_chat_sse(raw)
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
    assert {c.id for c in chunks} == {"chatcmpl-msg_01X"} and {c.model for c in chunks} == {"alias"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None] * 6 + ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 130,
        "completion_tokens": 89,
        "total_tokens": 219,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    }
    assert translator.usage == events[-2]["usage"]

    sdk_chunks, final = openai_sdk_final(raw)
    assert len(sdk_chunks) == len(chunks)
    message = final.choices[0].message
    assert message.content == "Okay, checking." and final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.id == "toolu_01A" and call.type == "function"
    assert (call.function.name, orjson.loads(call.function.arguments)) == ("get_weather", {"city": "San Francisco"})
    assert final.usage is not None and final.usage.total_tokens == 219


def test_anthropic_stream_without_include_usage_ends_with_done_only() -> None:
    translator = MessagesStreamToChat(model="alias", include_usage=False)
    raw = b"".join(translator.feed(name, data) for name, data in anthropic_tool_stream()) + translator.finish()
    events = parse_chat_sse(raw)
    assert events[-1] == "[DONE]" and all(e.get("usage") is None for e in events[:-1])
    assert translator.usage is not None and translator.usage["completion_tokens"] == 89


def test_anthropic_stream_error_event_becomes_an_openai_error_the_sdk_raises() -> None:
    translator = MessagesStreamToChat(model="alias", include_usage=True)
    start, *_ = anthropic_tool_stream()
    raw = translator.feed(*start)
    raw += translator.feed("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert translator.finish() == b""
    assert parse_chat_sse(raw)[-1] == {
        "error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}
    }
    with pytest.raises(openai.APIError, match="Overloaded"):
        openai_sdk_final(raw)


def test_streams_chained_both_ways_keep_content_and_usage() -> None:
    """Anthropic events → chat chunks → Anthropic events: the SDK sees the same answer, less the thinking block."""
    to_chat = MessagesStreamToChat(model="alias", include_usage=True)
    chat_raw = b"".join(to_chat.feed(name, data) for name, data in anthropic_tool_stream()) + to_chat.finish()
    to_messages = ChatStreamToMessages(model="alias")
    anthropic_raw = (
        b"".join(to_messages.feed(c) for c in parse_chat_sse(chat_raw) if c != "[DONE]") + to_messages.finish()
    )
    final = anthropic_sdk_final(anthropic_raw)
    assert final.model_dump(exclude_none=True)["content"] == [
        {"type": "text", "text": "Okay, checking."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "San Francisco"}},
    ]
    assert final.stop_reason == "tool_use"
    assert final.usage.model_dump(exclude_none=True) == {
        "input_tokens": 25,
        "output_tokens": 89,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    }
