"""The balancer's strategies and circuit breaker, driven by a fake clock and a seeded RNG (no sleeping)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from llm_console.gateway.balancer import (
    CLOSED,
    EWMA_ALPHA,
    HALF_OPEN,
    OPEN,
    Balancer,
    DeploymentState,
    EngineSample,
    EngineSignals,
    NoCapacity,
)
from llm_console.gateway.pricing import Price
from llm_console.gateway.routing import STRATEGIES, Route, Target

THRESHOLD = 3
COOLDOWN_S = 30.0


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def target(dep_id: int, *, weight: int = 1, max_concurrency: int | None = None, price: Price | None = None) -> Target:
    return Target(
        deployment_id=dep_id,
        deployment=f"dep-{dep_id}",
        model=f"model-{dep_id}",
        api_base=f"http://upstream-{dep_id}.test/v1",
        kind="openai",
        api_key=None,
        price=price,
        weight=weight,
        max_concurrency=max_concurrency,
        host=f"upstream-{dep_id}.test",
    )


def route(*targets: Target, strategy: str = "weighted") -> Route:
    return Route("alias", tuple(targets), strategy)


def ids(targets: list[Target]) -> list[int]:
    return [t.deployment_id for t in targets]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def signals(clock: FakeClock) -> EngineSignals:
    return EngineSignals(stale_after_s=15.0, clock=clock)


@pytest.fixture
def bal(clock: FakeClock, signals: EngineSignals) -> Balancer:
    return Balancer(
        failure_threshold=THRESHOLD, cooldown_s=COOLDOWN_S, rng=random.Random(1234), clock=clock, signals=signals
    )


def first_pick_shares(bal: Balancer, r: Route, draws: int = 20_000) -> dict[int, float]:
    counts = Counter(bal.order(r)[0].deployment_id for _ in range(draws))
    return {dep_id: n / draws for dep_id, n in counts.items()}


def fail(bal: Balancer, t: Target, times: int = 1) -> None:
    for _ in range(times):
        bal.acquire(t)
        bal.release(t, ok=False, error="http_500")


def open_circuit(bal: Balancer, t: Target) -> None:
    fail(bal, t, THRESHOLD)
    assert bal.state(t.deployment_id).circuit == OPEN


# -- weighted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("weights", "expected"), [((3, 1), 0.75), ((1, 1), 0.5), ((1, 4), 0.2)])
def test_weighted_first_pick_follows_the_weights(bal: Balancer, weights: tuple[int, int], expected: float) -> None:
    a, b = target(1, weight=weights[0]), target(2, weight=weights[1])
    shares = first_pick_shares(bal, route(a, b))
    # 20,000 draws: one standard deviation is at most 0.0036, so 0.015 is a > 4-sigma band.
    assert shares[1] == pytest.approx(expected, abs=0.015)


def test_weighted_choice_is_reproducible_with_a_seed(clock: FakeClock) -> None:
    r = route(*(target(i, weight=i) for i in range(1, 6)))

    def picks(seed: int) -> list[list[int]]:
        b = Balancer(failure_threshold=THRESHOLD, cooldown_s=COOLDOWN_S, rng=random.Random(seed), clock=clock)
        return [ids(b.order(r)) for _ in range(50)]

    assert picks(7) == picks(7)
    assert picks(7) != picks(8)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_order_is_a_permutation_of_the_usable_targets(bal: Balancer, strategy: str) -> None:
    targets = [target(i, weight=w) for i, w in zip(range(1, 6), (5, 1, 3, 1, 2), strict=True)]
    r = route(*targets, strategy=strategy)
    seen_first = set()
    for _ in range(200):
        order = ids(bal.order(r))
        assert sorted(order) == [1, 2, 3, 4, 5]
        seen_first.add(order[0])
    # Every target ties here (idle, unmeasured, unpriced, no engine samples): the weighted tie-break
    # still lets each one come first, so no strategy pins traffic to one deployment by list position.
    assert seen_first == {1, 2, 3, 4, 5}


def test_excluded_targets_are_left_out_and_excluding_all_gives_an_empty_list(bal: Balancer) -> None:
    r = route(target(1), target(2), target(3))
    for _ in range(50):
        assert sorted(ids(bal.order(r, exclude={2}))) == [1, 3]
    assert bal.order(r, exclude=frozenset({1, 2, 3})) == []


# -- least busy ----------------------------------------------------------------------------------------


def test_least_busy_prefers_the_target_with_fewer_requests_in_flight(bal: Balancer) -> None:
    a, b = target(1, weight=100), target(2)
    r = route(a, b, strategy="least_busy")
    bal.acquire(a)
    bal.acquire(a)
    bal.acquire(b)
    assert (bal.state(1).inflight, bal.state(2).inflight) == (2, 1)
    for _ in range(200):
        assert ids(bal.order(r)) == [2, 1]
    bal.release(a, ok=True)
    bal.release(a, ok=True)
    for _ in range(200):
        assert ids(bal.order(r)) == [1, 2]


def test_least_busy_measures_load_relative_to_max_concurrency(bal: Balancer) -> None:
    big, small = target(1, max_concurrency=10), target(2, max_concurrency=2)
    uncapped = target(3)
    r = route(big, small, uncapped, strategy="least_busy")
    for _ in range(3):
        bal.acquire(big)  # 3/10 = 0.3
    bal.acquire(small)  # 1/2 = 0.5
    bal.acquire(uncapped)  # 1 in flight, no cap: 1.0
    for _ in range(200):
        assert ids(bal.order(r)) == [1, 2, 3]


# -- lowest latency ------------------------------------------------------------------------------------


def test_release_feeds_an_exponential_moving_average_of_ttfb(bal: Balancer) -> None:
    t = target(1)
    expected: float | None = None
    for sample in (100.0, 200.0, 50.0, 50.0):
        bal.acquire(t)
        bal.release(t, ok=True, ttfb_ms=sample)
        expected = sample if expected is None else expected + EWMA_ALPHA * (sample - expected)
    assert EWMA_ALPHA == 0.2
    # 100 -> 100 + 0.2*100 = 120 -> 120 - 0.2*70 = 106 -> 106 - 0.2*56 = 94.8
    assert bal.state(1).ewma_ttfb_ms == pytest.approx(94.8)
    assert bal.state(1).ewma_ttfb_ms == pytest.approx(expected)
    bal.acquire(t)
    bal.release(t, ok=False)  # no TTFB measured: the average stays
    assert bal.state(1).ewma_ttfb_ms == pytest.approx(94.8)


def test_lowest_latency_explores_unmeasured_targets_then_picks_the_fastest(bal: Balancer) -> None:
    slow, fast, new = target(1, weight=50), target(2), target(3)
    r = route(slow, fast, new, strategy="lowest_latency")
    for t, ms in ((slow, 300.0), (fast, 40.0)):
        bal.acquire(t)
        bal.release(t, ok=True, ttfb_ms=ms)
    for _ in range(200):
        assert ids(bal.order(r)) == [3, 2, 1]
    bal.acquire(new)
    bal.release(new, ok=True, ttfb_ms=120.0)
    for _ in range(200):
        assert ids(bal.order(r)) == [2, 3, 1]


# -- lowest cost ---------------------------------------------------------------------------------------


def test_lowest_cost_orders_by_input_plus_output_price(bal: Balancer) -> None:
    # Input price alone would rank 1 first; input + output ranks 2 (11) before 3 (15) before 1 (21).
    cheap_in = target(1, price=Price(1.0, 20.0), weight=100)
    cheap_total = target(2, price=Price(10.0, 1.0))
    middle = target(3, price=Price(5.0, 10.0))
    r = route(cheap_in, cheap_total, middle, strategy="lowest_cost")
    assert (cheap_in.unit_price, cheap_total.unit_price, middle.unit_price) == (21.0, 11.0, 15.0)
    for _ in range(200):
        assert ids(bal.order(r)) == [2, 3, 1]


def test_lowest_cost_ties_are_broken_by_weight(bal: Balancer) -> None:
    heavy, light = target(1, price=Price(1.0, 2.0), weight=3), target(2, price=Price(2.0, 1.0), weight=1)
    dear = target(3, price=Price(1.0, 2.5), weight=1000)
    r = route(heavy, light, dear, strategy="lowest_cost")
    for _ in range(200):
        assert bal.order(r)[-1].deployment_id == 3
    assert first_pick_shares(bal, r)[1] == pytest.approx(0.75, abs=0.015)


# -- engine aware --------------------------------------------------------------------------------------


def test_engine_aware_prefers_the_shortest_queue_then_kv_cache_headroom(
    bal: Balancer, signals: EngineSignals, clock: FakeClock
) -> None:
    queued, full_cache, roomy = target(1, weight=100), target(2, weight=10), target(3)
    signals.update(1, EngineSample(waiting=4, running=1, kv_cache_usage=0.05, at=clock()))
    signals.update(2, EngineSample(waiting=0, running=1, kv_cache_usage=0.90, at=clock()))
    signals.update(3, EngineSample(waiting=0, running=9, kv_cache_usage=0.30, at=clock()))
    r = route(queued, full_cache, roomy, strategy="engine_aware")
    for _ in range(200):
        assert ids(bal.order(r)) == [3, 2, 1]


def test_engine_aware_ignores_a_stale_sample(bal: Balancer, signals: EngineSignals, clock: FakeClock) -> None:
    a, b = target(1, weight=100), target(2)
    r = route(a, b, strategy="engine_aware")
    signals.update(1, EngineSample(waiting=0, running=0, kv_cache_usage=0.0, at=clock()))
    signals.update(2, EngineSample(waiting=8, running=4, kv_cache_usage=0.7, at=clock() + 5.0))
    clock.advance(15.0)  # the first sample is exactly stale_after_s old: still fresh
    assert signals.fresh(1) is not None
    assert ids(bal.order(r)) == [1, 2]
    clock.advance(0.5)  # now older than stale_after_s: ignored, so the fresh (busier) engine wins
    assert signals.fresh(1) is None
    assert signals.fresh(2) is not None
    for _ in range(200):
        assert ids(bal.order(r)) == [2, 1]


@pytest.mark.parametrize("samples", ["none", "all_stale"])
def test_engine_aware_without_fresh_samples_orders_like_least_busy(
    clock: FakeClock, signals: EngineSignals, samples: str
) -> None:
    targets = [target(i, weight=w) for i, w in zip(range(1, 6), (1, 5, 2, 1, 3), strict=True)]
    if samples == "all_stale":
        for t in targets:
            signals.update(t.deployment_id, EngineSample(waiting=0, running=0, kv_cache_usage=0, at=clock()))
        clock.advance(60.0)

    def make(strategy: str) -> tuple[Balancer, Route]:
        b = Balancer(
            failure_threshold=THRESHOLD, cooldown_s=COOLDOWN_S, rng=random.Random(99), clock=clock, signals=signals
        )
        for t, n in zip(targets, (2, 0, 1, 0, 3), strict=True):
            for _ in range(n):
                b.acquire(t)
        return b, route(*targets, strategy=strategy)

    engine_bal, engine_route = make("engine_aware")
    busy_bal, busy_route = make("least_busy")
    orders = [ids(engine_bal.order(engine_route)) for _ in range(100)]
    assert orders == [ids(busy_bal.order(busy_route)) for _ in range(100)]
    assert all(o[2:] == [3, 1, 5] and sorted(o[:2]) == [2, 4] for o in orders)


# -- circuit breaker -----------------------------------------------------------------------------------


def test_failures_below_the_threshold_keep_the_circuit_closed(bal: Balancer) -> None:
    t = target(1)
    fail(bal, t, THRESHOLD - 1)
    st = bal.state(1)
    assert (st.circuit, st.failures, st.last_error) == (CLOSED, THRESHOLD - 1, "http_500")
    assert ids(bal.order(route(t))) == [1]


def test_the_nth_failure_opens_the_circuit_and_retry_after_counts_down(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    r = route(t)
    opened_at = clock()
    fail(bal, t, THRESHOLD)
    st = bal.state(1)
    assert (st.circuit, st.open_until, st.inflight) == (OPEN, opened_at + COOLDOWN_S, 0)
    for elapsed, expected in ((0.0, 30.0), (12.3, 18.0), (29.5, 1.0), (29.99, 1.0)):
        clock.now = opened_at + elapsed
        with pytest.raises(NoCapacity) as caught:
            bal.order(r)
        assert caught.value.reason == "circuit_open"
        assert str(caught.value) == "circuit_open"
        assert caught.value.retry_after_s == expected
        assert caught.value.retry_after_s == max(1.0, math.ceil(COOLDOWN_S - elapsed))


def test_after_the_cooldown_exactly_one_probe_is_let_through(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    r = route(t)
    open_circuit(bal, t)
    clock.advance(COOLDOWN_S)
    assert ids(bal.order(r)) == [1]
    assert ids(bal.order(r)) == [1]  # ordering alone does not take the probe slot
    bal.acquire(t)
    st = bal.state(1)
    assert (st.circuit, st.probing, st.inflight) == (HALF_OPEN, True, 1)
    for _ in range(3):
        with pytest.raises(NoCapacity) as caught:
            bal.order(r)
        assert (caught.value.reason, caught.value.retry_after_s) == ("circuit_open", 1.0)


def test_a_successful_probe_closes_the_circuit_and_resets_failures(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    r = route(t)
    open_circuit(bal, t)
    clock.advance(COOLDOWN_S + 1)
    probe = bal.acquire(t)
    bal.release(t, probe=probe, ok=True, ttfb_ms=80.0)
    st = bal.state(1)
    assert (st.circuit, st.failures, st.probing, st.open_until, st.inflight) == (CLOSED, 0, False, 0.0, 0)
    assert ids(bal.order(r)) == [1]
    fail(bal, t, THRESHOLD - 1)  # a full threshold is needed again
    assert bal.state(1).circuit == CLOSED
    fail(bal, t)
    assert bal.state(1).circuit == OPEN


@pytest.mark.parametrize("opened_by", ["failures", "health_check"])
def test_a_failed_probe_reopens_for_another_cooldown(bal: Balancer, clock: FakeClock, opened_by: str) -> None:
    t = target(1)
    r = route(t)
    if opened_by == "failures":
        open_circuit(bal, t)
    else:  # opened with no request failures counted: one failed probe must still reopen it
        bal.health_result(t, False)
        assert (bal.state(1).circuit, bal.state(1).failures) == (OPEN, 0)
    clock.advance(COOLDOWN_S + 5)
    probe = bal.acquire(t)
    probe_failed_at = clock()
    bal.release(t, probe=probe, ok=False, error="timeout")
    st = bal.state(1)
    assert (st.circuit, st.probing, st.open_until, st.last_error) == (OPEN, False, probe_failed_at + 30, "timeout")
    with pytest.raises(NoCapacity) as caught:
        bal.order(r)
    assert caught.value.retry_after_s == COOLDOWN_S
    clock.advance(COOLDOWN_S - 0.01)
    with pytest.raises(NoCapacity):
        bal.order(r)
    clock.advance(0.01)
    assert ids(bal.order(r)) == [1]


def test_a_success_in_between_resets_the_consecutive_failure_count(bal: Balancer) -> None:
    t = target(1)
    for _ in range(4):
        fail(bal, t, THRESHOLD - 1)
        assert bal.state(1).circuit == CLOSED
        bal.acquire(t)
        bal.release(t, ok=True)
        assert bal.state(1).failures == 0
    fail(bal, t, THRESHOLD)
    assert bal.state(1).circuit == OPEN


def test_a_client_error_is_neither_a_failure_nor_a_success(bal: Balancer) -> None:
    t = target(1)
    fail(bal, t, THRESHOLD - 1)
    for _ in range(10):
        bal.acquire(t)
        bal.release(t, ok=None)
    st = bal.state(1)
    assert (st.circuit, st.failures, st.inflight) == (CLOSED, THRESHOLD - 1, 0)  # not reset, not counted
    fail(bal, t)
    assert bal.state(1).circuit == OPEN


def test_a_client_error_ends_a_half_open_probe_by_closing_the_circuit(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    open_circuit(bal, t)
    clock.advance(COOLDOWN_S)
    probe = bal.acquire(t)
    bal.release(t, probe=probe, ok=None)
    st = bal.state(1)
    assert (st.circuit, st.probing, st.failures, st.inflight) == (CLOSED, False, 0, 0)
    assert ids(bal.order(route(t))) == [1]


def test_health_checks_open_a_closed_circuit_and_close_an_open_one(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    r = route(t)
    assert bal.state(1).healthy is None
    bal.health_result(t, False, "connect_error")
    st = bal.state(1)
    assert (st.circuit, st.healthy, st.last_error, st.last_check_at) == (OPEN, False, "connect_error", clock())
    assert st.open_until == clock() + COOLDOWN_S
    with pytest.raises(NoCapacity):
        bal.order(r)
    clock.advance(3.0)
    bal.health_result(t, True)
    assert (st.circuit, st.healthy, st.failures, st.last_check_at) == (CLOSED, True, 0, clock())
    assert ids(bal.order(r)) == [1]


def test_a_passing_health_check_leaves_an_in_flight_probe_alone(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    open_circuit(bal, t)
    clock.advance(COOLDOWN_S)
    bal.acquire(t)
    bal.health_result(t, True)
    assert (bal.state(1).circuit, bal.state(1).probing) == (HALF_OPEN, True)


def test_on_change_is_called_on_each_transition(bal: Balancer, clock: FakeClock) -> None:
    t, other = target(1), target(2)
    seen: list[tuple[int, str]] = []

    def record(tgt: Target, st: DeploymentState) -> None:
        assert st is bal.state(tgt.deployment_id)
        seen.append((tgt.deployment_id, st.circuit))

    bal.on_change = record
    fail(bal, t, THRESHOLD - 1)
    assert seen == []
    fail(bal, t)  # closed -> open
    clock.advance(COOLDOWN_S)
    probe = bal.acquire(t)  # open -> half-open
    bal.release(t, probe=probe, ok=False)  # half-open -> open
    clock.advance(COOLDOWN_S)
    probe = bal.acquire(t)  # open -> half-open
    bal.release(t, probe=probe, ok=True)  # half-open -> closed
    bal.health_result(other, False)  # closed -> open
    bal.health_result(other, True)  # open -> closed
    assert seen == [(1, OPEN), (1, HALF_OPEN), (1, OPEN), (1, HALF_OPEN), (1, CLOSED), (2, OPEN), (2, CLOSED)]


def test_on_change_is_not_called_when_nothing_transitions(bal: Balancer) -> None:
    t = target(1)
    seen: list[str] = []
    bal.on_change = lambda _t, st: seen.append(st.circuit)
    fail(bal, t, THRESHOLD - 1)
    bal.acquire(t)
    bal.release(t, ok=True)
    assert bal.state(1).failures == 0
    assert seen == []


# -- concurrency cap -----------------------------------------------------------------------------------


def test_a_target_at_its_concurrency_cap_is_skipped(bal: Balancer) -> None:
    capped, free = target(1, max_concurrency=2, weight=100), target(2)
    r = route(capped, free)
    bal.acquire(capped)
    assert sorted(ids(bal.order(r))) == [1, 2]
    bal.acquire(capped)
    for _ in range(50):
        assert ids(bal.order(r)) == [2]
    bal.release(capped, ok=True)
    assert sorted(ids(bal.order(r))) == [1, 2]


def test_all_targets_at_their_cap_raise_busy_until_a_slot_frees(bal: Balancer) -> None:
    a, b = target(1, max_concurrency=1), target(2, max_concurrency=2)
    r = route(a, b, strategy="least_busy")
    for t in (a, b, b):
        bal.acquire(t)
    with pytest.raises(NoCapacity) as caught:
        bal.order(r)
    assert (caught.value.reason, caught.value.retry_after_s) == ("busy", 1.0)
    bal.release(b, ok=True)
    assert ids(bal.order(r)) == [2]


def test_busy_wins_over_circuit_open_when_both_block(bal: Balancer) -> None:
    capped, broken = target(1, max_concurrency=1), target(2)
    bal.acquire(capped)
    open_circuit(bal, broken)
    with pytest.raises(NoCapacity) as caught:
        bal.order(route(capped, broken))
    assert (caught.value.reason, caught.value.retry_after_s) == ("busy", 1.0)


def test_inflight_never_goes_below_zero(bal: Balancer) -> None:
    t = target(1, max_concurrency=1)
    bal.release(t, ok=True)
    bal.release(t, ok=None)
    assert bal.state(1).inflight == 0
    bal.acquire(t)
    with pytest.raises(NoCapacity):
        bal.order(route(t))


# -- mixed ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_open_circuit_is_skipped_while_another_target_can_serve(bal: Balancer, strategy: str) -> None:
    broken, healthy = target(1, weight=1000), target(2)
    r = route(broken, healthy, strategy=strategy)
    open_circuit(bal, broken)
    for _ in range(50):
        assert ids(bal.order(r)) == [2]


def test_a_fresh_balancer_state_is_closed_and_idle(bal: Balancer) -> None:
    assert bal.state(42) == DeploymentState()
    assert bal.state(42) is bal.state(42)
    assert (bal.state(42).circuit, bal.state(42).inflight, bal.state(42).ewma_ttfb_ms) == (CLOSED, 0, None)


def test_only_the_probe_decides_a_half_open_circuit(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    assert bal.acquire(t) is False  # a slow request that started while the circuit was closed
    open_circuit(bal, t)
    clock.advance(COOLDOWN_S + 1)
    probe = bal.acquire(t)
    assert probe is True
    assert bal.acquire(t) is False  # a second request in the cool-down's wake is not a probe
    bal.release(t, ok=None)
    bal.release(t, ok=False, error="old")  # the old request fails late: the probe is still out
    assert (bal.state(1).circuit, bal.state(1).probing) == (HALF_OPEN, True)
    bal.release(t, ok=True, probe=probe)
    assert (bal.state(1).circuit, bal.state(1).failures, bal.state(1).last_error) == (CLOSED, 0, None)


def test_a_probe_is_only_granted_once_the_cooldown_is_over(bal: Balancer, clock: FakeClock) -> None:
    t = target(1)
    open_circuit(bal, t)
    assert bal.acquire(t) is False  # e.g. a retry that slept across the opening: not a probe
    assert bal.state(1).circuit == OPEN
    assert not bal.usable(t)
