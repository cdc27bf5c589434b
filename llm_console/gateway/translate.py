"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, responses, SSE streams, usage and errors.

Pure functions over parsed JSON (plain dicts), so the hot path pays for no models and copies nothing but the
output it builds. A request one API cannot express in the other raises `TranslationError` (a 400 for the
client); fields with no counterpart that cannot change the answer's shape are dropped, as each docstring says.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, TypeVar

import orjson

JSON = dict[str, Any]
T = TypeVar("T")

_KIND_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
_FINISH_TO_STOP["content_filter"] = "refusal"
_STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length"}
_STOP_TO_FINISH |= {"model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error"}
_STATUS_TYPES |= {403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}
_STATUS_TYPES |= {500: "api_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}
_CHAT_ONLY = {
    "logprobs": "Token log probabilities are not available from this model's API.",
    "functions": "Legacy `functions` are not supported here; send `tools`.",
    "audio": "Audio output is not available from this model's API.",
}
_TO_OPENAI = "an OpenAI"
_TO_ANTHROPIC = "an Anthropic"


class TranslationError(ValueError):
    """A request that cannot be expressed in the other API; `.param` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _expect(value: object, kind: type[T], param: str) -> T:
    if not isinstance(value, kind):
        raise TranslationError(f"`{param}` must be {_KIND_NAMES[kind]}.", param)
    return value


def _obj(value: object) -> JSON:
    """Upstream responses are read leniently: a missing or mistyped object reads as empty."""
    return value if isinstance(value, dict) else {}


def _unsupported(kind: object, param: str, api: str) -> TranslationError:
    return TranslationError(f"Content of type {str(kind)[:40]!r} at `{param}` cannot be sent to {api} upstream.", param)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _prefixed(value: object, prefix: str) -> str:
    """Keep the upstream id (so it can be found in upstream logs), marked with the prefix clients expect."""
    if isinstance(value, str) and value:
        return value if value.startswith(prefix) else prefix + value
    return prefix + uuid.uuid4().hex


def _tool_id(value: object, param: str | None = None) -> str:
    """Anthropic accepts only `[A-Za-z0-9_-]` in tool ids; the same substitution on both sides keeps pairs matched."""
    if isinstance(value, str) and value:
        return _ID_UNSAFE.sub("_", value)
    if param is not None:
        raise TranslationError(f"`{param}` must be a non-empty string.", param)
    return "toolu_" + uuid.uuid4().hex


def _json_text(value: object) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def _arguments(value: object, param: str) -> Any:
    """OpenAI carries tool arguments as a JSON string, Anthropic as an object; an empty string means no input."""
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    try:
        parsed = orjson.loads(value) if isinstance(value, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TranslationError(f"`{param}` must be a JSON object encoded as a string.", param)
    return parsed


def anthropic_usage_to_openai(usage: object) -> JSON:
    """Anthropic usage → OpenAI usage, token for token.

    Anthropic's `input_tokens` excludes cache reads and cache writes; OpenAI's `prompt_tokens` counts every
    prompt token. So prompt_tokens = input_tokens + cache_read_input_tokens + cache_creation_input_tokens,
    cached_tokens = cache_read_input_tokens, cache_write_tokens = cache_creation_input_tokens (when any),
    completion_tokens = output_tokens and total_tokens = prompt_tokens + completion_tokens.
    """
    u = _obj(usage)
    read, write = _count(u.get("cache_read_input_tokens")), _count(u.get("cache_creation_input_tokens"))
    prompt, completion = _count(u.get("input_tokens")) + read + write, _count(u.get("output_tokens"))
    details: JSON = {"cached_tokens": read, "cache_write_tokens": write} if write else {"cached_tokens": read}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }


def openai_usage_to_anthropic(usage: object) -> JSON:
    """The inverse: input_tokens = prompt_tokens - cached_tokens - cache_write_tokens (never below zero)."""
    u = _obj(usage)
    details = _obj(u.get("prompt_tokens_details"))
    read, write = _count(details.get("cached_tokens")), _count(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(_count(u.get("prompt_tokens")) - read - write, 0),
        "output_tokens": _count(u.get("completion_tokens")),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }


def _stop_reason(finish: object, matched: object, called_tools: bool) -> tuple[str, str | None]:
    """vLLM names the matched stop string in `stop_reason`; some servers finish with "stop" after a tool call."""
    if finish == "stop" and isinstance(matched, str):
        return "stop_sequence", matched
    reason = _FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    return ("tool_use" if called_tools and reason == "end_turn" else reason), None


def _text_blocks(value: object, param: str, api: str) -> list[JSON]:
    """A list of text blocks (or parts) rebuilt with only `type` and `text`; `cache_control` and the like drop."""
    out: list[JSON] = []
    for j, item in enumerate(_expect(value, list, param)):
        p = f"{param}[{j}]"
        if (block := _expect(item, dict, p)).get("type") != "text":
            raise _unsupported(block.get("type"), p, api)
        out.append({"type": "text", "text": _expect(block.get("text"), str, p + ".text")})
    return out


def messages_to_chat(body: JSON) -> JSON:
    """Anthropic `/v1/messages` request → OpenAI chat request.

    Dropped, having no chat counterpart: `top_k`, `thinking` (and thinking blocks in history), `cache_control`,
    `tool_result.is_error`. `max_tokens` stays `max_tokens`, the one name every OpenAI-compatible server reads.
    """
    messages: list[JSON] = []
    system = body.get("system")
    if system and isinstance(system, str):
        messages.append({"role": "system", "content": system})
    elif system is not None and not isinstance(system, str):
        messages.append({"role": "system", "content": _text_blocks(system, "system", _TO_OPENAI)})
    for i, item in enumerate(_expect(body.get("messages"), list, "messages")):
        _message_to_chat(_expect(item, dict, f"messages[{i}]"), f"messages[{i}]", messages)
    out: JSON = {"model": body.get("model"), "messages": messages}
    for key in ("max_tokens", "temperature", "top_p", "stream"):
        if (value := body.get(key)) is not None:
            out[key] = value
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}
    if stops := body.get("stop_sequences"):
        out["stop"] = stops
    if isinstance(user := _obj(body.get("metadata")).get("user_id"), str):
        out["user"] = user
    if tools := body.get("tools"):
        out["tools"] = [_tool_to_chat(tool, f"tools[{i}]") for i, tool in enumerate(_expect(tools, list, "tools"))]
    if (choice := body.get("tool_choice")) is not None:
        _tool_choice_to_chat(_expect(choice, dict, "tool_choice"), out)
    return out


def _message_to_chat(msg: JSON, param: str, out: list[JSON]) -> None:
    """Append one Anthropic message as chat messages: its tool results become `tool` messages ahead of the rest."""
    role, content = msg.get("role"), msg.get("content")
    if role not in ("user", "assistant"):
        raise TranslationError(f'`{param}.role` must be "user" or "assistant".', f"{param}.role")
    if isinstance(content, str):
        out.append({"role": role, "content": content})
        return
    parts: list[JSON] = []
    calls: list[JSON] = []
    before = len(out)
    for j, item in enumerate(_expect(content, list, f"{param}.content")):
        p = f"{param}.content[{j}]"
        kind = (block := _expect(item, dict, p)).get("type")
        if kind == "text":
            parts.append({"type": "text", "text": _expect(block.get("text"), str, p + ".text")})
        elif kind == "image" and role == "user":
            parts.append(_image_to_chat(_expect(block.get("source"), dict, p + ".source"), p + ".source"))
        elif kind == "tool_result" and role == "user":
            out.append(_tool_result_to_chat(block, p))
        elif kind == "tool_use" and role == "assistant":
            fn = {"name": _expect(block.get("name"), str, p + ".name"), "arguments": _json_text(block.get("input"))}
            calls.append({"id": _tool_id(block.get("id"), p + ".id"), "type": "function", "function": fn})
        elif kind not in ("thinking", "redacted_thinking") or role != "assistant":
            raise _unsupported(kind, p, _TO_OPENAI)
    if role == "assistant":
        message: JSON = {"role": "assistant", "content": parts or (None if calls else "")}
        out.append(message | {"tool_calls": calls} if calls else message)
    elif parts or len(out) == before:
        out.append({"role": "user", "content": parts})


def _image_to_chat(source: JSON, param: str) -> JSON:
    if source.get("type") == "base64":
        media_type = _expect(source.get("media_type"), str, param + ".media_type")
        url = f"data:{media_type};base64,{_expect(source.get('data'), str, param + '.data')}"
    elif source.get("type") == "url":
        url = _expect(source.get("url"), str, param + ".url")
    else:
        raise _unsupported(f"image/{source.get('type')}", param, _TO_OPENAI)
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_to_chat(block: JSON, param: str) -> JSON:
    content = block.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = _text_blocks(content, param + ".content", _TO_OPENAI)
    tool_call_id = _tool_id(block.get("tool_use_id"), param + ".tool_use_id")
    return {"role": "tool", "tool_call_id": tool_call_id, "content": content}


def _tool_to_chat(item: object, param: str) -> JSON:
    if (tool := _expect(item, dict, param)).get("type") not in (None, "custom"):
        raise TranslationError(f"The server tool {str(tool.get('type'))[:60]!r} has no OpenAI equivalent.", param)
    fn: JSON = {"name": _expect(tool.get("name"), str, param + ".name")}
    if (description := tool.get("description")) is not None:
        fn["description"] = description
    fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    if (strict := tool.get("strict")) is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _tool_choice_to_chat(choice: JSON, out: JSON) -> None:
    kind = choice.get("type")
    if kind == "tool":
        name = _expect(choice.get("name"), str, "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in ("auto", "any", "none"):
        out["tool_choice"] = "required" if kind == "any" else kind
    else:
        raise TranslationError('`tool_choice.type` must be "auto", "any", "tool" or "none".', "tool_choice.type")
    if choice.get("disable_parallel_tool_use") and "tools" in out:
        out["parallel_tool_calls"] = False


def chat_to_messages(body: JSON, *, default_max_tokens: int = 4096) -> JSON:
    """OpenAI chat request → Anthropic `/v1/messages` request.

    System and developer messages are hoisted into `system` wherever they stand; consecutive same-role turns are
    merged, as Anthropic requires alternation; empty assistant turns, which Anthropic rejects, are left out.
    Dropped, having no Anthropic counterpart: penalties, `seed`, `logit_bias`, `stream_options` (Anthropic
    always streams usage) and message `name`s.
    """
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("This model's API returns one choice per request; `n` must be 1.", "n")
    for key, message in _CHAT_ONLY.items():
        if body.get(key):
            raise TranslationError(message, key)
    if _obj(body.get("response_format")).get("type") not in (None, "text"):
        raise TranslationError(
            "`response_format` JSON modes are not available from this model's API.", "response_format"
        )
    system: list[str | list[JSON]] = []
    messages: list[JSON] = []
    for i, item in enumerate(_expect(body.get("messages"), list, "messages")):
        p = f"messages[{i}]"
        role, content = (msg := _expect(item, dict, p)).get("role"), msg.get("content")
        if role in ("system", "developer"):
            system.append(content if isinstance(content, str) else _text_blocks(content, p + ".content", _TO_ANTHROPIC))
        elif role == "user":
            _append(messages, "user", _user_content(content, p + ".content"))
        elif role == "assistant":
            if turn := _assistant_content(msg, p):
                _append(messages, "assistant", turn)
        elif role == "tool":
            _append(messages, "user", [_tool_message_to_result(msg, p)])
        else:
            raise TranslationError(f"Messages with role {str(role)[:40]!r} are not supported here.", p + ".role")
    max_tokens = body.get("max_completion_tokens")
    max_tokens = max_tokens if max_tokens is not None else body.get("max_tokens") or default_max_tokens
    out: JSON = {"model": body.get("model"), "max_tokens": max_tokens, "messages": messages}
    if len(system) == 1 and isinstance(system[0], str):
        if system[0]:
            out["system"] = system[0]
    elif system:
        out["system"] = [block for content in system for block in _as_blocks(content)]
    for key in ("temperature", "top_p", "stream"):
        if (value := body.get(key)) is not None:
            out[key] = value
    if stop := body.get("stop"):
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if isinstance(user := body.get("user"), str):
        out["metadata"] = {"user_id": user}
    if tools := body.get("tools"):
        out["tools"] = [_tool_to_anthropic(tool, f"tools[{i}]") for i, tool in enumerate(_expect(tools, list, "tools"))]
    if (choice := _tool_choice_to_anthropic(body.get("tool_choice"))) is not None:
        out["tool_choice"] = choice
    if body.get("parallel_tool_calls") is False and "tools" in out:
        choice = out.setdefault("tool_choice", {"type": "auto"})
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return out


def _as_blocks(content: str | list[JSON]) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _append(messages: list[JSON], role: str, content: str | list[JSON]) -> None:
    if messages and messages[-1]["role"] == role:
        last = messages[-1]
        last["content"] = _as_blocks(last["content"]) + _as_blocks(content)
    else:
        messages.append({"role": role, "content": content})


def _user_content(content: object, param: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    blocks: list[JSON] = []
    for j, item in enumerate(_expect(content, list, param)):
        p = f"{param}[{j}]"
        kind = (part := _expect(item, dict, p)).get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": _expect(part.get("text"), str, p + ".text")})
        elif kind == "image_url":
            blocks.append(_image_to_anthropic(part.get("image_url"), p + ".image_url"))
        else:
            raise _unsupported(kind, p, _TO_ANTHROPIC)
    return blocks


def _image_to_anthropic(image: object, param: str) -> JSON:
    url = _expect(image.get("url") if isinstance(image, dict) else image, str, param + ".url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise TranslationError("Image data URLs must look like `data:<media type>;base64,<data>`.", param + ".url")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(msg: JSON, param: str) -> str | list[JSON] | None:
    if msg.get("function_call"):
        raise TranslationError("Legacy `function_call` is not supported here; send `tool_calls`.", param)
    content, calls = msg.get("content"), msg.get("tool_calls")
    if isinstance(content, str) and not calls:
        return content
    blocks: list[JSON] = _as_blocks(content) if isinstance(content, str) else []
    for j, item in enumerate(_expect(content, list, param + ".content") if content and not blocks else ()):
        p = f"{param}.content[{j}]"
        kind = (part := _expect(item, dict, p)).get("type")
        if kind not in ("text", "refusal"):
            raise _unsupported(kind, p, _TO_ANTHROPIC)
        if text := _expect(part.get(kind), str, f"{p}.{kind}"):
            blocks.append({"type": "text", "text": text})
    for j, item in enumerate(_expect(calls, list, param + ".tool_calls") if calls else ()):
        p = f"{param}.tool_calls[{j}]"
        fn = _expect((call := _expect(item, dict, p)).get("function"), dict, p + ".function")
        name = _expect(fn.get("name"), str, p + ".function.name")
        tool_input = _arguments(fn.get("arguments"), p + ".function.arguments")
        blocks.append(
            {"type": "tool_use", "id": _tool_id(call.get("id"), p + ".id"), "name": name, "input": tool_input}
        )
    return blocks


def _tool_message_to_result(msg: JSON, param: str) -> JSON:
    content = msg.get("content")
    result: JSON = {"type": "tool_result", "tool_use_id": _tool_id(msg.get("tool_call_id"), param + ".tool_call_id")}
    if isinstance(content, str):
        result["content"] = content
    elif content is not None:
        result["content"] = _text_blocks(content, param + ".content", _TO_ANTHROPIC)
    return result


def _tool_to_anthropic(item: object, param: str) -> JSON:
    if (tool := _expect(item, dict, param)).get("type") != "function":
        raise TranslationError(f"Tools of type {str(tool.get('type'))[:40]!r} are not supported here.", param + ".type")
    fn = _expect(tool.get("function"), dict, param + ".function")
    out: JSON = {"name": _expect(fn.get("name"), str, param + ".function.name")}
    if (description := fn.get("description")) is not None:
        out["description"] = description
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    if (strict := fn.get("strict")) is not None:
        out["strict"] = strict
    return out


def _tool_choice_to_anthropic(choice: object) -> JSON | None:
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return {"type": "any" if choice == "required" else choice}
    if isinstance(choice, dict) and isinstance(fn := choice.get("function"), dict):
        return {"type": "tool", "name": _expect(fn.get("name"), str, "tool_choice.function.name")}
    raise TranslationError('`tool_choice` must be "auto", "required", "none" or a function choice.', "tool_choice")


def chat_response_to_message(resp: JSON, *, model: str) -> JSON:
    """OpenAI chat.completion → Anthropic message, from the first choice (requests never ask for more)."""
    choices = resp.get("choices")
    choice = _obj(choices[0]) if isinstance(choices, list) and choices else {}
    msg = _obj(choice.get("message"))
    content: list[JSON] = []
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(str(_obj(part).get("text") or "") for part in text)
    if text and isinstance(text, str):
        content.append({"type": "text", "text": text})
    if (refusal := msg.get("refusal")) and isinstance(refusal, str):
        content.append({"type": "text", "text": refusal})
    calls = msg.get("tool_calls")
    calls = calls if isinstance(calls, list) else []
    for call in map(_obj, calls):
        fn = _obj(call.get("function"))
        block = {"type": "tool_use", "id": _tool_id(call.get("id")), "name": fn.get("name") or ""}
        content.append(block | {"input": _arguments(fn.get("arguments"), "tool_calls.function.arguments")})
    reason, sequence = _stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), bool(calls))
    return {
        "id": _prefixed(resp.get("id"), "msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "refusal" if refusal and reason == "end_turn" else reason,
        "stop_sequence": sequence,
        "usage": openai_usage_to_anthropic(resp.get("usage")),
    }


def message_to_chat_response(resp: JSON, *, model: str) -> JSON:
    """Anthropic message → OpenAI chat.completion; thinking and server-tool blocks have no chat slot and drop."""
    texts: list[str] = []
    calls: list[JSON] = []
    blocks = resp.get("content")
    for block in map(_obj, blocks if isinstance(blocks, list) else ()):
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            fn = {"name": block.get("name") or "", "arguments": _json_text(block.get("input"))}
            calls.append({"id": _tool_id(block.get("id")), "type": "function", "function": fn})
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = _STOP_TO_FINISH.get(resp.get("stop_reason") or "end_turn", "stop")
    return {
        "id": _prefixed(resp.get("id"), "chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": anthropic_usage_to_openai(resp.get("usage")),
    }


def _error_type(status: int) -> str:
    return _STATUS_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def _error_message(status: int, body: object) -> str:
    """The upstream's own words when it gave any, in whichever of the common error shapes it used."""
    body = _obj(body)
    error = body.get("error")
    for candidate in (error.get("message") if isinstance(error, dict) else error, body.get("message")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return f"The upstream returned HTTP {status}."


def openai_error_to_anthropic(status: int, body: dict | None) -> JSON:
    """An OpenAI-shaped upstream error → Anthropic's `{"type":"error","error":{type,message}}`, typed by status."""
    return {"type": "error", "error": {"type": _error_type(status), "message": _error_message(status, body)}}


def anthropic_error_to_openai(status: int, body: dict | None) -> JSON:
    """An Anthropic upstream error → OpenAI's `{"error":{message,type,param,code}}`, typed by status."""
    return {
        "error": {"message": _error_message(status, body), "type": _error_type(status), "param": None, "code": None}
    }


def _event(name: str, data: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _block_delta(index: int, delta: JSON) -> bytes:
    return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


class ChatStreamToMessages:
    """Feeds on OpenAI chat.completion.chunk payloads (already-parsed dicts, in order), yields Anthropic SSE bytes.

    Input and cache counts arrive only with the last OpenAI chunk, so message_start reports zeros and
    message_delta carries the cumulative totals, which the Anthropic SDKs let override the start.
    """

    __slots__ = ("_done", "_finish", "_matched", "_message_id", "_model", "_next", "_open", "_text", "_tools", "usage")

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self._model = model
        self._message_id = message_id
        self._done = False
        self._next = -1  # index of the next content block; -1 until message_start is out
        self._open: int | None = None
        self._text = False  # whether the open block is a text block
        self._tools: dict[object, int] = {}  # OpenAI tool_calls[].index -> Anthropic block index
        self._finish: object = None
        self._matched: object = None
        self.usage: JSON | None = None

    def _start(self, upstream_id: object) -> bytes:
        self._next = 0
        message: JSON = {
            "id": self._message_id or _prefixed(upstream_id, "msg_"),
            "type": "message",
            "role": "assistant",
        }
        message |= {"model": self._model, "content": [], "stop_reason": None, "stop_sequence": None}
        message["usage"] = {"input_tokens": 0, "output_tokens": 0}
        return _event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._text = self._open, None, False
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _begin(self, block: JSON) -> bytes:
        start = {"type": "content_block_start", "index": self._next, "content_block": block}
        out = self._close() + _event("content_block_start", start)
        self._open = self._next
        self._next += 1
        return out

    def feed(self, chunk: dict) -> bytes:
        """Zero or more complete SSE events for one upstream chunk."""
        if self._done:
            return b""
        out = self._start(chunk.get("id")) if self._next < 0 else b""
        if isinstance(usage := chunk.get("usage"), dict):
            self.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return out
        delta = _obj((choice := _obj(choices[0])).get("delta"))
        for key in ("content", "refusal"):
            if (text := delta.get(key)) and isinstance(text, str):
                if not self._text:
                    out += self._begin({"type": "text", "text": ""})
                    self._text = True
                out += _block_delta(self._next - 1, {"type": "text_delta", "text": text})
        if isinstance(calls := delta.get("tool_calls"), list):
            for call in map(_obj, calls):
                out += self._tool_delta(call)
        if finish := choice.get("finish_reason"):
            self._finish, self._matched = finish, choice.get("stop_reason")
        return out

    def _tool_delta(self, call: JSON) -> bytes:
        """OpenAI streams parallel calls one after another, keyed by `index`; each becomes a tool_use block."""
        key = call.get("index", call.get("id"))
        fn = _obj(call.get("function"))
        out = b""
        if key not in self._tools:
            self._tools[key] = self._next
            tool_id = _tool_id(call.get("id"))
            out = self._begin({"type": "tool_use", "id": tool_id, "name": fn.get("name") or "", "input": {}})
        if (arguments := fn.get("arguments")) and isinstance(arguments, str):
            out += _block_delta(self._tools[key], {"type": "input_json_delta", "partial_json": arguments})
        return out

    def finish(self) -> bytes:
        """At upstream [DONE]: close the open block, then message_delta (stop reason, usage) and message_stop."""
        if self._done:
            return b""
        out = self._start(None) if self._next < 0 else b""
        self._done = True
        reason, sequence = _stop_reason(self._finish, self._matched, bool(self._tools))
        usage = openai_usage_to_anthropic(self.usage) if self.usage is not None else {"output_tokens": 0}
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence}, "usage": usage}
        return out + self._close() + _event("message_delta", delta) + _event("message_stop", {"type": "message_stop"})

    def error(self, message: str, *, error_type: str = "api_error") -> bytes:
        """An Anthropic `error` event for a stream cut short; nothing is emitted after it."""
        self._done = True
        return _event("error", {"type": "error", "error": {"type": error_type, "message": message}})


class MessagesStreamToChat:
    """Feeds on Anthropic SSE events (event type + parsed data dict), yields OpenAI chat chunk SSE bytes.

    Every chunk shares id, created and model, so that prefix is serialised once, at message_start.
    """

    __slots__ = ("_done", "_head", "_include_usage", "_model", "_tools", "_totals", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._head: bytes | None = None
        self._tools: dict[object, int] = {}  # Anthropic block index -> OpenAI tool_calls[].index
        self._totals: JSON = {}  # Anthropic-shaped running usage
        self._done = False
        self.usage: JSON | None = None

    def _set_head(self, message_id: object) -> bytes:
        fields = {
            "id": _prefixed(message_id, "chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }
        self._head = b"data: " + orjson.dumps(fields | {"model": self._model})[:-1] + b',"choices":['
        return self._head

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return (self._head or self._set_head(None)) + orjson.dumps(choice) + b"]}\n\n"

    def _add_usage(self, usage: object) -> None:
        """Anthropic's message_delta counts are cumulative: they replace, never add to, message_start's."""
        if isinstance(usage, dict):
            self._totals.update((k, v) for k, v in usage.items() if v is not None)
            self.usage = anthropic_usage_to_openai(self._totals)

    def feed(self, event_type: str, data: dict) -> bytes:
        """Zero or more `data:` chunk events for one upstream event; ping and *_stop events yield nothing."""
        if self._done:
            return b""
        if event_type == "content_block_delta":
            delta = _obj(data.get("delta"))
            if delta.get("type") == "text_delta" and (text := delta.get("text")):
                return self._chunk({"content": text})
            index = self._tools.get(data.get("index"))
            if delta.get("type") == "input_json_delta" and (partial := delta.get("partial_json")) and index is not None:
                return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": partial}}]})
        elif event_type == "message_start":
            message = _obj(data.get("message"))
            self._set_head(message.get("id"))
            self._add_usage(message.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        elif event_type == "content_block_start":
            block = _obj(data.get("content_block"))
            if block.get("type") == "text" and (text := block.get("text")):
                return self._chunk({"content": text})
            if block.get("type") == "tool_use":
                index = self._tools[data.get("index")] = len(self._tools)
                call = {"index": index, "id": _tool_id(block.get("id")), "type": "function"}
                call["function"] = {"name": block.get("name") or "", "arguments": ""}
                return self._chunk({"tool_calls": [call]})
        elif event_type == "message_delta":
            self._add_usage(data.get("usage"))
            if reason := _obj(data.get("delta")).get("stop_reason"):
                return self._chunk({}, _STOP_TO_FINISH.get(reason, "stop"))
        elif event_type == "error":
            error_type = _obj(data.get("error")).get("type")
            return self.error(
                _error_message(500, data), error_type=error_type if isinstance(error_type, str) else "api_error"
            )
        return b""

    def finish(self) -> bytes:
        """The usage chunk (`choices: []`) when the client asked for it, then `[DONE]`."""
        if self._done:
            return b""
        self._done = True
        if not self._include_usage:
            return b"data: [DONE]\n\n"
        usage = self.usage if self.usage is not None else anthropic_usage_to_openai(None)
        head = self._head or self._set_head(None)
        return head + b'],"usage":' + orjson.dumps(usage) + b"}\n\ndata: [DONE]\n\n"

    def error(self, message: str, *, error_type: str = "api_error") -> bytes:
        """An OpenAI-shaped error event for a stream cut short; nothing is emitted after it."""
        self._done = True
        error = {"message": message, "type": error_type, "param": None, "code": None}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
