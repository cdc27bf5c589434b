"""Anthropic <-> OpenAI translation of requests, responses and errors (streams: test_translate_stream.py)."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from llm_console.gateway.translate import (
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

from .translate_support import PNG, WEATHER_SCHEMA, openai_completion


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
