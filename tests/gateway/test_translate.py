"""Anthropic ⇄ OpenAI translation, checked against the official SDKs' own models and stream parsers."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from llm_console.gateway.translate import (
    ChatStreamToMessages,
    MessagesStreamToChat,
    TranslationError,
    anthropic_error_to_openai,
    anthropic_usage_to_openai,
    chat_response_to_message,
    chat_to_messages,
    message_to_chat_response,
    messages_to_chat,
    openai_error_to_anthropic,
    openai_usage_to_anthropic,
)

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


def test_usage_rule_keeps_every_token_both_ways() -> None:
    anthropic_usage = {
        "input_tokens": 20,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    }
    chat_usage = anthropic_usage_to_openai(anthropic_usage)
    assert chat_usage == {
        "prompt_tokens": 125,
        "completion_tokens": 7,
        "total_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    }
    assert openai_usage_to_anthropic(chat_usage) == anthropic_usage
    plain = openai_usage_to_anthropic({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
    assert plain == {
        "input_tokens": 9,
        "output_tokens": 2,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    assert openai_usage_to_anthropic({"prompt_tokens": "x", "completion_tokens": -3}) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


def full_anthropic_request() -> dict[str, Any]:
    return {
        "model": "claude-x",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
        "messages": [
            {"role": "user", "content": "Weather in Paris and the time?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "10:00"}]},
                    {"type": "text", "text": "And this picture?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://img.example/a.jpg"}},
                ],
            },
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather by city", "input_schema": WEATHER_SCHEMA},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stop_sequences": ["END", "STOP"],
        "temperature": 0.2,
        "top_p": 0.9,
        "stream": False,
        "metadata": {"user_id": "user-7"},
    }


def test_messages_to_chat_maps_every_field() -> None:
    chat = messages_to_chat(full_anthropic_request())
    assert chat["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
    }
    assert chat["messages"][2] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Checking."}],
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    }
    assert [m["role"] for m in chat["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "assistant",
        "user",
    ]
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert chat["messages"][4] == {
        "role": "tool",
        "tool_call_id": "toolu_2",
        "content": [{"type": "text", "text": "10:00"}],
    }
    assert chat["messages"][5]["content"] == [
        {"type": "text", "text": "And this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://img.example/a.jpg"}},
    ]
    assert chat["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather by city", "parameters": WEATHER_SCHEMA},
    }
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (chat["stop"], chat["max_tokens"], chat["user"]) == (["END", "STOP"], 300, "user-7")
    assert (chat["temperature"], chat["top_p"], chat["stream"]) == (0.2, 0.9, False)
    assert "stream_options" not in chat


def test_messages_to_chat_round_trips_to_the_same_request() -> None:
    original = full_anthropic_request()
    assert chat_to_messages(messages_to_chat(original)) == original


def test_chat_to_messages_round_trips_to_the_same_request() -> None:
    original = {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}}]},
        ],
        "max_tokens": 50,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}],
        "tool_choice": "required",
        "stream": True,
        "user": "u1",
    }
    anthropic_request = chat_to_messages(original)
    assert anthropic_request["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
        ],
    }
    back = messages_to_chat(anthropic_request)
    assert back.pop("stream_options") == {"include_usage": True}
    assert back == original


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", [{"role": "system", "content": "Be brief."}]),
        (
            [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
            [{"role": "system", "content": [{"type": "text", "text": "A"}]}],
        ),
        ("", []),
    ],
)
def test_system_prompt_to_chat(system: Any, expected: list[dict[str, Any]]) -> None:
    chat = messages_to_chat(
        {"model": "m", "max_tokens": 5, "system": system, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat["messages"][:-1] == expected


def test_system_and_developer_messages_are_hoisted_into_system() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "Rule one."},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "Rule two."}]},
        ],
    }
    out = chat_to_messages(body)
    assert out["system"] == [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}]
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    single = chat_to_messages({"model": "m", "messages": [{"role": "system", "content": "Only."}, body["messages"][1]]})
    assert single["system"] == "Only."


def test_consecutive_same_role_messages_are_merged_for_alternation() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "four"},
            {"role": "user", "content": "five"},
        ],
    }
    assert chat_to_messages(body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
        {"role": "user", "content": "five"},
    ]


def test_parallel_tool_messages_and_following_user_text_become_one_user_turn_in_order() -> None:
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": f'{{"i":{i}}}'}} for i in (1, 2)
    ]
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "Running both.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "summarise"},
        ],
    }
    messages = chat_to_messages(body)["messages"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Running both."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"i": 1}},
        {"type": "tool_use", "id": "call_2", "name": "f", "input": {"i": 2}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "two"}]},
        {"type": "text", "text": "summarise"},
    ]


def test_tool_ids_anthropic_would_reject_are_rewritten_the_same_way_on_both_sides() -> None:
    call = {"id": "call.a:b", "type": "function", "function": {"name": "f", "arguments": ""}}
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call.a:b", "content": "ok"},
        ],
    }
    messages = chat_to_messages(body)["messages"]
    assert messages[1]["content"][0]["id"] == messages[2]["content"][0]["tool_use_id"] == "call_a_b"
    assert messages[1]["content"][0]["input"] == {}


@pytest.mark.parametrize(
    ("anthropic_choice", "chat_choice"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice_both_ways(anthropic_choice: dict[str, Any], chat_choice: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    request = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": tools}
    chat = messages_to_chat(request | {"tool_choice": anthropic_choice})
    assert chat["tool_choice"] == chat_choice
    assert chat_to_messages(chat)["tool_choice"] == anthropic_choice


def test_disabling_parallel_tool_use_both_ways() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    request = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": tools}
    chat = messages_to_chat(request | {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}})
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert chat_to_messages(chat)["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    no_choice = chat_to_messages(chat | {"tool_choice": None})
    assert no_choice["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_completion_tokens": 10, "max_tokens": 20}, 10),
        ({"max_tokens": 20}, 20),
        ({}, 1234),
    ],
)
def test_max_tokens_precedence(fields: dict[str, Any], expected: int) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]} | fields
    assert chat_to_messages(body, default_max_tokens=1234)["max_tokens"] == expected


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["A", "B"], ["A", "B"]), (None, None)])
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    out = chat_to_messages({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": stop})
    assert out.get("stop_sequences") == expected


def test_streaming_messages_request_asks_the_upstream_for_usage() -> None:
    chat = messages_to_chat(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"n": 2}, "n", "`n` must be 1"),
        ({"logprobs": True}, "logprobs", "log probabilities"),
        ({"response_format": {"type": "json_object"}}, "response_format", "JSON modes"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
            "input_audio",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role", "function"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
            "JSON",
        ),
        ({"messages": "hello"}, "messages", "array"),
        ({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "tools[0].type", "custom"),
    ],
)
def test_chat_requests_anthropic_cannot_express_are_refused(body: dict[str, Any], param: str, words: str) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}]} | body
    with pytest.raises(TranslationError) as caught:
        chat_to_messages(request)
    assert caught.value.param == param
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("message", "param", "words"),
    [
        ({"role": "user", "content": [{"type": "document", "source": {}}]}, "messages[0].content[0]", "'document'"),
        (
            {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]},
            "messages[0].content[0].source",
            "image/file",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}],
            },
            "messages[0].content[0].content[0]",
            "'image'",
        ),
        ({"role": "user", "content": [{"text": "no type"}]}, "messages[0].content[0]", "'None'"),
        ({"role": "user", "content": ["bare string"]}, "messages[0].content[0]", "object"),
        ({"role": "system", "content": "x"}, "messages[0].role", "user"),
    ],
)
def test_anthropic_requests_openai_cannot_express_are_refused(message: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as caught:
        messages_to_chat({"model": "m", "max_tokens": 5, "messages": [message]})
    assert caught.value.param == param
    assert words in str(caught.value)


def test_server_tools_are_refused_and_thinking_history_is_dropped() -> None:
    base = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(TranslationError) as caught:
        messages_to_chat(base | {"tools": [{"type": "web_search_20250305", "name": "web_search"}]})
    assert caught.value.param == "tools[0]"
    thinking = {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "ok"}],
    }
    chat = messages_to_chat(
        base | {"messages": [*base["messages"], thinking], "thinking": {"type": "enabled"}, "top_k": 5}
    )
    assert chat["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}
    assert "thinking" not in chat and "top_k" not in chat


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


def test_chat_response_to_message_validates_with_the_anthropic_sdk() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
    msg = chat_response_to_message(
        openai_completion(content="Sure.", tool_calls=[call], finish_reason="tool_calls"), model="alias"
    )
    parsed = Message.model_validate(msg)
    assert parsed.id == "msg_chatcmpl-xyz" and parsed.model == "alias" and parsed.stop_reason == "tool_use"
    assert [b.type for b in parsed.content] == ["text", "tool_use"]
    assert msg["content"][1] == {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Rome"}}
    assert msg["usage"] == {
        "input_tokens": 18,
        "output_tokens": 9,
        "cache_read_input_tokens": 32,
        "cache_creation_input_tokens": 0,
    }


@pytest.mark.parametrize(
    ("finish", "extra", "stop_reason", "sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
    ],
)
def test_finish_reason_to_stop_reason(
    finish: str, extra: dict[str, Any], stop_reason: str, sequence: str | None
) -> None:
    completion = openai_completion(content="x", finish_reason=finish)
    completion["choices"][0] |= extra
    msg = chat_response_to_message(completion, model="m")
    assert (msg["stop_reason"], msg["stop_sequence"]) == (stop_reason, sequence)
    Message.model_validate(msg)


def test_refusals_and_broken_upstream_tool_arguments() -> None:
    refused = chat_response_to_message(openai_completion(content=None, refusal="I can't help with that."), model="m")
    assert refused["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert refused["stop_reason"] == "refusal"
    Message.model_validate(refused)
    broken = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": '}}
    with pytest.raises(TranslationError, match="JSON object"):
        chat_response_to_message(openai_completion(tool_calls=[broken], finish_reason="tool_calls"), model="m")


def anthropic_message(**fields: Any) -> dict[str, Any]:
    usage = {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 0}
    return {
        "id": "msg_01abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    } | fields


def test_message_to_chat_response_validates_with_the_openai_sdk() -> None:
    content = [
        {"type": "thinking", "thinking": "hm", "signature": "s"},
        {"type": "text", "text": "Looking "},
        {"type": "text", "text": "it up."},
        {"type": "tool_use", "id": "toolu_7", "name": "search", "input": {"q": "cats"}},
    ]
    chat = message_to_chat_response(anthropic_message(content=content, stop_reason="tool_use"), model="alias")
    parsed = ChatCompletion.model_validate(chat)
    assert parsed.id == "chatcmpl-msg_01abc" and parsed.model == "alias"
    choice = parsed.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Looking it up."
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    assert chat["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "search", "arguments": '{"q":"cats"}'}
    assert chat["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 4,
        "total_tokens": 104,
        "prompt_tokens_details": {"cached_tokens": 90},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reason_to_finish_reason(stop_reason: str, finish: str) -> None:
    chat = message_to_chat_response(anthropic_message(stop_reason=stop_reason), model="m")
    assert ChatCompletion.model_validate(chat).choices[0].finish_reason == finish


def test_response_ids_are_generated_when_the_upstream_sent_none() -> None:
    assert message_to_chat_response(anthropic_message(id=None), model="m")["id"].startswith("chatcmpl-")
    no_id = openai_completion(content="x")
    del no_id["id"]
    first, second = (chat_response_to_message(no_id, model="m")["id"] for _ in range(2))
    assert first.startswith("msg_") and first != second


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
        (502, "api_error"),
    ],
)
def test_error_types_by_status_in_both_directions(status: int, kind: str) -> None:
    openai_body = {"error": {"message": f"boom {status}", "type": "server_error", "param": None, "code": None}}
    assert openai_error_to_anthropic(status, openai_body) == {
        "type": "error",
        "error": {"type": kind, "message": f"boom {status}"},
    }
    anthropic_body = {"type": "error", "error": {"type": "whatever", "message": f"bang {status}"}}
    converted = anthropic_error_to_openai(status, anthropic_body)
    assert converted == {"error": {"message": f"bang {status}", "type": kind, "param": None, "code": None}}


def test_error_message_falls_back_when_the_upstream_body_is_empty_or_odd() -> None:
    assert openai_error_to_anthropic(502, None)["error"]["message"] == "The upstream returned HTTP 502."
    assert openai_error_to_anthropic(400, {"error": "plain words"})["error"]["message"] == "plain words"
    assert anthropic_error_to_openai(404, {"message": "no such model"})["error"]["message"] == "no such model"


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
