"""A fault-injecting OpenAI-style upstream over real sockets, for testing the gateway's aiohttp client.

It speaks HTTP/1.1 by hand on `asyncio.start_server`, so it can misbehave at the byte level (a reset in the middle
of a chunked body, a stall after some events, a body that drips or never ends) where a web framework or a
client-level mock could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, NoReturn

Kind = Literal["ok", "stream", "hang", "close", "drip", "endless"]

MODEL = "faulty-model"
DONE = b"data: [DONE]\n\n"
_MAX_HEAD = 64 * 1024
_LAST_CHUNK = b"0\r\n\r\n"


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    total = prompt_tokens + completion_tokens
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}


def sse(obj: object) -> bytes:
    """One server-sent event carrying `obj` as JSON."""
    return b"data: " + _json(obj) + b"\n\n"


def completion(content: str = "Hello!", *, prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    """A valid `chat.completion` body, the default answer of `Behaviour.ok`."""
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def content_chunk(text: str, *, finish_reason: str | None = None) -> bytes:
    """An SSE `chat.completion.chunk` event carrying a piece of content."""
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}
    return sse({"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "model": MODEL, "choices": [choice]})


def usage_chunk(prompt_tokens: int = 7, completion_tokens: int = 3) -> bytes:
    """The final usage event OpenAI sends with `stream_options.include_usage` (no choices)."""
    usage = _usage(prompt_tokens, completion_tokens)
    return sse(
        {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "model": MODEL, "choices": [], "usage": usage}
    )


def default_events() -> list[bytes]:
    """Three content chunks ("Hello!"), a usage chunk (7 prompt, 3 completion tokens) and `[DONE]`."""
    return [content_chunk("Hel"), content_chunk("lo"), content_chunk("!", finish_reason="stop"), usage_chunk(), DONE]


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error body for `status`."""
    kind = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message or f"{status} {_reason(status)}", "type": kind, "param": None, "code": code}}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class Behaviour:
    """What the server does with one request. Build with the constructors below."""

    kind: Kind
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    body: bytes = b""
    delay_s: float = 0
    events: tuple[bytes, ...] = ()
    gap_s: float = 0
    reset_after: int | None = None
    stall_after: int | None = None
    parts: tuple[bytes, ...] = ()
    every_s: float = 0
    piece: bytes = b""

    @classmethod
    def ok(
        cls,
        body: dict[str, Any] | None = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay_s: float = 0,
    ) -> Behaviour:
        """A JSON answer (default: `completion()`), after `delay_s` with nothing sent."""
        payload = _json(completion() if body is None else body)
        return cls("ok", status=status, headers=dict(headers or {}), body=payload, delay_s=delay_s)

    @classmethod
    def stream(
        cls,
        events: list[bytes] | None = None,
        *,
        gap_s: float = 0,
        reset_after: int | None = None,
        stall_after: int | None = None,
    ) -> Behaviour:
        """An SSE answer, one HTTP chunk per event, `gap_s` apart (default: `default_events()`).

        `reset_after=N` sends N events, then resets the TCP connection (RST) without ending the chunked body;
        `stall_after=N` sends N events, then sends nothing more until the client goes away. The fault comes
        where the next event would have, so `gap_s` precedes it too.
        """
        evs = tuple(default_events() if events is None else events)
        for name, n in (("reset_after", reset_after), ("stall_after", stall_after)):
            if n is not None and not 0 <= n <= len(evs):
                raise ValueError(f"{name}={n} outside 0..{len(evs)} events")
        if reset_after is not None and stall_after is not None:
            raise ValueError("reset_after and stall_after exclude each other")
        return cls(
            "stream",
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
            events=evs,
            gap_s=gap_s,
            reset_after=reset_after,
            stall_after=stall_after,
        )

    @classmethod
    def error(
        cls, status: int, body: dict[str, Any] | bytes | None = None, *, headers: dict[str, str] | None = None
    ) -> Behaviour:
        """An error status; a dict (default: `error_body(status)`) goes as JSON, bytes as text/plain."""
        if isinstance(body, bytes):
            return cls("ok", status=status, headers=dict(headers or {}), content_type="text/plain", body=body)
        payload = _json(error_body(status) if body is None else body)
        return cls("ok", status=status, headers=dict(headers or {}), body=payload)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Behaviour:
        """429 with `Retry-After` (seconds or an HTTP date, as given; omitted when None)."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return cls.error(429, error_body(429, "Rate limit reached, retry later"), headers=headers)

    @classmethod
    def hang_before_headers(cls) -> Behaviour:
        """Read the request and never answer: the client's first-byte timeout must fire."""
        return cls("hang")

    @classmethod
    def close_without_answer(cls) -> Behaviour:
        """Read the request, then close the socket (FIN) without a byte of answer."""
        return cls("close")

    @classmethod
    def drip(cls, total_bytes: int, *, every_s: float, piece: bytes = b" ") -> Behaviour:
        """200 JSON of exactly `total_bytes` (Content-Length set), arriving slowly.

        The headers go at once; then the leading padding, made of `piece`, goes one piece every `every_s`, and
        the `completion()` document comes last. Whitespace pieces keep the body valid JSON.
        """
        doc = _json(completion())
        if total_bytes < len(doc) or not piece:
            raise ValueError(f"total_bytes must be at least {len(doc)} and piece non-empty")
        pad = (piece * (total_bytes // len(piece) + 1))[: total_bytes - len(doc)]
        parts = (*(pad[i : i + len(piece)] for i in range(0, len(pad), len(piece))), doc)
        return cls("drip", parts=parts, every_s=every_s)

    @classmethod
    def endless(cls, piece: bytes = b"x" * 65536) -> Behaviour:
        """200 with a chunked body of `piece` after `piece`, until the client leaves."""
        if not piece:
            raise ValueError("piece must be non-empty (an empty chunk would end the body)")
        return cls("endless", piece=piece)


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    at: float


class _ClientGone(Exception):
    """The client went away before the response was complete."""


class _Eof(Exception):
    """The client closed (or reset) its side while we were reading."""


class _BadRequest(Exception):
    """The request could not be parsed."""


class _Conn:
    """One client connection with our own read buffer.

    Watching for the client to leave means reading; bytes read that way (a pipelined request) stay in `buf`.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    async def _fill(self) -> None:
        try:
            data = await self.reader.read(65536)
        except ConnectionError:
            raise _Eof from None
        if not data:
            raise _Eof
        self.buf += data

    async def read_until(self, sep: bytes, limit: int) -> bytes:
        while (i := self.buf.find(sep)) < 0:
            if len(self.buf) > limit:
                raise _BadRequest("request head too large")
            await self._fill()
        out = bytes(self.buf[:i])
        del self.buf[: i + len(sep)]
        return out

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def until_gone(self) -> NoReturn:
        """Wait, sending nothing, until the client closes or resets the connection."""
        try:
            while True:
                await self._fill()
        except _Eof:
            raise _ClientGone from None

    async def idle(self, seconds: float) -> None:
        """Wait `seconds`, raising `_ClientGone` if the client leaves meanwhile."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.until_gone()

    def left(self) -> bool:
        return self.writer.is_closing() or self.reader.exception() is not None or self.reader.at_eof()

    async def send(self, data: bytes) -> None:
        if self.left():
            raise _ClientGone
        self.writer.write(data)
        try:
            await self.writer.drain()
        except ConnectionError:
            raise _ClientGone from None

    def reset(self) -> None:
        """Close with SO_LINGER 0, so the kernel sends RST instead of FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self, graceful: bool) -> None:
        """FIN after what is buffered (graceful) or drop it all; wait until the socket is really closed."""
        if graceful:
            self.writer.close()
        else:
            self.writer.transport.abort()
        try:
            await self.writer.wait_closed()
        except asyncio.CancelledError:
            self.writer.transport.abort()
            raise
        except Exception:  # the close itself may report the client's reset; nothing to do about it
            pass


def _head(status: int, b: Behaviour, keep_alive: bool, *, length: int | None) -> bytes:
    fields = {"Content-Type": b.content_type}
    if length is None:
        fields["Transfer-Encoding"] = "chunked"
    else:
        fields["Content-Length"] = str(length)
    if not keep_alive:
        fields["Connection"] = "close"
    custom = {k.lower() for k in b.headers}
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{k}: {v}" for k, v in fields.items() if k.lower() not in custom]
    lines += [f"{k}: {v}" for k, v in b.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class FaultyUpstream:
    """An upstream that misbehaves on cue: `async with FaultyUpstream() as up:` then point the gateway at
    `up.base_url` ('http://127.0.0.1:PORT/v1')."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default = default or Behaviour.ok()
        self.requests: list[Seen] = []
        self.port = 0
        self.connections_open = 0
        self.connections_total = 0
        # Connections the client left while a response was still in progress (delay, hang, gap, stall, drip,
        # endless): proof that the gateway cancelled its upstream request.
        self.disconnects = 0
        self._script: deque[Behaviour] = deque()
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[Any], _Conn] = {}
        self._closing = False
        self._disconnected = asyncio.Event()
        self._errors: list[Exception] = []

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """The next requests get these, in order (after any still scripted), then `default`."""
        self._script.extend(behaviours)

    def always(self, behaviour: Behaviour) -> None:
        """Every request from now on gets `behaviour`; drops what was scripted."""
        self._script.clear()
        self.default = behaviour

    async def wait_disconnects(self, n: int, timeout: float = 5) -> None:  # noqa: ASYNC109 (the agreed interface)
        """Wait until the client has left `n` responses in progress."""
        try:
            async with asyncio.timeout(timeout):
                while self.disconnects < n:
                    self._disconnected.clear()
                    await self._disconnected.wait()
        except TimeoutError:
            raise TimeoutError(f"expected {n} client disconnects within {timeout}s, saw {self.disconnects}") from None

    @staticmethod
    def refused_url() -> str:
        """A base URL where nothing listens (a port just bound and released)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aenter__(self) -> FaultyUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
        if self._errors and exc is None:
            raise self._errors[0]

    async def aclose(self) -> None:
        """Stop listening, drop every connection and wait for their tasks, so nothing outlives the test."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # connections accepted just now start their task and register
        while self._conns:
            tasks = list(self._conns)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = self._conns[task] = _Conn(reader, writer)
        try:
            await self._handle(conn)
        except asyncio.CancelledError:
            # Our own aclose() ends quietly: Python 3.11's done-callback on this task logs an error when it
            # finds it cancelled.
            if not self._closing:
                raise
        finally:
            del self._conns[task]

    async def _handle(self, conn: _Conn) -> None:
        self.connections_open += 1
        self.connections_total += 1
        graceful = False
        try:
            if not self._closing:
                await self._serve_requests(conn)
                graceful = True
        except _ClientGone:
            self.disconnects += 1
            self._disconnected.set()
        except Exception as exc:  # a bug here must fail the test, not vanish into a task
            self._errors.append(exc)
        finally:
            self.connections_open -= 1
            await conn.close(graceful)

    async def _serve_requests(self, conn: _Conn) -> None:
        while True:
            try:
                seen, keep_alive = await self._read_request(conn)
            except _Eof:
                return
            except _BadRequest as exc:
                answer = Behaviour.error(400, error_body(400, str(exc)))
                await conn.send(_head(400, answer, False, length=len(answer.body)) + answer.body)
                return
            self.requests.append(seen)
            behaviour = self._script.popleft() if self._script else self.default
            if not await self._respond(conn, behaviour, keep_alive) or not keep_alive:
                return

    async def _read_request(self, conn: _Conn) -> tuple[Seen, bool]:
        head = (await conn.read_until(b"\r\n\r\n", _MAX_HEAD)).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        try:
            method, target, version = request_line.split(" ")
        except ValueError:
            raise _BadRequest(f"bad request line {request_line!r}") from None
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(f"bad header line {line!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(conn)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest("bad Content-Length") from None
            body = await conn.read_exactly(length)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        path, _, query = target.partition("?")
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        at = asyncio.get_running_loop().time()
        return Seen(method, path, query, headers, body, parsed, at), keep_alive

    async def _read_chunked(self, conn: _Conn) -> bytes:
        body = bytearray()
        while True:
            size_line = await conn.read_until(b"\r\n", _MAX_HEAD)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(f"bad chunk size {size_line!r}") from None
            if size == 0:
                while await conn.read_until(b"\r\n", _MAX_HEAD):  # trailers, up to the empty line
                    pass
                return bytes(body)
            body += await conn.read_exactly(size)
            if await conn.read_exactly(2) != b"\r\n":
                raise _BadRequest("chunk not followed by CRLF")

    async def _respond(self, conn: _Conn, b: Behaviour, keep_alive: bool) -> bool:
        """Carry out `b`; True when the connection may serve another request."""
        if b.kind == "ok":
            await conn.idle(b.delay_s)
            await conn.send(_head(b.status, b, keep_alive, length=len(b.body)) + b.body)
            return True
        if b.kind == "hang":
            await conn.until_gone()
        if b.kind == "close":
            return False
        if b.kind == "stream":
            return await self._stream(conn, b, keep_alive)
        if b.kind == "drip":
            await conn.send(_head(b.status, b, keep_alive, length=sum(map(len, b.parts))))
            for part in b.parts:
                await conn.idle(b.every_s)
                await conn.send(part)
            return True
        assert b.kind == "endless", b.kind
        await conn.send(_head(b.status, b, keep_alive, length=None))
        chunk = _chunk(b.piece)
        while True:  # endless: only the client leaving (or the server closing) ends it
            await conn.send(chunk)
            await asyncio.sleep(0)  # drain() does not yield while the socket takes everything

    async def _stream(self, conn: _Conn, b: Behaviour, keep_alive: bool) -> bool:
        await conn.send(_head(b.status, b, keep_alive, length=None))
        for i in range(len(b.events) + 1):
            last = i == len(b.events)
            fault = i in (b.reset_after, b.stall_after)
            if i and (fault or not last):
                await conn.idle(b.gap_s)
            if i == b.reset_after:
                conn.reset()
                return False
            if i == b.stall_after:
                await conn.until_gone()
            await conn.send(_LAST_CHUNK if last else _chunk(b.events[i]))
        return True
