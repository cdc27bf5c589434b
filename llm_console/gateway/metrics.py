"""Prometheus metrics of the gateway, cheap enough to update on every request.

The hot path keeps the labelled children of each family in dicts keyed by the raw label tuple, so
observing a request is a few dict look-ups and child updates, never a `.labels()` call. Label values
come from alias, deployment and endpoint names and gateway-chosen words only (never keys or bodies),
and every label is capped (`other` once a label has seen too many distinct values), because an alias
can be client-chosen on error paths.

Multi-worker mode: when `PROMETHEUS_MULTIPROC_DIR` names a directory in the environment *before*
`prometheus_client` is first imported (prometheus_client picks its value class at import), each worker
writes its values to mmap files there and `render()` merges all workers' files with a
`MultiProcessCollector` in a fresh registry. Gauges then aggregate by `multiprocess_mode`: in-flight
requests are summed over live workers ("livesum"), circuit state and health take the highest value
any live worker reports ("livemax"). `llm-console gateway --workers N` (gateway/serve.py) gives every
start a fresh directory, so nothing from an earlier run is merged; a worker granian respawns keeps its
predecessor's last gauge values until the next start (granian offers no exit hook for
`prometheus_client.multiprocess.mark_process_dead`). `GatewayMetrics()` refuses to start if the variable
was set too late.
"""

from __future__ import annotations

import gzip
import hmac
import os
import threading
from dataclasses import dataclass
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from llm_console.db.records import LogRecord
from llm_console.gateway.errors import GatewayError

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
OTHER: Final = "other"
MAX_ALIASES: Final = 1000
MAX_DEPLOYMENTS: Final = 1000
MAX_ENDPOINTS: Final = 50
MAX_ERROR_TYPES: Final = 200
NAME_MAX_LEN: Final = 200
ERROR_TYPE_MAX_LEN: Final = 60
RAW_KEYS_MAX: Final = 10_000

# LLM calls span a cached 5 ms reply to a two-minute generation.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
STATUSES: Final = frozenset({"ok", "error", "incomplete"})
OUTCOMES: Final = frozenset({"ok", "error", "timeout", "connect_error", "rate_limited"})
CIRCUIT_STATES: Final = {"closed": 0, "open": 1, "half_open": 2}


K = TypeVar("K")
V = TypeVar("V")


class _LabelCap:
    """Admits up to `limit` distinct values of one label, truncated to `max_len`; later newcomers become `other`."""

    __slots__ = ("limit", "max_len", "seen")

    def __init__(self, limit: int, max_len: int) -> None:
        self.limit = limit
        self.max_len = max_len
        self.seen: set[str] = set()

    def __call__(self, raw: str) -> str:
        value = raw[: self.max_len]
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        return OTHER


class _PairSeries:
    """Children labelled by (alias, deployment), each made on first use: a pair that never streams or never spends
    (an unknown-model error, say) exposes no empty ttfb, token or cost series."""

    __slots__ = ("_cost", "_cost_family", "_tokens", "_tokens_family", "_ttfb", "_ttfb_family", "alias", "deployment")

    def __init__(self, metrics: GatewayMetrics, alias: str, deployment: str) -> None:
        self.alias = alias
        self.deployment = deployment
        self._ttfb_family = metrics.ttfb
        self._tokens_family = metrics.tokens
        self._cost_family = metrics.cost
        self._ttfb: Histogram | None = None
        self._tokens: dict[str, Counter] = {}
        self._cost: Counter | None = None

    def observe_ttfb(self, seconds: float) -> None:
        child = self._ttfb
        if child is None:
            child = self._ttfb = self._ttfb_family.labels(self.alias, self.deployment)
        child.observe(seconds)

    def add_tokens(self, kind: str, count: int) -> None:
        child = self._tokens.get(kind)
        if child is None:
            child = self._tokens[kind] = self._tokens_family.labels(self.alias, self.deployment, kind)
        child.inc(count)

    def add_cost(self, usd: float) -> None:
        child = self._cost
        if child is None:
            child = self._cost = self._cost_family.labels(self.alias, self.deployment)
        child.inc(usd)


@dataclass(slots=True)
class _RequestSeries:
    """Children for one (endpoint, alias, deployment, status), with the normalised labels for the error counter."""

    requests: Counter
    latency: Histogram
    pair: _PairSeries
    alias: str
    deployment: str
    ok: bool


