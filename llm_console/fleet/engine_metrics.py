"""Read a vLLM engine's Prometheus `/metrics` text into one sample, whatever vLLM version wrote it.

vLLM renamed several metrics between its V0 and V1 engines; each figure here lists the names it is known
by, newest first, and takes the first one present:

| figure | names |
|---|---|
| running / waiting requests | `vllm:num_requests_running`, `vllm:num_requests_waiting` |
| KV-cache use (0..1) | `vllm:kv_cache_usage_perc` (V1), `vllm:gpu_cache_usage_perc` (V0) |
| prefix-cache hits (counter) | `vllm:prefix_cache_hits` (V1), `vllm:gpu_prefix_cache_hits` (early V1) |
| prefix-cache queries (counter) | `vllm:prefix_cache_queries` (V1), `vllm:gpu_prefix_cache_queries` (early V1) |
| prefix-cache hit rate (gauge) | `vllm:gpu_prefix_cache_hit_rate` (V0, used when no counters) |
| prompt / generation tokens (counters) | `vllm:prompt_tokens`, `vllm:generation_tokens` |
| time to first token (histogram) | `vllm:time_to_first_token_seconds` |
| inter-token latency (histogram) | `vllm:inter_token_latency_seconds` (V1), `vllm:time_per_output_token_seconds` (V0) |
| request latency (histogram) | `vllm:e2e_request_latency_seconds` |
| tokens per engine step, the batch size (histogram) | `vllm:iteration_tokens_total` |
| preemptions (counter) | `vllm:num_preemptions` |

Series with several label sets (one per model or per engine of a data-parallel server) are summed, except
KV-cache use, which is averaged over engines. The text is parsed by prometheus_client's own parser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

MAX_TEXT = 8 * 1024 * 1024

RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREFIX_HITS = ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits")
PREFIX_QUERIES = ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries")
PREFIX_HIT_RATE = ("vllm:gpu_prefix_cache_hit_rate",)
PROMPT_TOKENS = ("vllm:prompt_tokens",)
GENERATION_TOKENS = ("vllm:generation_tokens",)
TTFT = ("vllm:time_to_first_token_seconds",)
ITL = ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
E2E = ("vllm:e2e_request_latency_seconds",)
BATCH_TOKENS = ("vllm:iteration_tokens_total",)
PREEMPTIONS = ("vllm:num_preemptions",)


class MetricsError(ValueError):
    """The text is not Prometheus exposition, or holds nothing from a vLLM engine."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram summed over its label sets: (upper bound, count) pairs, sum, count."""

    buckets: tuple[tuple[float, float], ...]
    total: float
    count: float

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket holding the q-th observation (Prometheus's own method)."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound  # past the last finite bound: the best that can be said
                span = cumulative - lower_count
                share = (rank - lower_count) / span if span > 0 else 1.0
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None

    def minus(self, earlier: Histogram | None) -> Histogram:
        """What was observed since `earlier` (a counter reset gives back this one whole)."""
        if earlier is None or earlier.count > self.count or len(earlier.buckets) != len(self.buckets):
            return self
        before = dict(earlier.buckets)
        return Histogram(
            tuple((b, c - before.get(b, 0.0)) for b, c in self.buckets),
            self.total - earlier.total,
            self.count - earlier.count,
        )


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One scrape of one engine; None where the engine did not report the figure."""

    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    prefix_cache_hits: float | None = None  # counters since the engine started
    prefix_cache_queries: float | None = None
    prefix_cache_hit_rate: float | None = None  # V0's own gauge, when there are no counters
    prompt_tokens: float | None = None  # counters since the engine started
    generation_tokens: float | None = None
    preemptions: float | None = None
    ttft: Histogram | None = None
    itl: Histogram | None = None
    e2e: Histogram | None = None
    batch_tokens: Histogram | None = None
    models: tuple[str, ...] = ()
    names: frozenset[str] = field(default_factory=frozenset)  # every metric family seen, for diagnosis


@dataclass(frozen=True, slots=True)
class EngineRates:
    """What happened between two samples of the same engine, per second."""

    seconds: float
    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    prefix_cache_hit_rate: float | None  # hits / queries over the interval
    ttft: Histogram | None
    itl: Histogram | None


def _series(families: dict[str, list[Sample]], names: Iterable[str]) -> list[Sample] | None:
    for name in names:
        if name in families:
            return families[name]
    return None


def _total(samples: list[Sample] | None, suffix: str = "") -> float | None:
    if samples is None:
        return None
    values = [s.value for s in samples if s.name.endswith(suffix) and math.isfinite(s.value)]
    return sum(values) if values else None


def _histogram(samples: list[Sample] | None) -> Histogram | None:
    if samples is None:
        return None
    buckets: dict[float, float] = {}
    for s in samples:
        if s.name.endswith("_bucket") and "le" in s.labels:
            bound = float(s.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + s.value
    if not buckets:
        return None
    total = _total(samples, "_sum") or 0.0
    count = _total(samples, "_count")
    ordered = tuple(sorted(buckets.items()))
    return Histogram(ordered, total, count if count is not None else ordered[-1][1])


def parse_engine_metrics(text: str) -> EngineSample:
    """One sample from a `/metrics` body; a MetricsError when it is not exposition text or has no vLLM series."""
    if len(text) > MAX_TEXT:
        raise MetricsError(f"the metrics text is larger than {MAX_TEXT // (1024 * 1024)} MiB")
    families: dict[str, list[Sample]] = {}
    try:
        for family in text_string_to_metric_families(text):
            name = family.name
            if family.type == "counter" and name.endswith("_total"):
                name = name[: -len("_total")]  # older parsers keep the suffix on the family name
            families.setdefault(name, []).extend(family.samples)
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsError(f"not Prometheus exposition text: {str(exc)[:200]}") from None
    vllm = {n for n in families if n.startswith("vllm:")}
    if not vllm:
        raise MetricsError("no vllm: metrics in the text (is this a vLLM server?)")
    kv = _series(families, KV_CACHE)
    kv_values = [s.value for s in kv or () if math.isfinite(s.value)]
    models = sorted({s.labels["model_name"] for n in vllm for s in families[n] if "model_name" in s.labels})
    hit_rates = _series(families, PREFIX_HIT_RATE)
    hit_rate_sum = _total(hit_rates)
    return EngineSample(
        running=_total(_series(families, RUNNING)),
        waiting=_total(_series(families, WAITING)),
        kv_cache_usage=sum(kv_values) / len(kv_values) if kv_values else None,
        prefix_cache_hits=_total(_series(families, PREFIX_HITS)),
        prefix_cache_queries=_total(_series(families, PREFIX_QUERIES)),
        prefix_cache_hit_rate=hit_rate_sum / len(hit_rates) if hit_rates and hit_rate_sum is not None else None,
        prompt_tokens=_total(_series(families, PROMPT_TOKENS)),
        generation_tokens=_total(_series(families, GENERATION_TOKENS)),
        preemptions=_total(_series(families, PREEMPTIONS)),
        ttft=_histogram(_series(families, TTFT)),
        itl=_histogram(_series(families, ITL)),
        e2e=_histogram(_series(families, E2E)),
        batch_tokens=_histogram(_series(families, BATCH_TOKENS)),
        models=tuple(models),
        names=frozenset(vllm),
    )


def _per_second(now: float | None, before: float | None, seconds: float) -> float | None:
    if now is None or before is None or now < before:  # missing, or the engine restarted
        return None
    return (now - before) / seconds


def rates(earlier: EngineSample, later: EngineSample, seconds: float) -> EngineRates:
    """Throughput and hit rate between two scrapes `seconds` apart (None across a restart)."""
    if seconds <= 0:
        raise ValueError("samples must be taken in order, some time apart")
    hits = _per_second(later.prefix_cache_hits, earlier.prefix_cache_hits, seconds)
    queries = _per_second(later.prefix_cache_queries, earlier.prefix_cache_queries, seconds)
    if hits is not None and queries:
        hit_rate: float | None = hits / queries
    else:
        hit_rate = later.prefix_cache_hit_rate
    return EngineRates(
        seconds=seconds,
        prompt_tokens_per_s=_per_second(later.prompt_tokens, earlier.prompt_tokens, seconds),
        generation_tokens_per_s=_per_second(later.generation_tokens, earlier.generation_tokens, seconds),
        prefix_cache_hit_rate=hit_rate,
        ttft=later.ttft.minus(earlier.ttft) if later.ttft else None,
        itl=later.itl.minus(earlier.itl) if later.itl else None,
    )
