"""Closed-loop aiohttp load: N workers send back-to-back requests to one target for a fixed time.

Also the streaming probe: time to the first content chunk, and the gaps between the chunks that follow.
"""

from __future__ import annotations

import asyncio
import re
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
# a delta with at least one character of content: the role chunk (`"content":""`) does not count as a token
CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')


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


@dataclass
class StreamStats:
    """Streaming probe results: per-request time to first content, and the gaps between later body reads."""

    ttfb_ms: list[float] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def mean_gap_ms(self) -> float | None:
        return sum(self.gaps_ms) / len(self.gaps_ms) if self.gaps_ms else None

    @property
    def reads_per_request(self) -> float | None:
        return sum(self.reads) / len(self.reads) if self.reads else None


async def one_stream(session: aiohttp.ClientSession, target: Target) -> tuple[float, list[float]]:
    """Time to the first chunk holding a content token (ms) and the gaps between the reads after it (ms)."""
    t0 = time.perf_counter()
    first = last = 0.0
    gaps: list[float] = []
    window = b""
    async with session.post(target.url, data=target.body_stream, headers=target.headers) as resp:
        if resp.status != 200:
            await resp.read()
            raise BadResponse(f"HTTP {resp.status}")
        async for chunk in resp.content.iter_any():
            now = time.perf_counter()
            if first:
                gaps.append((now - last) * 1000)
                last = now
            elif CONTENT.search(window[-32:] + chunk):
                first = last = now
            window = (window + chunk)[-64:]
    if b"data: [DONE]" not in window:
        raise BadResponse("stream ended without [DONE]")
    if not first:
        raise BadResponse("stream without a content token")
    return (first - t0) * 1000, gaps


async def probe_streams(target: Target, concurrency: int, seconds: float) -> StreamStats:
    """`concurrency` workers stream back to back for `seconds`; each worker's first request (which pays for
    the TCP connect) is not recorded, and each makes at least one measured try, however slow the target."""
    out = StreamStats()
    deadline = time.perf_counter() + seconds
    async with new_session() as session:

        async def worker() -> None:
            warm, tries = True, 0
            while warm or time.perf_counter() < deadline or not tries:
                tries += 0 if warm else 1
                try:
                    ttfb, gaps = await one_stream(session, target)
                except BadResponse as exc:
                    out.errors[str(exc)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    out.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.01)
                else:
                    if not warm:
                        out.ttfb_ms.append(ttfb)
                        out.gaps_ms += gaps
                        out.reads.append(len(gaps) + 1)
                warm = False

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.elapsed_s = time.perf_counter() - start
    return out


async def drive_fresh(target: Target, stream: bool, concurrency: int, seconds: float) -> Slice:
    """`drive` with its own session: the fallback load when wrk is missing."""
    async with new_session() as session:
        return await drive(session, target, stream, concurrency, seconds)


async def check(target: Target) -> str | None:
    """One request of each kind; None when both are complete 200 answers, else what went wrong."""
    async with new_session() as session:
        for stream in (False, True):
            try:
                if stream:
                    await one_stream(session, target)
                else:
                    await one_request(session, target, stream=False)
            except BadResponse as exc:
                return f"{'streaming' if stream else 'non-streaming'} request: {exc}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"{'streaming' if stream else 'non-streaming'} request: {type(exc).__name__}: {exc}"
    return None
