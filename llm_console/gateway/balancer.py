"""Live per-deployment state and the routing strategies that read it.

Per deployment (per process): requests in flight, a moving average of time to first byte, and a circuit
breaker. The breaker opens after `failure_threshold` consecutive failures (or a failed active health check),
stays open `cooldown_s`, then lets exactly one request through (half-open); that probe closing or reopening it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from llm_console.gateway.routing import Route, Target

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
KV_FULL = 0.95  # a KV cache this full preempts or queues new sequences: the engine-aware strategy avoids it
EWMA_ALPHA = 0.2


@dataclass(slots=True)
class DeploymentState:
    inflight: int = 0
    ewma_ttfb_ms: float | None = None
    failures: int = 0
    circuit: str = CLOSED
    open_until: float = 0.0
    probing: bool = False
    healthy: bool | None = None  # None until an active check ran
    last_error: str | None = None
    last_check_at: float | None = None


@dataclass(frozen=True, slots=True)
class EngineSample:
    """What a serving engine reported (vLLM `/metrics`): queue, batch, KV-cache use (0..1), when (monotonic)."""

    waiting: float
    running: float
    kv_cache_usage: float
    at: float
    inflight_at: int = 0  # this gateway's requests in flight to the deployment when the sample arrived


class EngineSignals:
    """The engine-aware strategy's input. The fleet collectors call `update`; stale samples are ignored."""

    def __init__(self, stale_after_s: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._samples: dict[int, EngineSample] = {}

    def update(self, deployment_id: int, sample: EngineSample) -> None:
        self._samples[deployment_id] = sample

    def fresh(self, deployment_id: int) -> EngineSample | None:
        sample = self._samples.get(deployment_id)
        if sample is None or self._clock() - sample.at > self.stale_after_s:
            return None
        return sample

    def frozen_copy(self, now: float) -> EngineSignals:
        """The samples held now, judged at `now` forever (for previews; later updates do not reach it)."""
        copy = EngineSignals(self.stale_after_s, clock=lambda: now)
        copy._samples = dict(self._samples)
        return copy


class NoCapacity(Exception):
    """No deployment of the route can take the request now; `reason` is `circuit_open` or `busy`."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class Balancer:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_s: float,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        signals: EngineSignals | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.rng = rng or random.Random()
        self.clock = clock
        self.signals = signals or EngineSignals(clock=clock)
        self.states: dict[int, DeploymentState] = {}
        self.on_change: Callable[[Target, DeploymentState], None] | None = None
        self.on_inflight: Callable[[Target, int], None] | None = None

    def snapshot(self, rng: random.Random) -> Balancer:
        """A detached copy for what-if questions (the console's routing preview): same thresholds, copies of
        every deployment's state and engine sample, the clock frozen at now, no callbacks. Nothing done to
        the copy reaches this balancer."""
        now = self.clock()
        copy = Balancer(
            failure_threshold=self.failure_threshold,
            cooldown_s=self.cooldown_s,
            rng=rng,
            clock=lambda: now,
            signals=self.signals.frozen_copy(now),
        )
        copy.states = {dep_id: replace(st) for dep_id, st in list(self.states.items())}
        return copy

    def state(self, deployment_id: int) -> DeploymentState:
        st = self.states.get(deployment_id)
        if st is None:
            st = self.states[deployment_id] = DeploymentState()
        return st

    # -- choosing ---------------------------------------------------------------------------------------

    def _usable(self, target: Target, now: float) -> str | None:
        """None when `target` may take a request now, else why not (`circuit_open` / `busy`)."""
        st = self.state(target.deployment_id)
        if st.circuit != CLOSED:
            if st.circuit == OPEN and now < st.open_until:
                return "circuit_open"
            if st.probing:
                return "circuit_open"
        if target.max_concurrency is not None and st.inflight >= target.max_concurrency:
            return "busy"
        return None

    def order(self, route: Route, exclude: set[int] | frozenset[int] = frozenset()) -> list[Target]:
        """The route's deployments that can take a request now, best first; raises NoCapacity when none can."""
        now = self.clock()
        usable: list[Target] = []
        reasons: set[str] = set()
        for t in route.targets:
            if t.deployment_id in exclude:
                continue
            why = self._usable(t, now)
            if why is None:
                usable.append(t)
            else:
                reasons.add(why)
        if not usable:
            if not reasons:  # everything was excluded: the caller has tried them all
                return []
            reason = "busy" if "busy" in reasons else "circuit_open"
            raise NoCapacity(reason, self._retry_after(route, now) if reason == "circuit_open" else 1.0)
        if len(usable) > 1:
            usable = self._rank(route.strategy, usable, route.policy.engine_fallback)
        return usable

    def _retry_after(self, route: Route, now: float) -> float:
        waits = [max(0.0, self.state(t.deployment_id).open_until - now) for t in route.targets]
        return max(1.0, math.ceil(min(waits))) if waits else 1.0

    def _weighted(self, targets: list[Target]) -> list[Target]:
        """A weighted random permutation (Efraimidis-Spirakis): first place is drawn by weight, and so on."""
        rnd = self.rng.random
        return sorted(targets, key=lambda t: rnd() ** (1.0 / max(t.weight, 1)), reverse=True)

    def _rank(self, strategy: str, targets: list[Target], engine_fallback: str = "least_busy") -> list[Target]:
        shuffled = self._weighted(targets)  # random tie-break that still respects weights
        if strategy == "engine_aware":
            ranked = self._engine_rank(shuffled)
            if ranked is not None:
                return ranked
            # No fresh sample at all: the alias's configured fallback strategy decides.
            strategy = engine_fallback if engine_fallback != "engine_aware" else "least_busy"
        if strategy == "least_busy":
            return sorted(shuffled, key=self._load)
        if strategy == "lowest_latency":
            # Unmeasured deployments first, so every one gets measured.
            return sorted(shuffled, key=lambda t: self.state(t.deployment_id).ewma_ttfb_ms or 0.0)
        if strategy == "lowest_cost":
            return sorted(shuffled, key=lambda t: t.unit_price)
        return shuffled

    def _load(self, t: Target) -> float:
        inflight = self.state(t.deployment_id).inflight
        return inflight / t.max_concurrency if t.max_concurrency else float(inflight)

    def _engine_rank(self, targets: list[Target]) -> list[Target] | None:
        """Engines with fresh samples first: a full KV cache last among them, then the shortest queue, then
        KV-cache headroom (in 5 % steps), then our own in-flight share, then the running batch. Deployments
        whose sample is stale follow, least busy first. None when no deployment has a fresh sample.

        The queue counts what this gateway sent since the sample on top of what the engine reported, so the
        engine with the shortest queue is not flooded until the next sample says so."""
        samples = {t.deployment_id: self.signals.fresh(t.deployment_id) for t in targets}
        if not any(samples.values()):
            return None

        def key(t: Target) -> tuple[int, int, float, float, float, float]:
            s = samples[t.deployment_id]
            if s is None:
                return (1, 0, 0.0, 0.0, self._load(t), 0.0)
            inflight = self.state(t.deployment_id).inflight
            full = 1 if s.kv_cache_usage >= KV_FULL else 0
            load = inflight / t.max_concurrency if t.max_concurrency else float(inflight)  # as _load, one lookup
            queued = s.waiting + max(0, inflight - s.inflight_at)
            return (0, full, queued, round(s.kv_cache_usage * 20) / 20, load, s.running)

        return sorted(targets, key=key)

    # -- bookkeeping ------------------------------------------------------------------------------------

    def usable(self, target: Target) -> bool:
        """Whether `target` may take a request now (re-checked after a retry's pause)."""
        return self._usable(target, self.clock()) is None

    def acquire(self, target: Target) -> bool:
        """Count a request in flight; True when it is the half-open probe (pass that back to `release`)."""
        st = self.state(target.deployment_id)
        st.inflight += 1
        if self.on_inflight is not None:
            self.on_inflight(target, st.inflight)
        if st.circuit != CLOSED and not st.probing and self.clock() >= st.open_until:
            st.circuit, st.probing = HALF_OPEN, True  # the cool-down is over: this request is the probe
            self._changed(target, st)
            return True
        return False

    def release(
        self,
        target: Target,
        *,
        ok: bool | None,
        ttfb_ms: float | None = None,
        error: str = "",
        probe: bool = False,
    ) -> None:
        """`ok=None`: the deployment answered but the request itself was bad (a 4xx): no verdict.
        Only the request that `acquire` made the probe (`probe=True`) decides a half-open circuit."""
        st = self.state(target.deployment_id)
        st.inflight = max(0, st.inflight - 1)
        if self.on_inflight is not None:
            self.on_inflight(target, st.inflight)
        if ttfb_ms is not None:
            st.ewma_ttfb_ms = (
                ttfb_ms if st.ewma_ttfb_ms is None else st.ewma_ttfb_ms + EWMA_ALPHA * (ttfb_ms - st.ewma_ttfb_ms)
            )
        if probe:
            st.probing = False
        if ok is None:
            if probe:
                self._close(target, st)
            return
        if ok:
            if st.circuit != CLOSED and (probe or not st.probing):
                self._close(target, st)
            else:
                st.failures = 0
            return
        st.failures += 1
        st.last_error = error or "error"
        if probe or (st.circuit == CLOSED and st.failures >= self.failure_threshold):
            self._open(target, st)

    def health_result(self, target: Target, ok: bool, error: str = "") -> None:
        """An active health check: a failure opens the circuit, a success closes it (recovery)."""
        st = self.state(target.deployment_id)
        st.healthy, st.last_check_at = ok, self.clock()
        if ok:
            if st.circuit != CLOSED and not st.probing:
                self._close(target, st)
        else:
            st.last_error = error or "health check failed"
            if st.circuit == CLOSED:
                self._open(target, st)

    def _open(self, target: Target, st: DeploymentState) -> None:
        st.circuit, st.open_until = OPEN, self.clock() + self.cooldown_s
        self._changed(target, st)

    def _close(self, target: Target, st: DeploymentState) -> None:
        st.circuit, st.failures, st.open_until, st.last_error = CLOSED, 0, 0.0, None
        self._changed(target, st)

    def _changed(self, target: Target, st: DeploymentState) -> None:
        if self.on_change is not None:
            self.on_change(target, st)
