"""Test a deployment: GET its provider's model list, time it, judge it, and record the result.

A result is `available` when the deployment's model is listed, `loading` when the server answers 503 (or
says it is loading) or does not list the model yet, and `error` otherwise. Each probe writes the
deployment's `DeploymentHealth` row and, when the list has an entry for the model, `Deployment.discovered`.
The gateway's own health loop judges its checks with the same `assess`, so both agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import Deployment, DeploymentHealth, Provider, utcnow
from llm_console.gateway.providers import PROVIDERS
from llm_console.gateway.routing import Target
from llm_console.gateway.ssrf import AllowList, SSRFError, check_ip, check_literal_host, check_url
from llm_console.services.deployments import ConfigError, allowlist

MAX_BODY = 4 * 1024 * 1024
MAX_MODELS = 500
MAX_DETAIL = 200
DISCOVERED_SKIP = frozenset({"id", "object", "permission"})


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: str  # available|loading|error
    latency_ms: float | None
    models: list[str]
    error: str | None


@dataclass(frozen=True, slots=True)
class Assessment:
    """A judged answer, plus the model list's entry for the deployment's model (for `discovered`)."""

    result: ProbeResult
    entry: dict[str, Any] | None = None


def failed(message: str, latency_ms: float | None = None) -> ProbeResult:
    return ProbeResult("error", latency_ms, [], message)


def _detail(body: bytes, secret: str | None) -> str:
    """The upstream's own error message, short, with the provider key cut out should it be echoed."""
    text = body[:4000].decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        doc = json.loads(text)
        err = doc.get("error", doc.get("detail", doc.get("message"))) if isinstance(doc, dict) else None
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str):
            text = err
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def _entries(body: bytes) -> list[dict[str, Any]] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    data = doc.get("data", doc.get("models")) if isinstance(doc, dict) else doc
    if not isinstance(data, list):
        return None
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]


def assess(
    kind: str, model: str, status: int, body: bytes, *, latency_ms: float | None, secret: str | None = None
) -> Assessment:
    """Judge one model-list answer for a deployment of `model` on a provider of `kind`."""
    http = f"HTTP {status}"
    if 200 <= status < 300:
        entries = _entries(body)
        if entries is None:
            return Assessment(failed(f"{http}, but the answer is not a model list (is this the API's base URL?)"))
        models = [str(e["id"])[:300] for e in entries[:MAX_MODELS]]
        entry = next((e for e in entries if e["id"] == model), None)
        if entry is not None or kind == "azure":  # Azure lists base models, never deployment names
            return Assessment(ProbeResult("available", latency_ms, models, None), entry)
        listed = ", ".join(models[:8]) + (f" (+{len(models) - 8} more)" if len(models) > 8 else "")
        why = f"the server lists: {listed}" if models else "the server lists no models yet"
        return Assessment(ProbeResult("loading", latency_ms, models, f"model {model!r} is not listed (yet); {why}"))
    detail = _detail(body, secret) if status not in (401, 403) else ""
    suffix = f" ({detail})" if detail else ""
    if status == 503 or (status >= 500 and "loading" in detail.lower()):
        return Assessment(
            ProbeResult("loading", latency_ms, [], f"{http}: the server is starting or loading the model{suffix}")
        )
    if status in (401, 403):
        message = f"{http}: the server refused the API key; check the provider's key"
    elif status == 404:
        message = f"{http}: no model list at this address; check the base URL (OpenAI-style servers end in /v1)"
    elif 300 <= status < 400:
        message = f"{http}: the server redirects, and redirects are not followed; use the final address"
    else:
        message = f"{http}{suffix}"
    return Assessment(ProbeResult("error", latency_ms, [], message))


def _discovered(entry: dict[str, Any]) -> dict[str, Any]:
    """What a model entry says beyond its id (vLLM: max_model_len, owned_by, root, ...), size-bounded."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in DISCOVERED_SKIP or not isinstance(key, str):
            continue
        if isinstance(value, str | int | float | bool) or value is None or len(json.dumps(value)) <= 1000:
            out[key[:100]] = value[:500] if isinstance(value, str) else value
    return out


def record_results(engine: Engine, results: Iterable[tuple[int, ProbeResult]]) -> None:
    """Upsert the health row of each deployment (deleted ones are skipped); the last error is kept."""
    _write(engine, list(results), {})


def record_result(engine: Engine, deployment_id: int, result: ProbeResult, entry: dict[str, Any] | None) -> None:
    """One probe's health row, and the model's entry as the deployment's `discovered` metadata."""
    _write(engine, [(deployment_id, result)], {deployment_id: _discovered(entry)} if entry is not None else {})


def _write(engine: Engine, results: list[tuple[int, ProbeResult]], discovered: dict[int, dict[str, Any]]) -> None:
    for attempt in range(2):  # two writers (two workers, say) may insert the same new row at once: retry once
        try:
            _upsert(engine, results, discovered)
            return
        except IntegrityError:
            if attempt:
                raise


