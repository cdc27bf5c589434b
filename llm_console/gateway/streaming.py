"""SSE pass-through: events leave as they arrive; usage is read on the way without re-encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import orjson

from llm_console.gateway.errors import GatewayError
from llm_console.gateway.pricing import Usage

USAGE_MARK = b'"usage"'
NULL_USAGE = (b'"usage":null', b'"usage": null')
CONTENT_MARK = b'"content"'
DONE = b"data: [DONE]"
ERROR_MARK = b'"error"'


class StreamState:
    """What the relay learned from the stream; read by the caller when the stream ends."""

    __slots__ = ("cap", "captured", "content_chunks", "done", "error", "first_byte_at", "usage")

    def __init__(self, cap: int) -> None:
        self.usage: Usage | None = None
        self.content_chunks = 0
        self.done = False
        self.error: str | None = None
        self.first_byte_at: float | None = None
        self.captured = bytearray()
        self.cap = cap


def _inspect(event: bytes, state: StreamState, drop_usage_only: bool) -> bool:
    """Update `state` from one SSE event; return False when the event must not reach the client."""
    if event.startswith(DONE):
        state.done = True
        return True
    if CONTENT_MARK in event:
        state.content_chunks += 1
    if USAGE_MARK in event and not any(n in event for n in NULL_USAGE):
        payload = event.partition(b"data:")[2].strip()
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return True
        if isinstance(obj, dict):
            state.usage = Usage.from_openai(obj.get("usage"))
            if drop_usage_only and obj.get("choices") == []:
                return False
    elif event.startswith(b'data: {"error"'):
        state.error = "upstream_error_event"
    return True


def error_event(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


async def relay(
    response: httpx.Response,
    state: StreamState,
    *,
    drop_usage_only: bool,
    clock: Callable[[], float],
    on_close: Callable[[], None],
) -> AsyncIterator[bytes]:
    """Yield complete SSE events from `response` as they arrive; always closes and reports."""
    pending = b""
    try:
        async for chunk in response.aiter_bytes():
            if state.first_byte_at is None:
                state.first_byte_at = clock()
            data = pending + chunk if pending else chunk
            if b"\r\n" in data:
                data = data.replace(b"\r\n", b"\n")
            cut = data.rfind(b"\n\n")
            if cut < 0:
                pending = data
                continue
            pending = data[cut + 2 :]
            complete = data[: cut + 2]
            out = complete
            if CONTENT_MARK in complete or USAGE_MARK in complete or DONE in complete or ERROR_MARK in complete:
                kept = [ev for ev in complete.split(b"\n\n") if ev and _inspect(ev, state, drop_usage_only)]
                out = b"".join(ev + b"\n\n" for ev in kept)
            if len(state.captured) < state.cap:
                state.captured += out[: state.cap - len(state.captured)]
            if out:
                yield out
        if pending.strip():
            yield pending
    except httpx.HTTPError as exc:
        state.error = "upstream_disconnected" if not isinstance(exc, httpx.TimeoutException) else "upstream_timeout"
        yield error_event(
            GatewayError(502, "The upstream stream ended unexpectedly.", type="server_error", code=state.error)
        )
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()
            on_close()
