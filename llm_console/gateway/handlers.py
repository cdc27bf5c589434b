"""Endpoint handlers: one generic pipeline (parse -> authorize -> route -> call -> answer -> log) that each
endpoint configures with its schema, its wire format and how it reads usage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from llm_console.db.records import LogRecord, SpanRecord, new_request_id
from llm_console.gateway import schemas
from llm_console.gateway.attribution import attribution
from llm_console.gateway.body import parse_json_object, read_body, validation_error
from llm_console.gateway.errors import GatewayError, bad_request, model_not_allowed, model_not_found
from llm_console.gateway.pricing import Usage, cost_usd
from llm_console.gateway.prompts import PROMPT_ENDPOINTS, apply_prompt
from llm_console.gateway.proxy import Opened, UpstreamStatus, open_upstream, redact
from llm_console.gateway.routing import Target
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.gateway.streaming import (
    ChatPassthrough,
    ChatToMessages,
    MessagesPassthrough,
    MessagesToChat,
    Processor,
    ResponsesPassthrough,
    StreamState,
    relay,
)
from llm_console.gateway.translate import (
    TranslationError,
    anthropic_error_to_openai,
    chat_response_to_message,
    message_to_chat_response,
    openai_error_to_anthropic,
)
from llm_console.limits.estimate import estimate
from llm_console.limits.limiter import Grant
from llm_console.limits.report import limits_report

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # chat | completions | embeddings | rerank | responses | messages
    path: str
    schema: type[BaseModel]
    wire: str  # the client's format: openai | anthropic
    streams: bool
    usage: Callable[[object], Usage]


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("chat", "/v1/chat/completions", schemas.ChatCompletionRequest, "openai", True, Usage.from_openai),
    Endpoint("completions", "/v1/completions", schemas.CompletionRequest, "openai", True, Usage.from_openai),
    Endpoint("embeddings", "/v1/embeddings", schemas.EmbeddingRequest, "openai", False, Usage.from_openai),
    Endpoint("rerank", "/v1/rerank", schemas.RerankRequest, "openai", False, Usage.from_rerank),
    Endpoint("responses", "/v1/responses", schemas.ResponsesRequest, "openai", True, Usage.from_responses),
    Endpoint("messages", "/v1/messages", schemas.MessagesRequest, "anthropic", True, Usage.from_anthropic),
)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _runtime(request: Request) -> GatewayRuntime:
    return request.app.state.llmc_runtime


async def list_models(request: Request) -> Response:
    rt = _runtime(request)
    key = await rt.authenticate(request.headers, _client_ip(request))
    data = [
        {"id": alias, "object": "model", "created": 0, "owned_by": "llm-console"}
        for alias in rt.routes.aliases()
        if key.may_use(alias)
    ]
    return JSONResponse({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    rt = _runtime(request)
    key = await rt.authenticate(request.headers, _client_ip(request))
    alias = request.path_params["model"]
    if rt.routes.get(alias) is None or not key.may_use(alias):
        raise model_not_found(alias)  # a scoped key cannot probe which other aliases exist
    return JSONResponse({"id": alias, "object": "model", "created": 0, "owned_by": "llm-console"})


async def key_limits(request: Request) -> Response:
    """The calling key's limits and budgets with what is used of each (llm-console's own endpoint)."""
    rt = _runtime(request)
    key = await rt.authenticate(request.headers, _client_ip(request))
    return JSONResponse(await limits_report(rt.limiter, key.plan))


class EndpointApp:
    """An endpoint as a plain ASGI app: Starlette routes it without its per-route request/response and
    exception-handling wrappers (measurable on the hot path); GatewayErrors are answered here, anything
    else propagates to the app's 500 handler."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.anthropic = ep.wire == "anthropic"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await handle(self.ep, request)
        except GatewayError as exc:
            response = exc.response(self.anthropic)
        await response(scope, receive, send)


