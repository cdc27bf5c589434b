"""Scraping each self-hosted deployment's Prometheus `/metrics` (vLLM, or anything that speaks its names).

Which deployments: every OpenAI-compatible one (provider kind `openai`), at `<api_base root>/metrics`,
unless its `metrics_url` setting says otherwise ("off", or a URL on the same host). Deployments that share
one server are scraped once. A server that answers without vLLM metrics (a hosted API, LiteLLM) is marked
"no engine metrics" and asked again only every `NO_METRICS_RETRY_S`, so hosted providers are not polled.

Requests go through the gateway's own upstream client, so the SSRF guard and its allow-list apply to
scrapes exactly as to calls, and no credential is ever sent: `/metrics` is read anonymously.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from llm_console.fleet.engine_metrics import EngineSample, MetricsError, parse_engine_metrics, rates
from llm_console.fleet.types import EngineReading
from llm_console.gateway.providers.base import Call
from llm_console.gateway.routing import Target
from llm_console.gateway.upstream import UpstreamClient, UpstreamFailure

BODY_LIMIT = 4 * 1024 * 1024
NO_METRICS_RETRY_S = 60.0
TIMEOUT_S = 3.0


def metrics_url(target: Target) -> str | None:
    """Where `target`'s engine metrics are, or None when it has none to scrape."""
    custom = str(target.options.get("metrics_url") or "").strip()
    if custom.lower() == "off":
        return None
    if custom:
        return custom if urlsplit(custom).hostname == target.host else None  # same host only (saved forms check it)
    if target.kind != "openai":
        return None
    base = target.api_base.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/metrics"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def reading(
    deployment_id: int, sample: EngineSample, earlier: tuple[float, EngineSample] | None, now: float
) -> EngineReading:
    """What the pages and the router keep of one scrape, with rates against the previous one when there is one."""
    prefix = sample.prefix_cache_hit_rate
    prompt_tps = generation_tps = None
    ttft = itl = batch = None
    if earlier is not None and now > earlier[0]:
        r = rates(earlier[1], sample, now - earlier[0])
        prompt_tps, generation_tps = r.prompt_tokens_per_s, r.generation_tokens_per_s
        prefix = r.prefix_cache_hit_rate if r.prefix_cache_hit_rate is not None else prefix
        ttft, itl = r.ttft, r.itl
        if sample.batch_tokens is not None:
            batch = sample.batch_tokens.minus(earlier[1].batch_tokens)
    if ttft is None or not ttft.count:
        ttft = sample.ttft  # since the engine started: better than nothing on the first scrape
    if itl is None or not itl.count:
        itl = sample.itl
    if batch is None or not batch.count:
        batch = sample.batch_tokens
    e2e = sample.e2e
    return EngineReading(
        deployment_id=deployment_id,
        ok=True,
        running=sample.running,
        waiting=sample.waiting,
        kv_cache_usage=sample.kv_cache_usage,
        prefix_hit_rate=prefix,
        prompt_tps=None if prompt_tps is None else round(prompt_tps, 3),
        generation_tps=None if generation_tps is None else round(generation_tps, 3),
        ttft_p50_ms=_ms(ttft.quantile(0.5)) if ttft else None,
        ttft_p95_ms=_ms(ttft.quantile(0.95)) if ttft else None,
        itl_p50_ms=_ms(itl.quantile(0.5)) if itl else None,
        itl_p95_ms=_ms(itl.quantile(0.95)) if itl else None,
        e2e_p50_ms=_ms(e2e.quantile(0.5)) if e2e else None,
        batch_tokens_mean=batch.mean if batch else None,
        preemptions=sample.preemptions,
        models=sample.models,
    )


@dataclass(slots=True)
class _Url:
    last: tuple[float, EngineSample] | None = None
    retry_at: float = 0.0
    error: str | None = None


class EngineScraper:
    """Scrapes every deployment's engine once per `scrape()` call; keeps the previous sample per URL for rates."""

    def __init__(self, upstream: UpstreamClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.clock = clock
        self._urls: dict[str, _Url] = {}

    async def _fetch(self, url: str, host: str) -> str:
        resp = await self.upstream.send(
            Call("GET", url, {"accept": "text/plain"}),
            host=host,
            body=None,
            connect_s=TIMEOUT_S,
            first_byte_s=TIMEOUT_S,
        )
        try:
            if resp.status != 200:
                raise MetricsError(f"no engine metrics at {url} (HTTP {resp.status})")
            body = await resp.read(BODY_LIMIT, TIMEOUT_S)
        finally:
            resp.close()
        return body.decode("utf-8", errors="replace")

    async def _scrape_url(self, url: str, host: str) -> tuple[EngineSample | None, str | None]:
        state = self._urls.setdefault(url, _Url())
        now = self.clock()
        if now < state.retry_at:
            return None, state.error
        try:
            sample = parse_engine_metrics(await self._fetch(url, host))
            if sample.running is None and sample.waiting is None and sample.kv_cache_usage is None:
                raise MetricsError(f"{url} answers, but with no vLLM engine metrics")
        except MetricsError as exc:
            state.error, state.retry_at, state.last = str(exc)[:300], now + NO_METRICS_RETRY_S, None
            return None, state.error
        except UpstreamFailure as exc:
            state.error, state.last = f"{url}: {exc.message}"[:300], None
            return None, state.error
        state.error, state.retry_at = None, 0.0
        return sample, None

    async def scrape(self, targets: Iterable[Target]) -> list[EngineReading]:
        by_url: dict[str, list[Target]] = {}
        for t in targets:
            url = metrics_url(t)
            if url is not None:
                by_url.setdefault(url, []).append(t)
        for gone in set(self._urls) - set(by_url):
            del self._urls[gone]
        urls = list(by_url)
        results = await asyncio.gather(*(self._scrape_url(u, by_url[u][0].host) for u in urls))
        now = self.clock()
        out: list[EngineReading] = []
        for url, (sample, error) in zip(urls, results, strict=True):
            state = self._urls[url]
            seen: set[int] = set()
            for t in by_url[url]:
                if t.deployment_id in seen:
                    continue
                seen.add(t.deployment_id)
                if sample is None:
                    out.append(EngineReading(deployment_id=t.deployment_id, ok=False, error=error))
                else:
                    out.append(reading(t.deployment_id, sample, state.last, now))
            if sample is not None:
                state.last = (now, sample)
        return out
