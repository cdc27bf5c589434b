"""SSE relay: events leave as they arrive; usage is read on the way; the client's format is kept.

A *processor* turns complete upstream SSE events into what the client gets: untouched (pass-through,
with a cheap byte scan for usage) or translated between the OpenAI and Anthropic stream formats.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import orjson

from llm_console.gateway.pricing import Usage
from llm_console.gateway.translate import ChatStreamToMessages, MessagesStreamToChat, TranslationError
from llm_console.gateway.upstream import UpstreamFailure, UpstreamResponse

MAX_PENDING = 1024 * 1024  # an "event" this long without a blank line is not SSE


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

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage if self.usage is None else self.usage.merged(usage)


class Processor(Protocol):
    def process(self, events: bytes, state: StreamState) -> bytes:
        """`events`: one or more complete SSE events (each ending in a blank line)."""
        ...

    def end(self, state: StreamState) -> bytes: ...

    def fail(self, code: str, message: str) -> bytes:
        """The final error event, in the client's format, for a stream cut short."""
        ...


def _split(events: bytes) -> list[bytes]:
    return [ev for ev in events.split(b"\n\n") if ev.strip()]


def _fields(event: bytes) -> tuple[str, bytes]:
    """(`event:` name, joined `data:` payload) of one SSE event."""
    name, data = "", []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return name, b"\n".join(data)


def _json(payload: bytes) -> dict[str, object] | None:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def openai_error_event(code: str, message: str) -> bytes:
    err = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(err) + b"\n\n"


def anthropic_error_event(code: str, message: str) -> bytes:
    err = {"type": "error", "error": {"type": "api_error", "message": message, "code": code}}
    return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"


USAGE_MARK = b'"usage"'
NULL_USAGE = (b'"usage":null', b'"usage": null')
CONTENT_MARK = b'"content"'
DONE = b"data: [DONE]"
ERROR_MARK = b'"error"'


def _real_usage(events: bytes) -> bool:
    """Whether some event carries a usage object (not just `"usage": null`)."""
    found = events.count(USAGE_MARK)
    return found > 0 and found != events.count(NULL_USAGE[0]) + events.count(NULL_USAGE[1])


class ChatPassthrough:
    """OpenAI chat / completions streams, forwarded byte for byte. When the gateway itself asked for the
    usage chunk (`drop_usage_only`), that chunk is read and not forwarded."""

    def __init__(self, drop_usage_only: bool) -> None:
        self.drop_usage_only = drop_usage_only

    def process(self, events: bytes, state: StreamState) -> bytes:
        if DONE not in events and ERROR_MARK not in events and not _real_usage(events):
            # The common case: content deltas only (vLLM and others put `"usage":null` on each of them).
            if CONTENT_MARK in events:
                state.content_chunks += events.count(CONTENT_MARK)
            elif b'"text"' in events:  # legacy completions chunks carry "text"
                state.content_chunks += events.count(b"data:")
            return events
        kept = [out for ev in _split(events) if (out := self._inspect(ev, state))]
        return b"".join(ev + b"\n\n" for ev in kept)

    def _inspect(self, event: bytes, state: StreamState) -> bytes | None:
        """The event as the client gets it (None: dropped)."""
        if event.startswith(DONE):
            state.done = True
            return event
        if CONTENT_MARK in event or b'"text"' in event:
            state.content_chunks += 1
        if USAGE_MARK in event and not any(n in event for n in NULL_USAGE):
            obj = _json(_fields(event)[1])
            if obj is not None:
                state.add_usage(Usage.from_openai(obj.get("usage")))
                if self.drop_usage_only:
                    # The gateway asked for usage, not the client: a usage-only chunk goes, and usage that
                    # an upstream put on a content chunk (some do) is taken off it.
                    if obj.get("choices") == []:
                        return None
                    del obj["usage"]
                    return b"data: " + orjson.dumps(obj)
        elif event.startswith(b'data: {"error"') or event.startswith(b'data:{"error"'):
            state.error = "upstream_error_event"
        return event

    def end(self, state: StreamState) -> bytes:
        return b""

    def fail(self, code: str, message: str) -> bytes:
        return openai_error_event(code, message)


class ResponsesPassthrough:
    """Responses API streams: usage arrives in `response.completed` (or `.incomplete` / `.failed`)."""

    def process(self, events: bytes, state: StreamState) -> bytes:
        if b"output_text.delta" in events:
            state.content_chunks += events.count(b"output_text.delta") // 2 or 1
        if b"response.completed" in events or b"response.incomplete" in events or b"response.failed" in events:
            for ev in _split(events):
                name, payload = _fields(ev)
                obj = _json(payload)
                kind = name or (str(obj.get("type")) if obj else "")
                if kind in ("response.completed", "response.incomplete", "response.failed") and obj is not None:
                    response = obj.get("response")
                    if isinstance(response, dict):
                        state.add_usage(Usage.from_responses(response.get("usage")))
                    state.done = True
                    if kind == "response.failed":
                        state.error = "upstream_error_event"
        elif b"event: error" in events:
            state.error = "upstream_error_event"
        return events

    def end(self, state: StreamState) -> bytes:
        return b""

    def fail(self, code: str, message: str) -> bytes:
        err = {"type": "error", "code": code, "message": message, "param": None}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"


