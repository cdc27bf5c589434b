"""OpenAI's Responses API (`POST /v1/responses`), plain and streamed, over the shared engine.

A stream sends OpenAI's named events in OpenAI's order, each carrying `type` and `sequence_number`; like the
chat stream, nothing is sent before the first token so clients measure a real time to first token. A reply cut
short by `max_output_tokens` is `incomplete` (and its stream ends in `response.incomplete`), as OpenAI does.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.engine import MESSAGE_OVERHEAD_TOKENS, Engine, Generation, count_tokens
from llm_console.simulator.errors import ApiError, simulated_failure
from llm_console.simulator.parsing import is_number, optional_bool, optional_positive_int, read_object, require_model
from llm_console.simulator.wire import Chunk, OrjsonResponse, SSEResponse, sse_event

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
UNCOUNTED_PARTS = ("input_image", "input_file", "input_audio", "refusal")
UNCOUNTED_ITEMS = ("reasoning", "item_reference")
TOOL_CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ResponsesRequest:
    """The validated request; `echo` holds the settings a Response object repeats back."""

    model: str
    input_tokens: int
    max_output_tokens: int | None
    stream: bool
    echo: dict[str, Any]


def _invalid(message: str, param: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def _content_tokens(content: Any, param: str) -> int:
    if isinstance(content, str):
        return count_tokens(content)
    if not isinstance(content, list):
        raise _invalid(f"Invalid '{param}': expected a string or a list of content parts.", param)
    total = 0
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise _invalid(f"Invalid '{where}.text': expected a string.", f"{where}.text")
            total += count_tokens(part["text"])
        elif kind not in UNCOUNTED_PARTS:
            supported = ", ".join(f"'{t}'" for t in (*TEXT_PARTS, *UNCOUNTED_PARTS))
            raise _invalid(f"Invalid value: {kind!r}. Supported values are: {supported}.", f"{where}.type")
    return total


def _item_tokens(item: Any, index: int) -> int:
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise _invalid(f"Invalid '{param}': expected an object.", param)
    kind = item.get("type", "message")
    if kind == "message":
        if item.get("role") not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise _invalid(f"Invalid '{param}.role': expected one of {supported}.", f"{param}.role")
        return _content_tokens(item.get("content"), f"{param}.content") + MESSAGE_OVERHEAD_TOKENS
    if kind == "function_call" and isinstance(item.get("arguments"), str):
        return count_tokens(item["arguments"]) + MESSAGE_OVERHEAD_TOKENS
    if kind == "function_call_output" and isinstance(item.get("output"), str):
        return count_tokens(item["output"]) + MESSAGE_OVERHEAD_TOKENS
    if kind in UNCOUNTED_ITEMS:
        return 0
    raise _invalid(f"Invalid input item of type {kind!r}.", param)


def input_tokens(raw: Any) -> int:
    """Prompt size: a plain string counts as one user message, like a one-message chat."""
    if isinstance(raw, str):
        return count_tokens(raw) + MESSAGE_OVERHEAD_TOKENS
    if not isinstance(raw, list) or not raw:
        raise _invalid("Invalid 'input': expected a string or a non-empty list of input items.", "input")
    return sum(_item_tokens(item, index) for index, item in enumerate(raw))


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the settings the Response object repeats, filling OpenAI's defaults."""
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("Invalid 'instructions': expected a string.", "instructions")
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        value = body.get(name)
        if value is not None and (not is_number(value) or not 0 <= value <= high):
            raise _invalid(f"Invalid '{name}': expected a number between 0 and {high:g}.", name)
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise _invalid("Invalid 'tools': expected a list of tool objects.", "tools")
    tool_choice = body.get("tool_choice") or "auto"
    if not (tool_choice in TOOL_CHOICES or isinstance(tool_choice, dict)):
        raise _invalid("Invalid 'tool_choice': expected 'auto', 'none', 'required' or an object.", "tool_choice")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _invalid("Invalid 'metadata': expected an object.", "metadata")
    text = body.get("text")
    return {
        "instructions": instructions,
        "max_output_tokens": optional_positive_int(body, "max_output_tokens"),
        "metadata": metadata,
        "parallel_tool_calls": optional_bool(body, "parallel_tool_calls", True),
        "store": optional_bool(body, "store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": tool_choice,
        "tools": tools,
        "top_p": body.get("top_p", 1.0),
    }


def parse_request(body: dict[str, Any], config: SimulatorConfig) -> ResponsesRequest:
    model = require_model(body, config.models)
    if body.get("previous_response_id") is not None:
        # Nothing is stored here, so no earlier response can be continued.
        raise ApiError(
            400,
            f"Previous response with id '{body['previous_response_id']}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    tokens = input_tokens(body.get("input"))
    echo = _echo(body)
    if echo["instructions"]:
        tokens += count_tokens(echo["instructions"]) + MESSAGE_OVERHEAD_TOKENS
    max_output = echo["max_output_tokens"]
    if tokens + (max_output or 0) > config.max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {config.max_model_len} tokens. However, you requested "
            f"{tokens + (max_output or 0)} tokens.",
            param="input",
            code="context_length_exceeded",
        )
    return ResponsesRequest(model, tokens, max_output, optional_bool(body, "stream", False), echo)


def usage(gen: Generation) -> Chunk:
    return {
        "input_tokens": gen.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": gen.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _text_part(text: str) -> Chunk:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message(item_id: str, text: str, status: str) -> Chunk:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [_text_part(text)]}


@dataclass(frozen=True)
class _Reply:
    """One response being produced: its ids and the request it answers."""

    req: ResponsesRequest
    id: str
    item_id: str
    created_at: int

    def body(self, status: str, output: list[Chunk], usage: Chunk | None) -> Chunk:
        done = status in ("completed", "incomplete")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "max_tool_calls": None,
            "model": self.req.model,
            "output": output,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "truncation": "disabled",
            "usage": usage if done else None,
            "user": None,
            **self.req.echo,
        }


def _status(gen: Generation) -> str:
    return "incomplete" if gen.finish_reason == "length" else "completed"


class ResponsesApi:
    """`POST /v1/responses`, stateless: nothing is stored, so `previous_response_id` is refused."""

    def __init__(self, config: SimulatorConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    async def create(self, request: Request) -> Response:
        req = parse_request(await read_object(request), self.config)
        if self.engine.should_fail():
            raise simulated_failure()
        reply = _Reply(req, f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}", int(time.time()))
        gen = self.engine.plan(req.input_tokens, req.max_output_tokens)
        if req.stream:
            return SSEResponse(self._events(reply, gen))
        text = await self.engine.complete(gen)
        status = _status(gen)
        return OrjsonResponse(reply.body(status, [_message(reply.item_id, text, status)], usage(gen)))

    async def _events(self, reply: _Reply, gen: Generation) -> AsyncIterator[bytes]:
        sequence = itertools.count()

        def frame(kind: str, **fields: Any) -> bytes:
            return sse_event(kind, {"type": kind, "sequence_number": next(sequence), **fields})

        at = {"item_id": reply.item_id, "output_index": 0, "content_index": 0}
        pieces: list[str] = []
        async with aclosing(self.engine.run(gen)) as tokens:
            async for token in tokens:
                if not pieces:
                    pending = reply.body("in_progress", [], None)
                    yield frame("response.created", response=pending)
                    yield frame("response.in_progress", response=pending)
                    item = {**_message(reply.item_id, "", "in_progress"), "content": []}
                    yield frame("response.output_item.added", output_index=0, item=item)
                    yield frame("response.content_part.added", **at, part=_text_part(""))
                pieces.append(token)
                yield frame("response.output_text.delta", **at, delta=token, logprobs=[])
        text = "".join(pieces)
        status = _status(gen)
        message = _message(reply.item_id, text, status)
        yield frame("response.output_text.done", **at, text=text, logprobs=[])
        yield frame("response.content_part.done", **at, part=_text_part(text))
        yield frame("response.output_item.done", output_index=0, item=message)
        yield frame(f"response.{status}", response=reply.body(status, [message], usage(gen)))