def _upsert(engine: Engine, results: list[tuple[int, ProbeResult]], discovered: dict[int, dict[str, Any]]) -> None:
    now = utcnow()
    with session(engine) as s:
        ids = [dep_id for dep_id, _ in results]
        deps = {d.id: d for d in s.exec(select(Deployment).where(col(Deployment.id).in_(ids)))}
        for dep_id, result in results:
            if dep_id not in deps:
                continue
            row = s.get(DeploymentHealth, dep_id) or DeploymentHealth(deployment_id=dep_id)
            row.status, row.checked_at, row.latency_ms = result.status, now, result.latency_ms
            row.models = list(result.models)
            if result.error and result.status != "available":
                row.last_error, row.last_error_at = result.error[:2000], now
            s.add(row)
            if dep_id in discovered:
                deps[dep_id].discovered = discovered[dep_id]
                s.add(deps[dep_id])
        s.commit()


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the SSRF guard passes, resolved once and used as resolved (no rebinding)."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        check_literal_host(host, self._allow)
        if self._allow.allows_host(host):
            return [host]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host!r}: {exc}") from None
        kept: list[str] = []
        refusal: SSRFError | None = None
        for info in infos:
            address = str(info[4][0]).split("%", 1)[0]
            try:
                check_ip(ipaddress.ip_address(address), self._allow, host=host)
            except (SSRFError, ValueError) as exc:
                refusal = refusal or SSRFError(str(exc))
                continue
            kept.append(address)
        if not kept:
            raise refusal or httpcore.ConnectError(f"no address for host {host!r}")
        return kept

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: httpcore.ConnectError | None = None
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host!r}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("upstreams are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's exceptions as httpx's, as httpx's own transport does."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc)) from exc
    except httpcore.ConnectError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise httpx.NetworkError(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._inner:
                yield part

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over `GuardedBackend`: no proxies from the environment, no redirects followed."""

    def __init__(self, allow: AllowList) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(allow), max_connections=4
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = httpcore.URL(
            scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port, target=request.url.raw_path
        )
        req = httpcore.Request(
            request.method, url, headers=request.headers.raw, content=request.stream, extensions=request.extensions
        )
        with _mapped():
            resp = await self._pool.handle_async_request(req)
        return httpx.Response(resp.status, headers=resp.headers, stream=_Body(resp.stream), extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _target(engine: Engine, box: SecretBox, deployment_id: int) -> Target:
    with session(engine) as s:
        dep = s.get(Deployment, deployment_id)
        if dep is None or dep.id is None:
            raise ConfigError(f"no deployment with id {deployment_id} (it may have been deleted)")
        prov = s.get(Provider, dep.provider_id)
        assert prov is not None
    key = box.decrypt(prov.api_key_encrypted) if prov.api_key_encrypted else None
    return Target(
        deployment_id=dep.id,
        deployment=dep.name,
        model=dep.model,
        api_base=prov.api_base,
        kind=prov.kind,
        api_key=key,
        price=None,
        options={**(prov.settings or {}), **(dep.settings or {})},
    )


async def _fetch(client: httpx.AsyncClient, target: Target, timeout_s: float) -> Assessment:
    call = PROVIDERS[target.kind].health(target)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s), client.stream(call.method, call.url, headers=call.headers) as resp:
            body = b""
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    return Assessment(failed(f"the model list is larger than {MAX_BODY // 1024 // 1024} MB"))
            status = resp.status_code
    except TimeoutError:
        return Assessment(failed(f"no answer within {timeout_s:g} s"))
    except SSRFError as exc:
        return Assessment(failed(f"refused by the upstream guard: {exc}"))
    except httpx.TimeoutException:
        return Assessment(failed(f"no answer within {timeout_s:g} s"))
    except httpx.HTTPError as exc:
        reason = str(exc).replace(target.api_key, "***") if target.api_key else str(exc)
        return Assessment(failed(f"cannot reach {target.api_base}: {reason or type(exc).__name__}"))
    latency = round((time.perf_counter() - started) * 1000, 1)
    return assess(target.kind, target.model, status, body, latency_ms=latency, secret=target.api_key)


async def probe_deployment(
    engine: Engine,
    box: SecretBox,
    deployment_id: int,
    *,
    timeout_s: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    extra_allowlist: Iterable[str] = (),
) -> ProbeResult:
    """Probe one deployment now and record the result (a missing deployment raises ConfigError)."""
    try:
        target = await asyncio.to_thread(_target, engine, box, deployment_id)
    except ConfigError:
        raise
    except ValueError as exc:  # the stored key cannot be decrypted with this secret key
        result = failed(f"{exc}; enter the provider's API key again")
        await asyncio.to_thread(record_result, engine, deployment_id, result, None)
        return result
    allow = await asyncio.to_thread(allowlist, engine, extra_allowlist)
    try:
        await check_url(target.api_base, allow)
    except SSRFError as exc:
        checked = Assessment(failed(f"refused by the upstream guard: {exc}"))
    else:
        async with httpx.AsyncClient(
            transport=transport or GuardedTransport(allow), follow_redirects=False, trust_env=False, timeout=timeout_s
        ) as client:
            checked = await _fetch(client, target, timeout_s)
    await asyncio.to_thread(record_result, engine, deployment_id, checked.result, checked.entry)
    return checked.result


def _all_ids(engine: Engine) -> list[int]:
    with session(engine) as s:
        return [i for i in s.exec(select(Deployment.id)) if i is not None]


async def probe_all(
    engine: Engine,
    box: SecretBox,
    *,
    timeout_s: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    extra_allowlist: Iterable[str] = (),
    concurrency: int = 8,
) -> dict[int, ProbeResult]:
    """Probe every deployment (enabled or not), `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(dep_id: int) -> tuple[int, ProbeResult]:
        async with gate:
            try:
                return dep_id, await probe_deployment(
                    engine, box, dep_id, timeout_s=timeout_s, transport=transport, extra_allowlist=extra_allowlist
                )
            except ConfigError as exc:  # deleted meanwhile
                return dep_id, failed(str(exc))

    ids = await asyncio.to_thread(_all_ids, engine)
    return dict(await asyncio.gather(*(one(i) for i in ids)))