class GatewayMetrics:
    """The gateway's metric families in their own registry (never the global one), plus the hot-path caches."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_aliases: int = MAX_ALIASES) -> None:
        self.multiprocess = bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))
        path = os.environ.get(MULTIPROC_ENV)
        if path and not self.multiprocess:
            raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported; set it before start-up")
        if self.multiprocess and not (path and os.path.isdir(path)):
            raise RuntimeError(f"{MULTIPROC_ENV} must name an existing directory in multi-worker mode")
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        pair = ["alias", "deployment"]
        self.requests = Counter(
            "llmc_gateway_requests_total",
            "Finished gateway requests by endpoint, alias, deployment and status (ok/error/incomplete).",
            ["endpoint", "alias", "deployment", "status"],
            registry=reg,
        )
        self.errors = Counter(
            "llmc_gateway_errors_total",
            "Requests that did not finish ok, by error type.",
            [*pair, "error_type"],
            registry=reg,
        )
        self.latency = Histogram(
            "llmc_gateway_request_latency_seconds",
            "Whole-request latency as the client saw it.",
            [*pair, "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.ttfb = Histogram(
            "llmc_gateway_time_to_first_byte_seconds",
            "Time to the first upstream byte (first token when streaming).",
            pair,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            "llmc_gateway_tokens_total", "Tokens by kind (prompt/completion/cached).", [*pair, "kind"], registry=reg
        )
        self.cost = Counter("llmc_gateway_cost_usd_total", "Estimated spend in US dollars.", pair, registry=reg)
        self.attempts = Counter(
            "llmc_gateway_upstream_attempts_total",
            "Upstream attempts by outcome (ok/error/timeout/connect_error/rate_limited), retries included.",
            [*pair, "outcome"],
            registry=reg,
        )
        self.inflight = Gauge(
            "llmc_gateway_inflight_requests",
            "Requests in flight per deployment.",
            ["deployment"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.circuit = Gauge(
            "llmc_gateway_circuit_state",
            "Circuit breaker state per deployment: 0 = closed, 1 = open, 2 = half_open.",
            ["deployment"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.healthy = Gauge(
            "llmc_gateway_deployment_healthy",
            "1 when the deployment passes its health checks, else 0.",
            ["deployment"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.limits_store = Gauge(
            "llmc_limits_store_up",
            "1 while the limit counters' shared store (Redis) answers, 0 while the failure policy applies "
            "(LLMC_LIMITS_REDIS_FAILURE); absent with in-process counters.",
            ["store"],
            multiprocess_mode="livemin",
            registry=reg,
        )
        self._alias = _LabelCap(max_aliases, NAME_MAX_LEN)
        self._deployment = _LabelCap(MAX_DEPLOYMENTS, NAME_MAX_LEN)
        self._endpoint = _LabelCap(MAX_ENDPOINTS, NAME_MAX_LEN)
        self._error_type = _LabelCap(MAX_ERROR_TYPES, ERROR_TYPE_MAX_LEN)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, str], _RequestSeries] = {}
        self._pairs: dict[tuple[str, str], _PairSeries] = {}
        self._errors: dict[tuple[str, str, str | None], Counter] = {}
        self._attempts: dict[tuple[str, str, str], Counter] = {}
        self._inflight: dict[str, Gauge] = {}
        self._circuit: dict[str, Gauge] = {}
        self._healthy: dict[str, Gauge] = {}

    def observe(self, rec: LogRecord, deployment: str) -> None:
        """Count one finished request; `deployment` is the deployment's name, "" when none was chosen."""
        key = (rec.endpoint, rec.alias, deployment, rec.status)
        series = self._requests.get(key)
        if series is None:
            series = self._request_series(key)
        series.requests.inc()
        series.latency.observe(max(rec.latency_ms, 0.0) / 1000.0)
        pair = series.pair
        if rec.ttfb_ms is not None:
            pair.observe_ttfb(max(rec.ttfb_ms, 0.0) / 1000.0)
        if rec.prompt_tokens > 0:
            pair.add_tokens("prompt", rec.prompt_tokens)
        if rec.completion_tokens > 0:
            pair.add_tokens("completion", rec.completion_tokens)
        if rec.cached_tokens > 0:
            pair.add_tokens("cached", rec.cached_tokens)
        if rec.cost_usd > 0:
            pair.add_cost(rec.cost_usd)
        if not series.ok:
            ekey = (series.alias, series.deployment, rec.error_type)
            counter = self._errors.get(ekey)
            if counter is None:
                counter = self._error_child(ekey)
            counter.inc()

    def observe_attempt(self, alias: str, deployment: str, outcome: str) -> None:
        """Count one upstream attempt (ok/error/timeout/connect_error/rate_limited; anything else counts as error)."""
        key = (alias, deployment, outcome)
        child = self._attempts.get(key)
        if child is None:
            with self._lock:
                labels = (self._alias(alias), self._deployment(deployment), outcome if outcome in OUTCOMES else "error")
                child = self.attempts.labels(*labels)
                self._remember(self._attempts, key, labels, child)
        child.inc()

    def set_inflight(self, deployment: str, value: int) -> None:
        self._gauge(self._inflight, self.inflight, deployment).set(value)

    def set_circuit(self, deployment: str, state: str) -> None:
        """Publish a breaker state: closed/open/half_open become 0/1/2."""
        try:
            code = CIRCUIT_STATES[state]
        except KeyError:
            raise ValueError(f"unknown circuit state {state!r}; expected one of {sorted(CIRCUIT_STATES)}") from None
        self._gauge(self._circuit, self.circuit, deployment).set(code)

    def set_healthy(self, deployment: str, healthy: bool) -> None:
        self._gauge(self._healthy, self.healthy, deployment).set(1 if healthy else 0)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for an `Accept` header (text 0.0.4 unless OpenMetrics is asked for) and its content type."""
        encoder, content_type = choose_encoder(accept)
        if self.multiprocess:
            source = CollectorRegistry()
            MultiProcessCollector(source)
            return encoder(source), content_type
        return encoder(self.registry), content_type

    def _request_series(self, key: tuple[str, str, str, str]) -> _RequestSeries:
        endpoint, alias, deployment, status = key
        with self._lock:
            labels = (
                self._endpoint(endpoint),
                self._alias(alias),
                self._deployment(deployment),
                status if status in STATUSES else "error",
            )
            series = self._requests.get(labels)
            if series is None:
                _, a, d, s = labels
                series = _RequestSeries(
                    requests=self.requests.labels(*labels),
                    latency=self.latency.labels(a, d, s),
                    pair=self._pair(a, d),
                    alias=a,
                    deployment=d,
                    ok=s == "ok",
                )
            self._remember(self._requests, key, labels, series)
            return series

    def _pair(self, alias: str, deployment: str) -> _PairSeries:
        pair = self._pairs.get((alias, deployment))
        if pair is None:
            pair = _PairSeries(self, alias, deployment)
            self._pairs[(alias, deployment)] = pair
        return pair

    def _error_child(self, key: tuple[str, str, str | None]) -> Counter:
        alias, deployment, error_type = key
        with self._lock:
            label = self._error_type(error_type) if error_type else "unknown"
            child = self.errors.labels(alias, deployment, label)
            self._remember(self._errors, key, (alias, deployment, label), child)
            return child

    def _gauge(self, cache: dict[str, Gauge], family: Gauge, deployment: str) -> Gauge:
        child = cache.get(deployment)
        if child is None:
            with self._lock:
                label = self._deployment(deployment)
                child = family.labels(label)
                self._remember(cache, deployment, label, child)
        return child

    @staticmethod
    def _remember(cache: dict[K, V], raw: K, normalised: K, value: V) -> None:
        """Cache under the normalised key (bounded by the label caps) and, while there is room, the raw one: a flood
        of distinct raw values (client-chosen aliases) then takes the slow path instead of growing the cache."""
        cache[normalised] = value
        if raw != normalised and len(cache) < RAW_KEYS_MAX:
            cache[raw] = value


def _configured_token(request: Request) -> str | None:
    settings = request.app.state.llmc_runtime.settings
    token = getattr(settings, "metrics_token", None)
    if token is not None and hasattr(token, "get_secret_value"):  # a pydantic SecretStr must not disable the check
        token = token.get_secret_value()
    return token if isinstance(token, str) and token else None


def _authorized(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


async def metrics_endpoint(request: Request) -> Response:
    """Serve the metrics; with `metrics_token` configured, only to `Authorization: Bearer <token>`."""
    token = _configured_token(request)
    if token is not None and not _authorized(request, token):
        return GatewayError(
            401,
            "Invalid or missing metrics token.",
            type="authentication_error",
            code="invalid_metrics_token",
            headers={"WWW-Authenticate": "Bearer"},
        ).response()
    metrics: GatewayMetrics = request.app.state.llmc_runtime.metrics
    # Rendering walks every series (and reads every worker's file in multi-worker mode): keep it off the loop.
    body, content_type = await run_in_threadpool(metrics.render, request.headers.get("accept", ""))
    headers = {"Content-Type": content_type, "Cache-Control": "no-store"}
    if gzip_accepted(request.headers.get("accept-encoding", "")):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers)