def make_handler(ep: Endpoint) -> EndpointApp:
    return EndpointApp(ep)


async def handle(ep: Endpoint, request: Request) -> Response:
    rt = _runtime(request)
    t0 = time.perf_counter()
    client_ip = _client_ip(request)
    key = await rt.authenticate(request.headers, client_ip)
    t_auth = time.perf_counter()
    rec = LogRecord(
        id=new_request_id(),
        created_at=datetime.now(UTC),
        endpoint=ep.path,
        key_id=key.id,
        user_id=key.user_id,
        team_id=key.team_id,
        client_ip=client_ip,
    )
    rec.spans.append(SpanRecord("auth", 0.0, _ms(t0, t_auth)))
    headers = {"x-request-id": rec.id}
    target: Target | None = None
    grant: Grant | None = None
    try:
        body = await read_body(request, rt.settings.max_request_body_bytes)
        rec.request_body = body[: rt.settings.log_body_max_bytes].decode("utf-8", errors="replace")
        data = parse_json_object(body)
        rec.end_user, rec.session_id, rec.tags = attribution(request.headers, data)
        forbidden = schemas.FORBIDDEN_FIELDS.intersection(data)
        if forbidden:
            name = sorted(forbidden)[0]
            raise bad_request(
                f"'{name}' cannot be set in the request body: upstreams and credentials are configured by "
                "the gateway's administrators.",
                param=name,
                code="forbidden_parameter",
            )
        if "prompt" in data and ep.name in PROMPT_ENDPOINTS:  # rendered before validation and the estimate
            body = await apply_prompt(rt, ep.name, data, rec, t0)
        try:
            req = ep.schema.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None
        for name in schemas.INTEGER_FIELDS:  # 16.0 was accepted as 16: forward it as an integer
            if isinstance(data.get(name), float):
                data[name] = int(data[name])
        alias: str = req.model  # type: ignore[attr-defined]
        stream = bool(getattr(req, "stream", False)) and ep.streams
        rec.stream = stream
        rec.alias = alias
        route = rt.routes.get(alias)
        if route is None:
            raise model_not_found(alias)
        if not key.may_use(alias):
            raise model_not_allowed(alias)
        t_route = time.perf_counter()
        rec.spans.append(SpanRecord("route", _ms(t0, t_auth), _ms(t_auth, t_route), attributes={"alias": alias}))
        if not key.plan.empty:
            tokens, cost = estimate(
                ep.name,
                len(body),
                data,
                (t.price for t in route.targets),
                rt.settings.limits_completion_estimate_tokens,
            )
            grant = await rt.limiter.admit(key.plan, tokens, cost)
            if grant is not None:
                headers.update(grant.headers)
            rec.spans.append(SpanRecord("limits", _ms(t0, t_route), _ms(t_route, time.perf_counter())))
        opened = await open_upstream(rt, endpoint=ep.name, route=route, data=data, stream=stream, rec=rec, t0=t0)
        target = opened.target
        rec.model, rec.deployment_id = target.model, target.deployment_id
        if stream:
            return _stream(rt, ep, rec, opened, t0, data, headers, grant)
        return _complete(rt, ep, rec, opened, t0, headers, grant)
    except GatewayError as exc:
        rec.status_code, rec.status, rec.error_type, rec.error_message = (
            exc.status,
            "error",
            exc.code or exc.type,
            exc.message,
        )
        if exc.status == 429 and exc.extra and "limit" in exc.extra:
            rec.throttle = f"{exc.extra['entity']}:{exc.extra['entity_id']}|{exc.extra['limit']}"
        rec.latency_ms = _ms(t0, time.perf_counter())
        rt.finish(rec, target, grant)
        exc.headers = {**(exc.headers or {}), **headers}
        raise
    except UpstreamStatus as exc:
        return _upstream_error(rt, ep, rec, exc, t0, headers, grant)


