"""Starlette app speaking the wire formats a vLLM server does: OpenAI (chat, completions, embeddings, Responses,
rerank), Anthropic's Messages API and Azure OpenAI's deployment routes, all over one simulated engine."""

from __future__ import annotations

import array
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llm_console.simulator.anthropic import MessagesApi
from llm_console.simulator.auth import check_api_key
from llm_console.simulator.azure import AzureApi
from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.engine import (
    EMBEDDING_DIM,
    MESSAGE_OVERHEAD_TOKENS,
    Engine,
    Generation,
    count_tokens,
    embed,
)
from llm_console.simulator.errors import ApiError, Dialect, error_response, simulated_failure
from llm_console.simulator.parsing import optional_positive_int, read_object, require_model
from llm_console.simulator.rerank import RerankApi
from llm_console.simulator.responses import ResponsesApi
from llm_console.simulator.wire import Chunk, OrjsonResponse, SSEResponse, sse_data

Handler = Callable[[Request], Awaitable[Response]]


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
    """OpenAI chat, legacy completion, embedding and model-list handlers bound to one engine.

    The `*_body` methods take an already-read body so the Azure deployment routes can reuse them.
    """

    def __init__(self, config: SimulatorConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    def _common(self, body: dict[str, Any], prompt_tokens: int) -> GenRequest:
        model = body["model"]
        max_tokens = optional_positive_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = optional_positive_int(body, "max_tokens")
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
            raise simulated_failure()
        return GenRequest(model, prompt_tokens, max_tokens, stream, include_usage)

    async def chat_completions(self, request: Request) -> Response:
        return await self.chat_body(await read_object(request))

    async def chat_body(self, body: dict[str, Any]) -> Response:
        require_model(body, self.config.models)
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
        gen = self.engine.plan(req.prompt_tokens, req.max_tokens)
        text = await self.engine.complete(gen)
        message = {"role": "assistant", "content": text, "tool_calls": []}
        result = {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
        return OrjsonResponse(env.wrap([result], object="chat.completion", usage=_usage(gen)))

    async def completions(self, request: Request) -> Response:
        return await self.completions_body(await read_object(request))

    async def completions_body(self, body: dict[str, Any]) -> Response:
        require_model(body, self.config.models)
        req = self._common(body, _prompt_tokens(body.get("prompt")))
        env = Envelope(f"cmpl-{uuid.uuid4().hex}", "text_completion", int(time.time()), req.model)

        def choice(text: str, finish: str | None = None) -> Chunk:
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

        if req.stream:
            return SSEResponse(self._stream(req, env, choice, lambda f: choice("", f)))
        gen = self.engine.plan(req.prompt_tokens, req.max_tokens)
        text = await self.engine.complete(gen)
        return OrjsonResponse(env.wrap([choice(text, gen.finish_reason)], usage=_usage(gen)))

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
                    yield sse_data(env.wrap([first_choice], **extra))
                    first_choice = None
                yield sse_data(env.wrap([token_choice(token)], **extra))
        yield sse_data(env.wrap([finish_choice(gen.finish_reason)], **extra))
        if req.include_usage:
            yield sse_data(env.wrap([], usage=_usage(gen)))
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        return await self.embeddings_body(await read_object(request))

    async def embeddings_body(self, body: dict[str, Any]) -> Response:
        model = require_model(body, self.config.embedding_models)
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise ApiError(400, "`input` must be a string or a non-empty list of strings.", param="input")
        dims = optional_positive_int(body, "dimensions") or EMBEDDING_DIM
        if dims > EMBEDDING_DIM:
            raise ApiError(400, f"`dimensions` must be at most {EMBEDDING_DIM}.", param="dimensions")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise ApiError(400, "`encoding_format` must be 'float' or 'base64'.", param="encoding_format")
        if self.engine.should_fail():
            raise simulated_failure()
        data = []
        for index, text in enumerate(inputs):
            vector: Any = embed(text, model, dims)
            if encoding == "base64":
                vector = base64.b64encode(array.array("f", vector).tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(t) for t in inputs)
        self.engine.prompt_tokens_total += tokens
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return OrjsonResponse({"object": "list", "data": data, "model": model, "usage": usage})

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
            for name in [*self.config.models, *self.config.embedding_models, *self.config.rerank_models]
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


def guarded(handler: Handler, config: SimulatorConfig, dialect: Dialect) -> Handler:
    """Check the API key, then run the handler; every `ApiError` becomes a body in the route's dialect."""

    async def endpoint(request: Request) -> Response:
        try:
            check_api_key(request.headers, config, dialect)
            return await handler(request)
        except ApiError as exc:
            return error_response(exc, dialect)

    return endpoint


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """Build a simulator app with its own engine state."""
    config = config or SimulatorConfig()
    engine = Engine(config)
    api = SimulatorApi(config, engine)
    responses = ResponsesApi(config, engine)
    rerank = RerankApi(config, engine)
    messages = MessagesApi(config, engine)
    azure = AzureApi(config, chat=api.chat_body, completions=api.completions_body, embeddings=api.embeddings_body)
    post = ["POST"]
    model_routes: list[tuple[str, Handler, list[str], Dialect]] = [
        ("/v1/chat/completions", api.chat_completions, post, Dialect.OPENAI),
        ("/v1/completions", api.completions, post, Dialect.OPENAI),
        ("/v1/embeddings", api.embeddings, post, Dialect.OPENAI),
        ("/v1/responses", responses.create, post, Dialect.OPENAI),
        ("/v1/rerank", rerank.rerank, post, Dialect.OPENAI),
        ("/rerank", rerank.rerank, post, Dialect.OPENAI),
        ("/v2/rerank", rerank.rerank, post, Dialect.OPENAI),
        ("/v1/models", api.models, ["GET"], Dialect.OPENAI),
        ("/v1/messages", messages.create, post, Dialect.ANTHROPIC),
        ("/openai/deployments/{deployment}/chat/completions", azure.chat_completions, post, Dialect.AZURE),
        ("/openai/deployments/{deployment}/completions", azure.completions, post, Dialect.AZURE),
        ("/openai/deployments/{deployment}/embeddings", azure.embeddings, post, Dialect.AZURE),
    ]
    routes: list[BaseRoute] = [
        Route(path, guarded(handler, config, dialect), methods=methods)
        for path, handler, methods, dialect in model_routes
    ]
    routes += [
        Route("/health", api.health, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.engine = engine
    return app
