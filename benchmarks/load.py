"""Closed-loop aiohttp load: N workers send back-to-back requests to one target for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

PROMPT = [{"role": "user", "content": "Say hello in five words."}]
MAX_TOKENS = 16
REQUEST_TIMEOUT_S = 30.0
KEEPALIVE_S = 4.0  # below uvicorn's 5 s keep-alive timeout, so we never reuse a connection the server is closing


class BadResponse(Exception):
    """A response that is not a complete 200 answer; its message is the error bucket."""


@dataclass
class Slice:
    """What one target saw during one timed run."""

    latencies_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)

    def extend(self, other: Slice) -> None:
        self.latencies_ms += other.latencies_ms
        self.ttfb_ms += other.ttfb_ms
        self.errors.update(other.errors)
        self.elapsed_s += other.elapsed_s
        for k, v in other.cpu_s.items():
            self.cpu_s[k] = self.cpu_s.get(k, 0.0) + v

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Target:
    url: str
    headers: dict[str, str]
    body_nonstream: bytes
    body_stream: bytes


def make_target(url: str, model: str, key: str | None) -> Target:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    base: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": MAX_TOKENS}
    return Target(url, headers, orjson.dumps(base), orjson.dumps({**base, "stream": True}))


async def one_request(session: aiohttp.ClientSession, target: Target, stream: bool) -> tuple[float, float | None]:
    """Latency and (streams) time to the first body chunk, both in ms; raises BadResponse on a bad answer."""
    body = target.body_stream if stream else target.body_nonstream
    t0 = time.perf_counter()
    first: float | None = None
    async with session.post(target.url, data=body, headers=target.headers) as resp:
        if resp.status != 200:
            await resp.read()
            raise BadResponse(f"HTTP {resp.status}")
        if stream:
            tail = b""
            async for chunk in resp.content.iter_any():
                if first is None:
                    first = time.perf_counter()
                tail = (tail + chunk)[-64:]
            if b"data: [DONE]" not in tail:
                raise BadResponse("stream ended without [DONE]")
        elif b'"choices"' not in await resp.read():
            raise BadResponse("body without choices")
    t1 = time.perf_counter()
    return (t1 - t0) * 1000, (first - t0) * 1000 if first is not None else None


async def drive(
    session: aiohttp.ClientSession, target: Target, stream: bool, concurrency: int, seconds: float
) -> Slice:
    """`concurrency` closed-loop workers send back-to-back requests until `seconds` pass."""
    out = Slice()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                latency, ttfb = await one_request(session, target, stream)
            except BadResponse as exc:
                out.errors[str(exc)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                out.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.01)  # a dead server must not turn this into a busy loop
            else:
                out.latencies_ms.append(latency)
                if ttfb is not None:
                    out.ttfb_ms.append(ttfb)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.elapsed_s = time.perf_counter() - start  # includes the requests in flight at the deadline
    return out


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def new_session() -> aiohttp.ClientSession:
    """A keep-alive session with no connection cap, so the worker count alone sets the concurrency."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        auto_decompress=False,
    )