def _finish_usage(rec: LogRecord, usage: Usage, target: Target, *, latency_ms: float, ttfb_ms: float | None) -> None:
    rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens = (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
    )
    rec.cost_usd = cost_usd(usage, target.price)
    rec.latency_ms, rec.ttfb_ms = latency_ms, ttfb_ms


def _complete(
    rt: GatewayRuntime,
    ep: Endpoint,
    rec: LogRecord,
    op: Opened,
    t0: float,
    headers: dict[str, str],
    grant: Grant | None = None,
) -> Response:
    content = redact(op.body, op.target)
    t_end = time.perf_counter()
    try:
        obj: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        obj = None
    usage_reader = Usage.from_anthropic if op.provider.wire == "anthropic" else ep.usage
    if ep.name == "messages" and op.provider.wire == "openai":
        usage_reader = Usage.from_openai
    usage = usage_reader(obj.get("usage")) if isinstance(obj, dict) else Usage()
    if ep.wire != op.provider.wire:
        try:
            if not isinstance(obj, dict):
                raise TranslationError("the upstream's answer is not a JSON object")
            if ep.wire == "anthropic":
                content = orjson.dumps(chat_response_to_message(obj, model=rec.alias))
            else:
                content = orjson.dumps(message_to_chat_response(obj, model=rec.alias))
        except TranslationError as exc:
            raise GatewayError(
                502,
                f"The upstream's answer could not be translated: {exc.message}",
                type="server_error",
                code="upstream_bad_response",
            ) from None
    if ep.name == "embeddings" and isinstance(obj, dict):
        rec.embedding_dims = embedding_dims(obj)
    _finish_usage(rec, usage, op.target, latency_ms=_ms(t0, t_end), ttfb_ms=_ms(t0, op.ttfb_at))
    rec.response_body = content[: rt.settings.log_body_max_bytes].decode("utf-8", errors="replace")
    rt.finish(rec, op.target, grant)
    media = op.resp.headers.get("content-type") or "application/json"
    return Response(content, status_code=op.resp.status, media_type=media, headers=headers)