class MessagesPassthrough:
    """Anthropic streams to an Anthropic client: input tokens in `message_start`, output in `message_delta`."""

    def process(self, events: bytes, state: StreamState) -> bytes:
        if b"text_delta" in events or b"input_json_delta" in events:
            state.content_chunks += events.count(b"content_block_delta") // 2 or 1
        if USAGE_MARK in events or b"message_stop" in events or b"event: error" in events:
            for ev in _split(events):
                name, payload = _fields(ev)
                if name == "message_stop":
                    state.done = True
                elif name == "error":
                    state.error = "upstream_error_event"
                elif name in ("message_start", "message_delta"):
                    obj = _json(payload)
                    if obj is None:
                        continue
                    holder = obj.get("message") if name == "message_start" else obj
                    if isinstance(holder, dict):
                        state.add_usage(Usage.from_anthropic(holder.get("usage")))
        return events

    def end(self, state: StreamState) -> bytes:
        return b""

    def fail(self, code: str, message: str) -> bytes:
        return anthropic_error_event(code, message)


class _Translated:
    """A stream translated between formats: the translator (`self.tr`) yields the client's events and
    keeps the upstream's usage in OpenAI's shape."""

    tr: ChatStreamToMessages | MessagesStreamToChat

    def process(self, events: bytes, state: StreamState) -> bytes:
        try:
            out = self._process(events, state)
        except (TranslationError, KeyError, TypeError, ValueError) as exc:
            state.error = "upstream_bad_stream"
            return self.tr.error(f"The upstream's stream could not be translated: {exc}")
        if self.tr.usage:
            state.usage = Usage.from_openai(self.tr.usage)
        return out

    def _process(self, events: bytes, state: StreamState) -> bytes:
        raise NotImplementedError

    def end(self, state: StreamState) -> bytes:
        if not state.done or state.error:
            return b""
        tail = self.tr.finish()
        if self.tr.usage:
            state.usage = Usage.from_openai(self.tr.usage)
        return tail

    def fail(self, code: str, message: str) -> bytes:
        return self.tr.error(message)


def _error_message(err: object) -> str:
    message = err.get("message") if isinstance(err, dict) else None
    return str(message or "upstream error")


class ChatToMessages(_Translated):
    """OpenAI chat chunks from the upstream, Anthropic events to the client."""

    def __init__(self, model: str) -> None:
        self.tr = ChatStreamToMessages(model=model)

    def _process(self, events: bytes, state: StreamState) -> bytes:
        assert isinstance(self.tr, ChatStreamToMessages)
        out = []
        for ev in _split(events):
            payload = _fields(ev)[1]
            if payload.startswith(b"[DONE]"):
                state.done = True
                continue
            obj = _json(payload)
            if obj is None:
                continue
            if "error" in obj:
                state.error = "upstream_error_event"
                out.append(self.tr.error(_error_message(obj["error"])))
                continue
            if CONTENT_MARK in payload:
                state.content_chunks += 1
            out.append(self.tr.feed(obj))
        return b"".join(out)


class MessagesToChat(_Translated):
    """Anthropic events from the upstream, OpenAI chat chunks to the client."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.tr = MessagesStreamToChat(model=model, include_usage=include_usage)

    def _process(self, events: bytes, state: StreamState) -> bytes:
        assert isinstance(self.tr, MessagesStreamToChat)
        out = []
        for ev in _split(events):
            name, payload = _fields(ev)
            obj = _json(payload)
            if obj is None:
                continue
            name = name or str(obj.get("type", ""))
            if name == "message_stop":
                state.done = True
            elif name == "error":
                state.error = "upstream_error_event"
                out.append(self.tr.error(_error_message(obj.get("error"))))
                continue
            elif name == "content_block_delta":
                state.content_chunks += 1
            out.append(self.tr.feed(name, obj))
        return b"".join(out)


async def relay(
    response: UpstreamResponse,
    first: bytes,
    processor: Processor,
    state: StreamState,
    *,
    idle_s: float,
    deadline: float,
    on_close: Callable[[], None],
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[bytes]:
    """Yield complete SSE events as they arrive (`first` is the chunk read before the client was answered).

    Always closes the upstream response and reports through `on_close`, however the stream ends: finished,
    upstream broke (a final error event in the client's format), or the client left (generator closed).
    """
    pending = b""
    chunk = first
    finished = False
    try:
        while True:
            if not chunk:
                break
            data = pending + chunk if pending else chunk
            if b"\r\n" in data:
                data = data.replace(b"\r\n", b"\n")
            cut = data.rfind(b"\n\n")
            if cut < 0:
                pending = data
                if len(pending) > MAX_PENDING:
                    raise UpstreamFailure("bad_stream", "The upstream sent a malformed event stream.")
            else:
                pending = data[cut + 2 :]
                out = processor.process(data[: cut + 2], state)
                if out:
                    if len(state.captured) < state.cap:
                        state.captured += out[: state.cap - len(state.captured)]
                    yield out
            remaining = deadline - clock()
            if remaining <= 0:
                raise UpstreamFailure("timeout", "The upstream call ran past its total time limit.")
            chunk = await response.next_chunk(min(idle_s, remaining))
        if pending.strip():
            out = processor.process(pending + b"\n\n", state)
            if out:
                yield out
        tail = processor.end(state)
        if tail:
            yield tail
        if not state.done and state.error is None:
            state.error = "upstream_incomplete"
        finished = True
    except UpstreamFailure as exc:
        state.error = {"timeout": "upstream_timeout", "bad_stream": "upstream_bad_stream"}.get(
            exc.kind, "upstream_disconnected"
        )
        yield processor.fail(state.error, exc.message)
    finally:  # synchronous on purpose: nothing here can be cancelled half-way
        if finished and state.done:
            response.release()
        else:
            response.close()  # cancels the upstream generation
        on_close()
