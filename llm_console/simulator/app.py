"""Starlette app speaking the OpenAI wire format the way vLLM's server does."""

from __future__ import annotations

import array
import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.engine import EMBEDDING_DIM, Engine, Generation, count_tokens, embed

MESSAGE_OVERHEAD_TOKENS = 4
Chunk = dict[str, Any]


class ApiError(Exception):
    """An error answered in OpenAI's `{"error": {...}}` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code


@dataclass(frozen=True)
class GenRequest:
    """The validated fields of a chat or legacy completion request."""

    model: str
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class Envelope:
    """The fields every object of one response repeats."""

    id: str
    object: str
    created: int
    model: str

    def wrap(self, choices: list[Chunk], **extra: Any) -> Chunk:
        head = {"id": self.id, "object": self.object, "created": self.created, "model": self.model}
        return {**head, "choices": choices, **extra}


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class SSEResponse(StreamingResponse):
    """Event stream that always closes its generator, so a client disconnect releases the engine slot."""

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._generator = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._generator, "aclose", None)
            if aclose is not None:
                await aclose()


def _error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body = {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    return OrjsonResponse(body, status_code=exc.status)


def _sse(payload: Chunk) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _read_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def _optional_positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"`{name}` must be a positive integer, got {value!r}.", param=name)
    return value


def _message_tokens(message: Any, index: int) -> int:
    param = f"messages[{index}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ApiError(400, f"{param} must be an object with a string `role`.", param=param)
    content = message.get("content")
    if content is None:
        return MESSAGE_OVERHEAD_TOKENS
    if isinstance(content, str):
        return count_tokens(content) + MESSAGE_OVERHEAD_TOKENS
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        texts = [t for t in parts if isinstance(t, str)]
        if len(texts) != len(parts):
            raise ApiError(400, f"{param}.content has a text part without a string `text`.", param=param)
        return sum(count_tokens(t) for t in texts) + MESSAGE_OVERHEAD_TOKENS
    raise ApiError(400, f"{param}.content must be a string, a list of parts or null.", param=param)


def _prompt_tokens(prompt: Any) -> int:
    if isinstance(prompt, str):
        return count_tokens(prompt)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return count_tokens(prompt[0])
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return len(prompt)
    raise ApiError(400, "`prompt` must be a string, a list of one string or a list of token ids.", param="prompt")


class SimulatorApi:
    """Route handlers bound to one engine."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.engine = Engine(config)

    def _common(self, body: dict[str, Any], prompt_tokens: int) -> GenRequest:
        model = body["model"]
        max_tokens = _optional_positive_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = _optional_positive_int(body, "max_tokens")
        stream = body.get("stream") or False
        if not isinstance(stream, bool):
            raise ApiError(400, "`stream` must be a boolean.", param="stream")
        options = body.get("stream_options")
        if options is not None and (not stream or not isinstance(options, dict)):
            raise ApiError(400, "`stream_options` must be an object and needs `stream: true`.", param="stream_options")
        include_usage = bool(options and options.get("include_usage"))
        if body.get("n") not in (None, 1):
            raise ApiError(400, "The simulator only supports `n` = 1.", param="n")
        limit = self.config.max_model_len
        if prompt_tokens + (max_tokens or 0) > limit:
            raise ApiError(
                400,
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + (max_tokens or 0)} tokens.",
                param="messages" if "messages" in body else "prompt",
            )
        if self.engine.should_fail():
            raise ApiError(500, "Simulated upstream failure.", type="server_error", code="internal_error")
        return GenRequest(model, prompt_tokens, max_tokens, stream, include_usage)

    def _check_model(self, body: dict[str, Any], known: list[str]) -> None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "`model` is required and must be a string.", param="model")
        if model not in known:
            raise ApiError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    async def chat_completions(self, request: Request) -> Response:
        body = await _read_object(request)
        self._check_model(body, self.config.models)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "`messages` must be a non-empty list.", param="messages")
        req = self._common(body, sum(_message_tokens(m, i) for i, m in enumerate(messages)))
        env = Envelope(f"chatcmpl-{uuid.uuid4().hex}", "chat.completion.chunk", int(time.time()), req.model)

        def choice(delta: dict[str, Any], finish: str | None = None) -> Chunk:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        if req.stream:
            role = choice({"role": "assistant", "content": ""})
            tokens = self._stream(req, env, lambda t: choice({"content": t}), lambda f: choice({}, f), role)
            return SSEResponse(tokens)
        gen, text = await self._complete(req)
        message = {"role": "assistant", "content": text, "tool_calls": []}
        result = {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
        return OrjsonResponse(env.wrap([result], object="chat.completion", usage=_usage(gen)))

    async def completions(self, request: Request) -> Response:
        body = await _read_object(request)
        self._check_model(body, self.config.models)
        req = self._common(body, _prompt_tokens(body.get("prompt")))
        env = Envelope(f"cmpl-{uuid.uuid4().hex}", "text_completion", int(time.time()), req.model)

        def choice(text: str, finish: str | None = None) -> Chunk:
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

        if req.stream:
            return SSEResponse(self._stream(req, env, choice, lambda f: choice("", f)))
        gen, text = await self._complete(req)
        return OrjsonResponse(env.wrap([choice(text, gen.finish_reason)], usage=_usage(gen)))

    async def _complete(self, req: GenRequest) -> tuple[Generation, str]:
        gen = self.engine.plan(req.prompt_tokens, req.max_tokens)
        async with aclosing(self.engine.run(gen)) as tokens:
            text = "".join([token async for token in tokens])
        return gen, text

    async def _stream(
        self,
        req: GenRequest,
        env: Envelope,
        token_choice: Callable[[str], Chunk],
        finish_choice: Callable[[str], Chunk],
        first_choice: Chunk | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield SSE frames as tokens are produced; never buffers the whole answer."""
        extra: dict[str, Any] = {"usage": None} if req.include_usage else {}
        gen = self.engine.plan(req.prompt_tokens, req.max_tokens)
        async with aclosing(self.engine.run(gen)) as tokens:
            async for token in tokens:
                # Like vLLM, the role chunk waits for the first token so clients measure a real TTFT.
                if first_choice is not None:
                    yield _sse(env.wrap([first_choice], **extra))
                    first_choice = None
                yield _sse(env.wrap([token_choice(token)], **extra))
        yield _sse(env.wrap([finish_choice(gen.finish_reason)], **extra))
        if req.include_usage:
            yield _sse(env.wrap([], usage=_usage(gen)))
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        body = await _read_object(request)
        self._check_model(body, self.config.embedding_models)
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise ApiError(400, "`input` must be a string or a non-empty list of strings.", param="input")
        dims = _optional_positive_int(body, "dimensions") or EMBEDDING_DIM
        if dims > EMBEDDING_DIM:
            raise ApiError(400, f"`dimensions` must be at most {EMBEDDING_DIM}.", param="dimensions")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise ApiError(400, "`encoding_format` must be 'float' or 'base64'.", param="encoding_format")
        if self.engine.should_fail():
            raise ApiError(500, "Simulated upstream failure.", type="server_error", code="internal_error")
        data = []
        for index, text in enumerate(inputs):
            vector: Any = embed(text, body["model"], dims)
            if encoding == "base64":
                vector = base64.b64encode(array.array("f", vector).tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(t) for t in inputs)
        self.engine.prompt_tokens_total += tokens
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return OrjsonResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def models(self, request: Request) -> Response:
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": name,
                "parent": None,
                "max_model_len": self.config.max_model_len,
            }
            for name in [*self.config.models, *self.config.embedding_models]
        ]
        return OrjsonResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def metrics(self, request: Request) -> Response:
        return Response(self.engine.render_prometheus(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _usage(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """Build a simulator app with its own engine state."""
    api = SimulatorApi(config or SimulatorConfig())
    routes = [
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: _error_response})
    app.state.engine = api.engine
    return app