def embedding_dims(obj: dict[str, Any]) -> int | None:
    """Vector size of an embeddings answer: float lists, or base64 of little-endian float32."""
    data = obj.get("data")
    first = data[0] if isinstance(data, list) and data else None
    vector = first.get("embedding") if isinstance(first, dict) else None
    if isinstance(vector, list):
        return len(vector) or None
    if isinstance(vector, str) and vector:
        padding = len(vector) - len(vector.rstrip("="))
        return (len(vector) * 3 // 4 - padding) // 4 or None
    return None


def _upstream_error(
    rt: GatewayRuntime,
    ep: Endpoint,
    rec: LogRecord,
    exc: UpstreamStatus,
    t0: float,
    headers: dict[str, str],
    grant: Grant | None = None,
) -> Response:
    """Pass the upstream's error on in the client's format; keep a redacted copy in the log row."""
    try:
        parsed = orjson.loads(exc.body) if exc.body else None
    except orjson.JSONDecodeError:
        parsed = None
    status = exc.status
    if ep.wire == "anthropic":
        shaped = isinstance(parsed, dict) and parsed.get("type") == "error"
        out = (
            parsed
            if shaped and exc.wire == "anthropic"
            else openai_error_to_anthropic(status, parsed if isinstance(parsed, dict) else None)
        )
    else:
        shaped = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
        if exc.wire == "anthropic":
            out = anthropic_error_to_openai(status, parsed if isinstance(parsed, dict) else None)
        elif shaped:
            out = parsed
        else:  # an HTML error page or the like: our own error, and a 5xx becomes a 502 (bad gateway)
            upstream_status, status = status, 502 if status >= 500 else status
            out = {
                "error": {
                    "message": f"The upstream answered HTTP {upstream_status}.",
                    "type": "server_error" if status >= 500 else "invalid_request_error",
                    "param": None,
                    "code": "upstream_error",
                }
            }
    raw = orjson.dumps(out)
    rec.status_code, rec.status, rec.error_type = status, "error", "upstream_error"
    rec.error_message = raw[:1000].decode("utf-8", errors="replace")
    rec.latency_ms = _ms(t0, time.perf_counter())
    rt.finish(rec, None, grant)
    if exc.retry_after is not None:
        headers = {**headers, "retry-after": str(max(1, round(exc.retry_after)))}
    return Response(raw, status_code=status, media_type="application/json", headers=headers)


def _processor(ep: Endpoint, op: Opened, data: dict[str, Any], alias: str) -> Processor:
    if ep.name == "messages":
        return MessagesPassthrough() if op.provider.wire == "anthropic" else ChatToMessages(alias)
    if op.provider.wire == "anthropic":
        opts = data.get("stream_options")
        return MessagesToChat(alias, include_usage=bool(isinstance(opts, dict) and opts.get("include_usage")))
    if ep.name == "responses":
        return ResponsesPassthrough()
    return ChatPassthrough(drop_usage_only=op.usage_injected)


class RelayResponse(StreamingResponse):
    """A streaming response that always runs `cleanup`, even when the client leaves before the first
    chunk is sent (Starlette's own would then never start the body iterator, so its `finally` never runs),
    and that watches for the disconnect itself on every ASGI server, with one plain asyncio task rather
    than a task group (cheaper on the hot path)."""

    def __init__(self, content: Any, cleanup: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        gone = finished = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                gone = True
                streaming.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not gone:
                raise
            streaming.uncancel()  # our own cancellation: the client left, which is not an error here
        except OSError:  # the client went away while we were writing
            pass
        finally:
            finished = True
            watcher.cancel()
            self._cleanup()


def _stream(
    rt: GatewayRuntime,
    ep: Endpoint,
    rec: LogRecord,
    op: Opened,
    t0: float,
    data: dict[str, Any],
    headers: dict[str, str],
    grant: Grant | None = None,
) -> Response:
    state = StreamState(rt.settings.log_body_max_bytes)
    state.first_byte_at = op.ttfb_at
    attempt_ttfb_ms = rec.spans[-1].duration_ms  # the successful attempt's own time to first chunk
    closed = False

    def on_close() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        t_end = time.perf_counter()
        usage = state.usage
        estimated = usage is None
        if usage is None:  # cut short before the usage event: charge what we saw
            usage = Usage(prompt_tokens=len(rec.request_body or "") // 4, completion_tokens=state.content_chunks)
        _finish_usage(rec, usage, op.target, latency_ms=_ms(t0, t_end), ttfb_ms=_ms(t0, op.ttfb_at))
        if state.error or not state.done:
            rec.status = "error" if state.error == "upstream_error_event" else "incomplete"
            rec.error_type = state.error or "client_disconnected"
        rec.response_body = redact(bytes(state.captured), op.target).decode("utf-8", errors="replace")
        start = rec.spans[-1].start_ms + rec.spans[-1].duration_ms
        rec.spans.append(
            SpanRecord(
                "stream",
                start,
                round(rec.latency_ms - start, 3),
                "ok" if rec.status == "ok" else "error",
                {"chunks": state.content_chunks, "usage_reported": not estimated},
            )
        )
        rt.balancer.release(
            op.target,
            ok=state.error not in ("upstream_disconnected", "upstream_timeout", "upstream_bad_stream"),
            ttfb_ms=attempt_ttfb_ms,
            error=state.error or "",
            probe=op.probe,
        )
        rt.finish(rec, op.target, grant)

    def cleanup() -> None:
        if not closed:
            op.resp.close()
            on_close()

    iterator = relay(
        op.resp,
        op.body,
        _processor(ep, op, data, rec.alias),
        state,
        idle_s=op.timeouts.idle,
        deadline=op.deadline,
        on_close=on_close,
    )
    return RelayResponse(
        iterator,
        cleanup,
        status_code=op.resp.status,
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **headers},
    )
