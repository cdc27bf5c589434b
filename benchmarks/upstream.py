"""A canned OpenAI-compatible upstream on a raw asyncio Protocol, fast enough never to be the bottleneck.

The project's simulator (Starlette) tops out at a few thousand requests per second on one core, below what
a bare proxy can push; this one answers `POST /v1/chat/completions` from a cache of ready-made bytes (a
`chat.completion` JSON, or an SSE stream with a role chunk, one chunk per token, a finish chunk, an
optional usage chunk and `[DONE]`), with HTTP/1.1 keep-alive and pipelining. Nothing is generated: every
microsecond it spends is parsing and writing. `python benchmarks/upstream.py --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from functools import cache
from typing import cast

import orjson

MAX_HEADER_BYTES = 16_384
DEFAULT_TOKENS = 16
WORDS = ("Hello", " there", ",", " how", " are", " you", " doing", " today", "?", " I", " am", " fine", ".")
STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}
CREATED = int(time.time())


def _head(status: int, content_type: str, length: int | None) -> bytes:
    size = "transfer-encoding: chunked" if length is None else f"content-length: {length}"
    return f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\ncontent-type: {content_type}\r\n{size}\r\n\r\n".encode()


def _json(status: int, payload: object) -> bytes:
    body = orjson.dumps(payload)
    return _head(status, "application/json", len(body)) + body


def _usage(tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 17, "completion_tokens": tokens, "total_tokens": 17 + tokens}


def _chunk(model: str, choices: list[object], usage: dict[str, int] | None = None) -> bytes:
    obj = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": model}
    event = b"data: " + orjson.dumps({**obj, "choices": choices, **({"usage": usage} if usage else {})}) + b"\n\n"
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


@cache
def completion(model: str, stream: bool, include_usage: bool, tokens: int) -> bytes:
    """The whole HTTP response for one request shape, built once."""
    words = [WORDS[i % len(WORDS)] for i in range(tokens)]
    if not stream:
        message = {"role": "assistant", "content": "".join(words)}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "length"}
        obj = {"id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": model}
        return _json(200, {**obj, "choices": [choice], "usage": _usage(tokens)})

    def delta(d: dict[str, str], finish: str | None = None) -> list[object]:
        return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

    parts = [_chunk(model, delta({"role": "assistant", "content": ""}))]
    parts += [_chunk(model, delta({"content": w})) for w in words]
    parts.append(_chunk(model, delta({}, "length")))
    if include_usage:
        parts.append(_chunk(model, [], _usage(tokens)))
    done = b"data: [DONE]\n\n"
    parts.append(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
    return _head(200, "text/event-stream", None) + b"".join(parts)


def answer(method: bytes, path: bytes, body: bytes) -> bytes:
    if method == b"POST" and path == b"/v1/chat/completions":
        try:
            req = orjson.loads(body)
            model = str(req["model"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _json(400, {"error": {"message": "bad request body", "type": "invalid_request_error"}})
        max_tokens = req.get("max_tokens") or req.get("max_completion_tokens") or DEFAULT_TOKENS
        options = req.get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        return completion(model, bool(req.get("stream")), include_usage, max(1, min(int(max_tokens), 256)))
    if method == b"GET" and path == b"/health":
        return _head(200, "text/plain", 0)
    if method == b"GET" and path == b"/v1/models":
        return _json(200, {"object": "list", "data": [{"id": "llama-3.1-8b-instruct", "object": "model"}]})
    return _json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})


class Http11(asyncio.Protocol):
    """Parses as many complete requests as the buffer holds and answers them in order (keep-alive)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        out = []
        close = False
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    close = True
                break
            head = self.buf[:end].split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if len(self.buf) < end + 4 + length:
                break
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, path, _ = [*head[0].split(b" ", 2), b"", b""][:3]
            out.append(answer(method, path.split(b"?", 1)[0], body))
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http11, host, port, backlog=2048, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # still correct, only slower
            asyncio.run(serve(args.host, args.port))
        else:
            uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
