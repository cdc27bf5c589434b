"""Endpoint handlers: thin, each one parse -> authorize -> route -> call -> log."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llm_console.db.records import LogRecord, SpanRecord
from llm_console.gateway.body import parse_json_object, read_body, validation_error
from llm_console.gateway.errors import GatewayError, model_not_allowed, model_not_found, upstream_error
from llm_console.gateway.pricing import Usage, cost_usd
from llm_console.gateway.routing import Target
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.gateway.schemas import ChatCompletionRequest
from llm_console.gateway.streaming import StreamState, relay

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _runtime(request: Request) -> GatewayRuntime:
    return request.app.state.llmc_runtime


def _redact(body: bytes, target: Target) -> bytes:
    """An upstream error that echoes our provider key must not pass it on."""
    if target.api_key and target.api_key.encode() in body:
        body = body.replace(target.api_key.encode(), b"***")
    return body


async def list_models(request: Request) -> Response:
    rt = _runtime(request)
    key = await rt.keys.authenticate(request.headers)
    data = [
        {"id": alias, "object": "model", "created": 0, "owned_by": "llm-console"}
        for alias in rt.routes.aliases()
        if key.may_use(alias)
    ]
    return JSONResponse({"object": "list", "data": data})


async def chat_completions(request: Request) -> Response:
    rt = _runtime(request)
    t0 = time.perf_counter()
    key = await rt.keys.authenticate(request.headers)
    t_auth = time.perf_counter()
    rec = LogRecord(
        id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        endpoint="/v1/chat/completions",
        key_id=key.id,
        user_id=key.user_id,
        team_id=key.team_id,
        client_ip=request.client.host if request.client else "",
    )
    rec.spans.append(SpanRecord("auth", 0.0, _ms(t0, t_auth)))
    headers = {"x-request-id": rec.id}
    try:
        body = await read_body(request, rt.settings.max_request_body_bytes)
        rec.request_body = body[: rt.settings.log_body_max_bytes].decode("utf-8", errors="replace")
        data = parse_json_object(body)
        try:
            req = ChatCompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None
        rec.alias, rec.stream = req.model, req.stream
        route = rt.routes.get(req.model)
        if route is None:
            raise model_not_found(req.model)
        if not key.may_use(req.model):
            raise model_not_allowed(req.model)
        target = route.pick(rt.rng)
        rec.model, rec.deployment_id = target.model, target.deployment_id
        data["model"] = target.model
        inject_usage = req.stream and not (req.stream_options and req.stream_options.include_usage)
        if inject_usage:
            data["stream_options"] = {**(data.get("stream_options") or {}), "include_usage": True}
        t_route = time.perf_counter()
        rec.spans.append(
            SpanRecord("route", _ms(t0, t_auth), _ms(t_auth, t_route), attributes={"deployment": target.deployment})
        )
        try:
            upstream_req = rt.upstream.build_request(target, "/chat/completions", orjson.dumps(data))
            resp = await rt.upstream.send(target, upstream_req, stream=True)
        except httpx.TimeoutException as exc:
            raise upstream_error(504, "The upstream did not answer in time.", "upstream_timeout") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise upstream_error(502, "The upstream could not be reached.", "upstream_unavailable") from exc
        t_head = time.perf_counter()
        rec.spans.append(
            SpanRecord(
                "upstream",
                _ms(t0, t_route),
                _ms(t_route, t_head),
                "ok" if resp.status_code < 400 else "error",
                {"deployment": target.deployment, "status_code": resp.status_code},
            )
        )
        if resp.status_code >= 400:
            return await _upstream_failure(rt, rec, resp, target, t0, headers)
        if req.stream:
            return _stream(rt, rec, resp, target, t0, inject_usage, headers)
        content = await resp.aread()
        await resp.aclose()
        t_end = time.perf_counter()
        try:
            usage = Usage.from_openai(orjson.loads(content).get("usage"))
        except (orjson.JSONDecodeError, AttributeError):
            usage = Usage()
        _finish(rec, usage, target, latency_ms=_ms(t0, t_end), ttfb_ms=_ms(t0, t_head))
        rec.response_body = content[: rt.settings.log_body_max_bytes].decode("utf-8", errors="replace")
        rt.log.submit(rec)
        return Response(content, status_code=resp.status_code, media_type="application/json", headers=headers)
    except GatewayError as exc:
        rec.status_code, rec.status, rec.error_type, rec.error_message = (
            exc.status,
            "error",
            exc.code or exc.type,
            exc.message,
        )
        rec.latency_ms = _ms(t0, time.perf_counter())
        rt.log.submit(rec)
        exc.headers = {**(exc.headers or {}), **headers}
        raise


def _finish(rec: LogRecord, usage: Usage, target: Target, *, latency_ms: float, ttfb_ms: float | None) -> None:
    rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens = (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
    )
    rec.cost_usd = cost_usd(usage, target.price)
    rec.latency_ms, rec.ttfb_ms = latency_ms, ttfb_ms


async def _upstream_failure(
    rt: GatewayRuntime, rec: LogRecord, resp: httpx.Response, target: Target, t0: float, headers: dict[str, str]
) -> Response:
    raw = _redact((await resp.aread())[:65536], target)
    await resp.aclose()
    try:
        parsed = orjson.loads(raw)
        shaped = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
    except orjson.JSONDecodeError:
        shaped = False
    if not shaped:
        err = upstream_error(
            502 if resp.status_code >= 500 else resp.status_code,
            f"The upstream answered HTTP {resp.status_code}.",
            "upstream_error",
        )
        raw = orjson.dumps(err.body())
    status = resp.status_code if shaped else (502 if resp.status_code >= 500 else resp.status_code)
    rec.status_code, rec.status, rec.error_type = status, "error", "upstream_error"
    rec.error_message = raw[:1000].decode("utf-8", errors="replace")
    rec.latency_ms = _ms(t0, time.perf_counter())
    rt.log.submit(rec)
    retry_after = resp.headers.get("retry-after")
    if retry_after:
        headers = {**headers, "retry-after": retry_after}
    return Response(raw, status_code=status, media_type="application/json", headers=headers)


def _stream(
    rt: GatewayRuntime,
    rec: LogRecord,
    resp: httpx.Response,
    target: Target,
    t0: float,
    inject_usage: bool,
    headers: dict[str, str],
) -> Response:
    state = StreamState(rt.settings.log_body_max_bytes)

    def on_close() -> None:
        t_end = time.perf_counter()
        usage = state.usage
        if usage is None:  # cut short before the usage chunk: charge what we saw
            usage = Usage(prompt_tokens=len(rec.request_body or "") // 4, completion_tokens=state.content_chunks)
        ttfb = _ms(t0, state.first_byte_at) if state.first_byte_at else None
        _finish(rec, usage, target, latency_ms=_ms(t0, t_end), ttfb_ms=ttfb)
        if state.error or not state.done:
            rec.status = "error" if state.error == "upstream_error_event" else "incomplete"
            rec.error_type = state.error or "client_disconnected"
        rec.response_body = state.captured.decode("utf-8", errors="replace")
        start = rec.spans[-1].start_ms + rec.spans[-1].duration_ms
        rec.spans.append(
            SpanRecord(
                "stream",
                start,
                round(rec.latency_ms - start, 3),
                "ok" if rec.status == "ok" else "error",
                {"chunks": state.content_chunks, "usage_reported": state.usage is not None},
            )
        )
        rt.log.submit(rec)

    iterator = relay(resp, state, drop_usage_only=inject_usage, clock=time.perf_counter, on_close=on_close)
    return StreamingResponse(
        iterator, status_code=resp.status_code, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
    )
