"""Getting a usable upstream response: pick, call, retry, fall back, all before the client sees a byte.

Retries happen only while nothing has been sent to the client: on connect errors, timeouts, broken
connections, 408/429/5xx answers, and (streams) a stream that breaks before its first chunk. A retry prefers
a deployment not yet tried; a deployment's `Retry-After` is waited for when it is within the cap, and when
it is not, that deployment is skipped. When an alias runs out, its fallbacks are tried in order.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from typing import Any

import orjson

from llm_console.db.records import LogRecord, SpanRecord
from llm_console.gateway.balancer import NoCapacity
from llm_console.gateway.errors import GatewayError
from llm_console.gateway.providers import PROVIDERS, Provider
from llm_console.gateway.routing import Route, Target
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.gateway.translate import TranslationError, chat_to_messages, messages_to_chat
from llm_console.gateway.upstream import Timeouts, UpstreamFailure, UpstreamResponse

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504, 529})
ERROR_BODY_LIMIT = 64 * 1024


@dataclass(slots=True)
class Opened:
    """A 2xx upstream response ready for the client: a whole body, or a stream and its first chunk."""

    target: Target
    route: Route
    provider: Provider
    upstream_endpoint: str
    resp: UpstreamResponse
    body: bytes  # non-streaming: the whole body; streaming: the first chunk
    ttfb_at: float
    timeouts: Timeouts
    deadline: float
    usage_injected: bool
    probe: bool  # this request is its deployment's half-open probe (handlers pass it back on release)


class UpstreamStatus(Exception):
    """The upstream answered with an error status and no retry is left: pass it on (redacted)."""

    def __init__(self, status: int, body: bytes, wire: str, retry_after: float | None) -> None:
        super().__init__(f"upstream HTTP {status}")
        self.status = status
        self.body = body
        self.wire = wire
        self.retry_after = retry_after


def redact(data: bytes, target: Target) -> bytes:
    """An upstream that echoes our provider credential must not pass it on, nor into our logs."""
    key = target.api_key
    if key and len(key) >= 4:
        raw = key.encode()
        if raw in data:
            data = data.replace(raw, b"***")
    return data


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def upstream_body(
    endpoint: str, provider: Provider, target: Target, data: dict[str, Any], stream: bool
) -> tuple[str, bytes, bool]:
    """(upstream endpoint, body bytes, usage chunk injected) for `target`, translating when the wire differs."""
    if endpoint == "messages" and provider.wire == "openai":
        out = messages_to_chat(data)
        upstream_endpoint = "chat"
    elif endpoint == "chat" and provider.wire == "anthropic":
        out = chat_to_messages(data)
        upstream_endpoint = "messages"
    else:
        out = dict(data)
        upstream_endpoint = endpoint
    out["model"] = target.model
    injected = False
    if stream and upstream_endpoint in ("chat", "completions"):
        opts = out.get("stream_options")
        if not (isinstance(opts, dict) and opts.get("include_usage")):
            out["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
            injected = endpoint != "messages"  # a translated stream consumes the usage chunk itself
    return upstream_endpoint, orjson.dumps(out), injected


def capable(endpoint: str, provider: Provider) -> bool:
    if endpoint in provider.endpoints:
        return True
    return (endpoint == "messages" and "chat" in provider.endpoints) or (
        endpoint == "chat" and "messages" in provider.endpoints
    )


def timeouts_for(rt: GatewayRuntime, route: Route, target: Target) -> Timeouts:
    base = rt.default_timeouts.merged(route.policy.timeouts)
    return base.merged(target.options.get("timeouts"))


async def open_upstream(
    rt: GatewayRuntime,
    *,
    endpoint: str,
    route: Route,
    data: dict[str, Any],
    stream: bool,
    rec: LogRecord,
    t0: float,
) -> Opened:
    settings = rt.settings
    chain = [route]
    for name in route.policy.fallbacks:
        fb = rt.routes.get(name)
        if fb is not None and all(fb.alias != r.alias for r in chain):
            chain.append(fb)
    total = rt.default_timeouts.merged(route.policy.timeouts).total
    deadline = t0 + total
    last: Exception | None = None
    attempt = 0
    bodies: dict[tuple[str, str], tuple[str, bytes, bool]] = {}
    for r in chain:
        retries = r.policy.retries if r.policy.retries is not None else settings.retry_attempts
        backoff_s = (r.policy.backoff_ms if r.policy.backoff_ms is not None else settings.retry_backoff_ms) / 1000
        cap_s = r.policy.retry_after_cap_s if r.policy.retry_after_cap_s is not None else settings.retry_after_cap_s
        failed: set[int] = set()  # tried in this alias and failed: prefer others
        skipped: set[int] = set()  # asked us to wait longer than the cap: not again in this alias
        waits: dict[int, float] = {}
        tries = 0
        while tries <= retries:
            try:
                candidates = rt.balancer.order(r, failed | skipped)
                if not candidates and failed - skipped:
                    candidates = rt.balancer.order(r, skipped)  # all tried once: try again after a pause
            except NoCapacity as exc:
                last = exc
                break
            candidates = [t for t in candidates if capable(endpoint, PROVIDERS[t.kind])]
            if not candidates:
                if last is None:
                    last = GatewayError(
                        400,
                        f"The model `{r.alias[:200]}` does not serve this endpoint.",
                        param="model",
                        code="unsupported_endpoint",
                    )
                break
            target = candidates[0]
            if target.deployment_id in failed:
                backoff = backoff_s * (2 ** max(tries - 1, 0)) * (0.5 + rt.rng.random())
                delay = max(backoff, waits.get(target.deployment_id, 0))
                if time.perf_counter() + delay >= deadline:
                    break
                await asyncio.sleep(delay)
                if not rt.balancer.usable(target):  # its circuit opened or it filled up meanwhile: choose again
                    failed.discard(target.deployment_id)
                    skipped.add(target.deployment_id)
                    continue
            tries += 1
            attempt += 1
            provider = PROVIDERS[target.kind]
            cache_key = (target.model, provider.wire)
            prepared = bodies.get(cache_key)
            if prepared is None:
                try:
                    prepared = upstream_body(endpoint, provider, target, data, stream)
                except TranslationError as exc:
                    raise GatewayError(400, str(exc), param=exc.param, code="unsupported_parameter") from None
                except TypeError:  # orjson: an integer beyond 64 bits, which no upstream accepts
                    raise GatewayError(400, "The body holds a number too large to pass on (over 64 bits).") from None
                bodies[cache_key] = prepared
            upstream_endpoint, payload, injected = prepared
            outcome, opened = await _attempt(
                rt, r, target, provider, upstream_endpoint, payload, stream, rec, t0, deadline, attempt, injected
            )
            if opened is not None:
                rec.attempts = attempt
                return opened
            assert outcome is not None
            last = outcome
            failed.add(target.deployment_id)
            if isinstance(outcome, UpstreamStatus):
                if outcome.status not in RETRYABLE_STATUS:
                    rec.attempts = attempt
                    raise outcome
                if outcome.retry_after is not None:
                    if outcome.retry_after > cap_s:
                        skipped.add(target.deployment_id)
                    else:
                        waits[target.deployment_id] = outcome.retry_after
            if time.perf_counter() >= deadline:
                break
    rec.attempts = max(attempt, 1)
    raise _final(last)


async def _attempt(
    rt: GatewayRuntime,
    route: Route,
    target: Target,
    provider: Provider,
    upstream_endpoint: str,
    payload: bytes,
    stream: bool,
    rec: LogRecord,
    t0: float,
    deadline: float,
    attempt: int,
    injected: bool,
) -> tuple[Exception | None, Opened | None]:
    """One call to one deployment: (why it failed, None) or (None, the opened response)."""
    call = provider.call(target, upstream_endpoint)
    timeouts = timeouts_for(rt, route, target)
    start = time.perf_counter()
    first_byte = max(0.001, min(timeouts.first_byte, deadline - start))
    probe = rt.balancer.acquire(target)
    span = SpanRecord(
        "upstream",
        _ms(t0, start),
        0.0,
        "ok",
        {"deployment": target.deployment, "alias": route.alias, "attempt": attempt},
    )
    rec.spans.append(span)
    resp: UpstreamResponse | None = None
    try:
        resp = await rt.upstream.send(
            call,
            host=target.host,
            body=payload,
            connect_s=timeouts.connect,
            first_byte_s=first_byte,
        )
        span.attributes["status_code"] = resp.status
        if resp.status >= 300:
            retry_after = parse_retry_after(resp.headers)
            try:
                raw = await resp.read(ERROR_BODY_LIMIT, timeouts.idle)
                resp.release()
            except UpstreamFailure:
                raw = b""
                resp.close()
            status = resp.status if resp.status >= 400 else 502
            verdict = None if status < 500 and status not in (408, 429) else False
            rt.balancer.release(target, ok=verdict, error=f"http_{status}", probe=probe)
            rt.metrics.observe_attempt(route.alias, target.deployment, "rate_limited" if status == 429 else "error")
            span.status = "error"
            span.duration_ms = _ms(start, time.perf_counter())
            return UpstreamStatus(status, redact(raw, target), provider.wire, retry_after), None
        if stream:
            body = await resp.next_chunk(max(0.001, min(timeouts.first_byte, deadline - time.perf_counter())))
            if not body:
                raise UpstreamFailure("disconnected", "The upstream ended the stream before sending anything.")
        else:
            body = await resp.read(rt.settings.upstream_max_response_bytes, timeouts.idle)
        ttfb_at = time.perf_counter()
    except UpstreamFailure as exc:
        if resp is not None:
            resp.close()
        rt.balancer.release(target, ok=False, error=exc.kind, probe=probe)
        rt.metrics.observe_attempt(
            route.alias, target.deployment, exc.kind if exc.kind in ("timeout", "connect_error") else "error"
        )
        span.status = "error"
        span.attributes["error"] = exc.kind
        span.duration_ms = _ms(start, time.perf_counter())
        return exc, None
    except BaseException:
        if resp is not None:
            resp.close()
        rt.balancer.release(target, ok=None, probe=probe)
        raise
    span.duration_ms = _ms(start, ttfb_at)
    span.attributes["ttfb_ms"] = span.duration_ms
    rt.metrics.observe_attempt(route.alias, target.deployment, "ok")
    if not stream:
        resp.release()
        rt.balancer.release(target, ok=True, ttfb_ms=span.duration_ms, probe=probe)
    # streams release the balancer slot when they end (handlers.py), so in-flight counts stay true
    return None, Opened(
        target, route, provider, upstream_endpoint, resp, body, ttfb_at, timeouts, deadline, injected, probe
    )


def _final(last: Exception | None) -> Exception:
    """The client-visible error once every attempt and fallback is spent."""
    if isinstance(last, (UpstreamStatus, GatewayError)):
        return last
    if isinstance(last, NoCapacity):
        retry = {"retry-after": str(int(last.retry_after_s))}
        if last.reason == "busy":
            return GatewayError(
                429,
                "Every deployment of this model is at its concurrency limit; retry shortly.",
                type="rate_limit_error",
                code="deployment_busy",
                headers=retry,
            )
        return GatewayError(
            503,
            "No healthy deployment can serve this model right now (circuit open after repeated failures).",
            type="server_error",
            code="no_healthy_deployment",
            headers=retry,
        )
    if isinstance(last, UpstreamFailure):
        if last.kind == "timeout":
            return GatewayError(
                504, "The upstream did not answer in time.", type="server_error", code="upstream_timeout"
            )
        if last.kind == "refused_address":
            return GatewayError(
                502,
                "The deployment's address is not allowed by the gateway's network policy (SSRF guard); "
                "an admin can add it to the upstream allow-list.",
                type="server_error",
                code="upstream_address_refused",
            )
        if last.kind == "too_large":
            return GatewayError(502, last.message, type="server_error", code="upstream_response_too_large")
        if last.kind == "connect_error":
            return GatewayError(
                502, "The upstream could not be reached.", type="server_error", code="upstream_unavailable"
            )
        return GatewayError(502, last.message, type="server_error", code="upstream_disconnected")
    return GatewayError(502, "No upstream attempt could be made.", type="server_error", code="upstream_unavailable")
