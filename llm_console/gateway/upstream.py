"""The hot-path HTTP client: one aiohttp session per process, with separate connect, first-byte, idle and
total deadlines.

aiohttp rather than httpx here: in front of a fast upstream, httpx's pool costs more than everything else
the gateway does (see benchmarks/README.md). httpx stays the client everywhere off the hot path.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

from llm_console.gateway.providers.base import Call
from llm_console.gateway.ssrf import AllowList, GuardedResolver, SSRFError, check_literal_host

# Below the 5 s idle timeout of uvicorn (and so vLLM): reusing a connection the server is closing fails the call.
KEEPALIVE_S = 4.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `first_byte` runs from sending to the response head (streams: to the first body chunk);
    `idle` bounds each gap between body chunks; `total` bounds the whole call, retries included."""

    connect: float
    first_byte: float
    idle: float
    total: float

    def merged(self, overrides: object) -> Timeouts:
        """Apply a `{"connect_s": .., "first_byte_s": .., "idle_s": .., "total_s": ..}` mapping."""
        if not isinstance(overrides, dict) or not overrides:
            return self
        values = {}
        for name in ("connect", "first_byte", "idle", "total"):
            raw = overrides.get(f"{name}_s")
            current = getattr(self, name)
            values[name] = float(raw) if isinstance(raw, (int, float)) and raw > 0 else current
        return Timeouts(**values)


class UpstreamFailure(Exception):
    """A call that produced no usable response. `kind` is what the log row and metrics record."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # connect_error | timeout | disconnected | refused_address | too_large
        self.message = message


class UpstreamResponse:
    """A response whose head has arrived; the body is read with `read()` or `chunks()`."""

    __slots__ = ("_idle", "_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, first_byte: float) -> None:
        self._resp = resp
        self._idle = first_byte
        self.status: int = resp.status
        self.headers: CIMultiDictProxy[str] = resp.headers

    def _read_timeout(self, seconds: float) -> None:
        """Bound every wait for body bytes by `seconds`, through aiohttp's own socket read timer (rescheduled
        when data arrives), which costs far less than a timeout context around each read."""
        if seconds != self._idle:
            self._idle = seconds
            conn = self._resp.connection
            if conn is not None and conn.protocol is not None:
                conn.protocol.read_timeout = seconds
                conn.protocol.start_timeout()  # re-arm now: the pending timer still counts the old limit

    async def read(self, limit: int, idle: float) -> bytes:
        """The whole body, at most `limit` bytes, no gap longer than `idle`."""
        declared = self._resp.content_length
        if declared is not None and declared > limit:
            raise UpstreamFailure("too_large", f"The upstream response is larger than {limit} bytes.")
        self._read_timeout(idle)
        parts: list[bytes] = []
        size = 0
        content = self._resp.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise UpstreamFailure("too_large", f"The upstream response is larger than {limit} bytes.")
                parts.append(chunk)
        except TimeoutError:
            raise UpstreamFailure("timeout", "The upstream stopped sending the response.") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure("disconnected", f"The upstream connection broke: {type(exc).__name__}.") from None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def next_chunk(self, idle: float) -> bytes:
        """The next piece of the body as it arrived (b"" at the end); raises UpstreamFailure on a break."""
        self._read_timeout(idle)
        try:
            return await self._resp.content.readany()
        except TimeoutError:
            raise UpstreamFailure("timeout", "The upstream stream went idle.") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure("disconnected", f"The upstream stream broke: {type(exc).__name__}.") from None

    def close(self) -> None:
        """Drop the connection unless the body was read to the end (so an abandoned call is cancelled)."""
        self._resp.close()

    def release(self) -> None:
        """Give a fully read connection back to the pool."""
        self._resp.release()


class UpstreamClient:
    """One `aiohttp.ClientSession` for every upstream, created inside the running loop by `start()`."""

    def __init__(self, allow: Callable[[], AllowList]) -> None:
        self._allow = allow
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._checked: tuple[AllowList | None, set[str]] = (None, set())
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    def _check_host(self, host: str) -> None:
        """Literal IP hosts skip aiohttp's resolver, so they are checked here (once per host and allow-list)."""
        allow = self._allow()
        checked_for, ok = self._checked
        if checked_for is not allow:
            ok = set()
            self._checked = (allow, ok)
        if host not in ok:
            check_literal_host(host, allow)
            ok.add(host)

    async def start(self) -> None:
        self._resolver = GuardedResolver(self._allow)
        connector = aiohttp.TCPConnector(
            limit=0,  # per-deployment caps live in the router
            keepalive_timeout=KEEPALIVE_S,
            resolver=self._resolver,
            ttl_dns_cache=10,
            family=socket.AF_UNSPEC,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not awaited")
        return self._session

    async def send(
        self,
        call: Call,
        *,
        host: str,
        body: bytes | None,
        connect_s: float,
        first_byte_s: float,
    ) -> UpstreamResponse:
        """Send and wait for the response head; every failure becomes an `UpstreamFailure`."""
        try:
            self._check_host(host)
        except SSRFError as exc:
            raise UpstreamFailure("refused_address", str(exc)) from None
        timeout = self._timeouts.get((connect_s, first_byte_s))
        if timeout is None:
            if len(self._timeouts) > 256:
                self._timeouts.clear()
            # sock_read bounds the wait for the response head (the first byte); the body's reads get the
            # idle limit later (UpstreamResponse._read_timeout).
            timeout = aiohttp.ClientTimeout(
                total=None, connect=connect_s, sock_connect=connect_s, sock_read=first_byte_s
            )
            self._timeouts[(connect_s, first_byte_s)] = timeout
        try:
            resp = await self.session.request(
                call.method, call.url, data=body, headers=call.headers, timeout=timeout, allow_redirects=False
            )
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamFailure("connect_error", "Connecting to the upstream timed out.") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, SSRFError):
                raise UpstreamFailure("refused_address", str(exc.os_error)) from None
            raise UpstreamFailure("connect_error", "The upstream could not be reached.") from None
        except TimeoutError:  # aiohttp's SocketTimeoutError: no response head within first_byte_s
            raise UpstreamFailure("timeout", "The upstream did not answer in time.") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(
                "disconnected", f"The upstream closed the connection: {type(exc).__name__}."
            ) from None
        return UpstreamResponse(resp, first_byte_s)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()
