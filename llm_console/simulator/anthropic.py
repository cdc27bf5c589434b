"""Anthropic's Messages API (`POST /v1/messages`), plain and streamed, over the shared engine.

Errors use Anthropic's `{"type": "error", "error": {...}}` shape (rendered by the route's dialect); an injected
failure is Anthropic's usual transient one, 529 `overloaded_error`. Streams follow Anthropic's event order and,
like the chat stream, start only with the first token so clients measure a real time to first token.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.engine import MESSAGE_OVERHEAD_TOKENS, Engine, Generation, count_tokens
from llm_console.simulator.errors import ApiError
from llm_console.simulator.parsing import is_int, is_number, optional_bool, read_object
from llm_console.simulator.wire import Chunk, OrjsonResponse, SSEResponse, sse_event

# Recent API versions also take mid-conversation system messages (text only) besides the top-level `system`.
ROLES = ("user", "assistant", "system")
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


@dataclass(frozen=True)
class MessagesRequest:
    model: str
    input_tokens: int
    max_tokens: int
    stream: bool
    stop_sequences: list[str]


def _invalid(message: str) -> ApiError:
    return ApiError(400, message)


def _block_tokens(block: Any, where: str) -> int:
    """Tokens of one content block: text, tool input and tool results count; images and documents do not."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(f"{where}: Input should be an object with a string `type`")
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{where}.text: Input should be a valid string")
        return count_tokens(block["text"])
    if kind == "tool_use":
        return count_tokens(orjson.dumps(block.get("input")).decode())
    if kind == "tool_result":
        return _content_tokens(block.get("content", ""), f"{where}.content")
    return 0


def _content_tokens(content: Any, where: str) -> int:
    if isinstance(content, str):
        return count_tokens(content)
    if isinstance(content, list):
        return sum(_block_tokens(block, f"{where}.{i}") for i, block in enumerate(content))
    raise _invalid(f"{where}: Input should be a valid string or a list of content blocks")


def _message_tokens(message: Any, index: int) -> int:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise _invalid(f"{where}: Input should be a valid dictionary")
    role = message.get("role")
    if role not in ROLES:
        raise _invalid(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
    if "content" not in message:
        raise _invalid(f"{where}.content: Field required")
    if role == "system":
        return _system_tokens(message["content"], f"{where}.content")
    return _content_tokens(message["content"], f"{where}.content") + MESSAGE_OVERHEAD_TOKENS


def _system_tokens(system: Any, where: str = "system") -> int:
    if system is None:
        return 0
    if isinstance(system, list) and not all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        raise _invalid(f"{where}: Input should be a valid string or a list of text blocks")
    return _content_tokens(system, where) + MESSAGE_OVERHEAD_TOKENS


def _tools_tokens(tools: Any) -> int:
    if tools is None:
        return 0
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise _invalid("tools: Input should be a list of tools, each with a string `name`")
    return sum(count_tokens(orjson.dumps(tool).decode()) for tool in tools)


def _stop_sequences(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _invalid("stop_sequences: Input should be a valid list of strings")
    return raw


def parse_request(body: dict[str, Any], config: SimulatorConfig) -> MessagesRequest:
    if "model" not in body:
        raise _invalid("model: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise _invalid("model: Input should be a valid string")
    if model not in config.models:
        raise ApiError(404, f"model: {model}")
    if "max_tokens" not in body:
        raise _invalid("max_tokens: Field required")
    max_tokens = body["max_tokens"]
    if not is_int(max_tokens) or max_tokens < 1:
        raise _invalid("max_tokens: Input should be an integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Input should be a non-empty list of messages")
    temperature = body.get("temperature")
    if temperature is not None and (not is_number(temperature) or not 0 <= temperature <= 1):
        raise _invalid("temperature: Input should be a number between 0 and 1")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise _invalid("metadata: Input should be a valid dictionary")
    tokens = sum(_message_tokens(m, i) for i, m in enumerate(messages))
    tokens += _system_tokens(body.get("system")) + _tools_tokens(body.get("tools"))
    if tokens + max_tokens > config.max_model_len:
        raise _invalid(
            f"input length and `max_tokens` exceed context limit: {tokens} + {max_tokens} > "
            f"{config.max_model_len}, decrease input length or `max_tokens` and try again"
        )
    stops = _stop_sequences(body.get("stop_sequences"))
    return MessagesRequest(model, tokens, max_tokens, optional_bool(body, "stream", False), stops)


def usage(gen: Generation, output_tokens: int | None = None) -> Chunk:
    return {
        "input_tokens": gen.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": gen.completion_tokens if output_tokens is None else output_tokens,
    }


@dataclass(frozen=True)
class _Reply:
    id: str
    model: str

    def message(self, content: list[Chunk], stop_reason: str | None, stop: str | None, usage: Chunk) -> Chunk:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop,
            "usage": usage,
        }


def _stop_reason(gen: Generation, stop: str | None) -> str:
    return "stop_sequence" if stop is not None else STOP_REASONS[gen.finish_reason]


class MessagesApi:
    """`POST /v1/messages`; the model names are the chat models the simulator serves."""

    def __init__(self, config: SimulatorConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    async def create(self, request: Request) -> Response:
        req = parse_request(await read_object(request), self.config)
        if self.engine.should_fail():
            raise ApiError(529, "Overloaded")
        reply = _Reply(f"msg_{uuid.uuid4().hex[:24]}", req.model)
        gen = self.engine.plan(req.input_tokens, req.max_tokens)
        stop = gen.cut_at(req.stop_sequences)
        if req.stream:
            return SSEResponse(self._events(reply, gen, stop))
        text = await self.engine.complete(gen)
        content = [{"type": "text", "text": text}]
        return OrjsonResponse(reply.message(content, _stop_reason(gen, stop), stop, usage(gen)))

    async def _events(self, reply: _Reply, gen: Generation, stop: str | None) -> AsyncIterator[bytes]:
        def frame(kind: str, **fields: Any) -> bytes:
            return sse_event(kind, {"type": kind, **fields})

        first = True
        async with aclosing(self.engine.run(gen)) as tokens:
            async for token in tokens:
                if first:
                    first = False
                    # Anthropic's message_start reports the prompt and a provisional single output token.
                    yield frame("message_start", message=reply.message([], None, None, usage(gen, output_tokens=1)))
                    yield frame("content_block_start", index=0, content_block={"type": "text", "text": ""})
                    yield frame("ping")
                if token:
                    yield frame("content_block_delta", index=0, delta={"type": "text_delta", "text": token})
        yield frame("content_block_stop", index=0)
        delta = {"stop_reason": _stop_reason(gen, stop), "stop_sequence": stop}
        yield frame("message_delta", delta=delta, usage=usage(gen))
        yield frame("message_stop")
