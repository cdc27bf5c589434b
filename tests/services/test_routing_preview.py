"""The routing preview: the gateway's ordering on a snapshot of the live balancer, seeded, side-effect free."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, Provider
from llm_console.gateway.balancer import OPEN, Balancer, EngineSample
from llm_console.gateway.routing import Target, load_route_table
from llm_console.services.deployments import ConfigError, add_deployment, set_price
from llm_console.services.routing_preview import Plan, Preview, load_plan, preview, preview_rows
from llm_console.services.routing_rules import RuleChange, save_rule

from .conftest import SECRET_KEY


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def live(clock: FakeClock) -> Balancer:
    """The "live" balancer: its state, RNG and callbacks are what the preview must leave alone."""
    return Balancer(failure_threshold=3, cooldown_s=30.0, rng=random.Random(99), clock=clock)


def run(plan: Plan, live: Balancer, **kwargs: Any) -> Preview:
    """`preview`, with the live balancer's callbacks armed to fail the test if it touches a circuit or a count."""
    saved = live.on_change, live.on_inflight
    try:
        return preview(plan, live, **kwargs)
    finally:
        live.on_change, live.on_inflight = saved


@pytest.fixture
def deps(engine: Engine, box: SecretBox) -> dict[str, int]:
    """`chat` on a (weight 3) and b (weight 1); `spare` on c, usable as a fallback."""
    a = add_deployment(engine, box, alias="chat", base_url="http://a.test/v1", model="llama", weight=3, actor="t")
    b = add_deployment(engine, box, alias="chat", base_url="http://b.test/v1", model="llama", weight=1, actor="t")
    c = add_deployment(engine, box, alias="spare", base_url="http://c.test/v1", model="qwen", actor="t")
    assert a.id and b.id and c.id
    return {"a": a.id, "b": b.id, "c": c.id}


def target_of(plan: Plan, dep_id: int) -> Target:
    assert plan.route is not None
    return next(t for t in plan.route.targets if t.deployment_id == dep_id)


def test_weights_three_to_one_split_about_75_25_and_repeat_for_a_seed(engine: Engine, deps: dict, live: Balancer):
    plan = load_plan(engine, "chat")
    first = run(plan, live, n=100, seed=7)
    assert first.count("llama@a.test") + first.count("llama@b.test") == 100
    assert 65 <= first.count("llama@a.test") <= 85
    assert run(plan, live, n=100, seed=7) == first  # deterministic per seed
    assert (first.to_fallbacks, first.refused, first.refusal) == (0, 0, "")
    assert [r["note"] for r in preview_rows(first)] == ["weight 3 of 4", "weight 1 of 4"]
    many = run(plan, live, n=4000, seed=1)
    assert many.count("llama@a.test") / 4000 == pytest.approx(0.75, abs=0.03)


def test_the_preview_runs_the_gateways_own_ordering(engine: Engine, deps: dict, clock: FakeClock, live: Balancer):
    """Request i of the preview goes where `Balancer.order` with the same seeded RNG sends it."""
    plan = load_plan(engine, "chat")
    assert plan.route is not None
    gateway = Balancer(failure_threshold=3, cooldown_s=30.0, rng=random.Random(5), clock=clock)
    expected = [gateway.order(plan.route)[0].deployment for _ in range(100)]
    got = run(plan, live, n=100, seed=5)
    assert {d: got.count(d) for d in set(expected)} == {d: expected.count(d) for d in set(expected)}


def test_weight_zero_and_disabled_get_nothing_and_say_why(engine: Engine, deps: dict, live: Balancer) -> None:
    save_rule(engine, alias="chat", change=RuleChange("weighted", {deps["a"]: 3, deps["b"]: 0}), actor="t")
    p = run(load_plan(engine, "chat"), live, seed=1)
    assert (p.count("llama@a.test"), p.count("llama@b.test")) == (100, 0)
    assert preview_rows(p)[1]["note"] == "weight 0 (drained): gets no traffic"

    with session(engine) as s:
        dep = s.get(Deployment, deps["a"])
        assert dep is not None
        dep.enabled = False
        s.add(dep)
        s.commit()
    p = run(load_plan(engine, "chat"), live, seed=1)
    assert p.count("llama@a.test") == 0 and preview_rows(p)[0]["note"].startswith("disabled")
    assert p.refused == 100 and "404 model_not_found" in p.refusal  # nothing takes traffic: like the gateway


def test_a_disabled_provider_takes_its_deployments_out_like_the_gateway(engine: Engine, deps: dict, live: Balancer):
    with session(engine) as s:
        dep = s.get(Deployment, deps["b"])
        provider = s.get(Provider, dep.provider_id if dep else 0)
        assert provider is not None
        provider.enabled = False
        s.add(provider)
        s.commit()
    p = run(load_plan(engine, "chat"), live, seed=1)
    assert (p.count("llama@a.test"), p.count("llama@b.test")) == (100, 0)
    assert preview_rows(p)[1]["note"] == "disabled (the deployment or its provider): gets no traffic"
    route = load_route_table(engine, SecretBox(SECRET_KEY)).get("chat")
    assert route is not None and [t.deployment_id for t in route.targets] == [deps["a"]]


def test_an_open_circuit_gets_nothing_and_is_explained(engine: Engine, deps: dict, live: Balancer) -> None:
    plan = load_plan(engine, "chat")
    live.health_result(target_of(plan, deps["a"]), False, "connect_error")  # opens a's circuit (live, on purpose)
    p = run(plan, live, seed=3, wall_now=0.0)
    assert (p.count("llama@a.test"), p.count("llama@b.test")) == (0, 100)
    note = preview_rows(p)[0]["note"]
    assert note == "circuit open after connect_error until 00:00:30 UTC (in 30 s)"


def test_a_cooled_down_circuit_gets_exactly_one_probe(engine: Engine, deps: dict, clock: FakeClock, live: Balancer):
    plan = load_plan(engine, "chat")
    live.health_result(target_of(plan, deps["a"]), False, "timeout")
    clock.now += 31
    p = run(plan, live, seed=3)
    assert (p.count("llama@a.test"), p.count("llama@b.test")) == (1, 99)
    assert "next request is its probe" in preview_rows(p)[0]["note"]
    assert live.state(deps["a"]).circuit == OPEN and not live.state(deps["a"]).probing


def test_all_down_goes_to_fallbacks_then_is_refused(engine: Engine, deps: dict, live: Balancer) -> None:
    save_rule(
        engine,
        alias="chat",
        change=RuleChange("weighted", {deps["a"]: 3, deps["b"]: 1}, fallbacks=("spare",)),
        actor="t",
    )
    plan = load_plan(engine, "chat")
    for dep in ("a", "b"):
        live.health_result(target_of(plan, deps[dep]), False, "http_503")

    p = run(plan, live, seed=2)
    assert (p.to_fallbacks, p.refused, p.count("qwen@c.test", alias="spare")) == (100, 0, 100)
    fallback = preview_rows(p)[-1]
    assert fallback["kind"] == "fallback" and fallback["count"] == "100 of 100" and fallback["share"] == "100%"
    assert "fallback 'spare'" in fallback["note"]
    assert p.summary() == "Next 100 requests: 100 to fallbacks"

    spare = load_plan(engine, "spare")
    assert spare.route is not None
    live.health_result(spare.route.targets[0], False, "http_503")
    p = run(load_plan(engine, "chat"), live, seed=2)
    assert (p.to_fallbacks, p.refused) == (0, 100)
    assert "503 no_healthy_deployment" in p.refusal and "Retry-After 30 s" in p.refusal


def test_a_full_deployment_is_skipped_and_explained(engine: Engine, deps: dict, live: Balancer) -> None:
    with session(engine) as s:
        dep = s.get(Deployment, deps["a"])
        assert dep is not None
        dep.max_concurrency = 2
        s.add(dep)
        s.commit()
    plan = load_plan(engine, "chat")
    for _ in range(2):
        live.acquire(target_of(plan, deps["a"]))
    p = run(plan, live, seed=4)
    assert (p.count("llama@a.test"), p.count("llama@b.test")) == (0, 100)
    assert preview_rows(p)[0]["note"] == "at its concurrency cap (2 of 2 in flight)"
    assert live.state(deps["a"]).inflight == 2


def test_strategies_use_the_live_signals(engine: Engine, deps: dict, live: Balancer) -> None:
    set_price(engine, model="llama", input_per_mtok=1.0, output_per_mtok=2.0, actor="t")
    for strategy, expected in [("lowest_cost", "$3 per million tokens"), ("least_busy", "0 in flight")]:
        change = RuleChange(strategy, {deps["a"]: 1, deps["c"]: 1})
        p = run(load_plan(engine, "chat", change), live, seed=1)
        assert p.strategy == strategy and preview_rows(p)[0]["note"].startswith(expected)
    live.state(deps["a"]).ewma_ttfb_ms, live.state(deps["c"]).ewma_ttfb_ms = 400.0, 90.0
    p = run(load_plan(engine, "chat", RuleChange("lowest_latency", {deps["a"]: 1, deps["c"]: 1})), live)
    assert (p.count("llama@a.test"), p.count("qwen@c.test")) == (0, 100)
    assert preview_rows(p)[1]["note"] == "time to first byte ≈ 90 ms"
    live.signals.update(deps["a"], EngineSample(waiting=0, running=3, kv_cache_usage=0.4, at=live.clock()))
    live.signals.update(deps["c"], EngineSample(waiting=5, running=8, kv_cache_usage=0.9, at=live.clock()))
    p = run(load_plan(engine, "chat", RuleChange("engine_aware", {deps["a"]: 1, deps["c"]: 1})), live)
    assert p.count("llama@a.test") == 100 and preview_rows(p)[0]["note"] == "engine queue 0, running 3, KV cache 40%"


def test_without_engine_samples_the_drafts_fallback_strategy_orders_and_is_named(
    engine: Engine, deps: dict, live: Balancer
) -> None:
    set_price(engine, model="llama", input_per_mtok=1.0, output_per_mtok=2.0, actor="t")
    change = RuleChange("engine_aware", {deps["a"]: 1, deps["c"]: 1}, engine_fallback="lowest_cost")
    p = run(load_plan(engine, "chat", change), live, seed=1)
    assert (p.count("llama@a.test"), p.count("qwen@c.test")) == (0, 100)  # qwen has no price: counts as free
    notes = {row["deployment"]: row["note"] for row in preview_rows(p)}
    assert all("fallback strategy lowest-cost" in note for note in notes.values()), notes
    p = run(load_plan(engine, "chat", RuleChange("engine_aware", {deps["a"]: 1, deps["c"]: 1})), live, seed=1)
    assert "fallback strategy least-busy" in preview_rows(p)[0]["note"]


def test_a_draft_is_previewed_without_saving_it(engine: Engine, deps: dict, live: Balancer) -> None:
    draft = RuleChange("weighted", {deps["a"]: 0, deps["b"]: 1, deps["c"]: 1})
    p = run(load_plan(engine, "chat", draft), live, seed=8)
    assert p.count("llama@a.test") == 0 and p.count("llama@b.test") + p.count("qwen@c.test") == 100
    with session(engine) as s:
        weights = {x.deployment_id: x.weight for x in s.exec(select(AliasDeployment))}
    assert weights == {deps["a"]: 3, deps["b"]: 1, deps["c"]: 1}  # c is spare's link, chat's unchanged
    route = load_route_table(engine, SecretBox(SECRET_KEY)).get("chat")
    assert route is not None and [t.weight for t in route.targets] == [3, 1]


def test_the_preview_leaves_the_live_balancer_untouched(engine: Engine, deps: dict, live: Balancer) -> None:
    plan = load_plan(engine, "chat")
    live.acquire(target_of(plan, deps["b"]))
    states, rng_state = copy.deepcopy(live.states), live.rng.getstate()
    for strategy in ("weighted", "least_busy", "lowest_latency", "lowest_cost", "engine_aware"):
        run(load_plan(engine, "chat", RuleChange(strategy, {deps["a"]: 3, deps["b"]: 1})), live, n=500)
    assert live.states == states
    assert live.rng.getstate() == rng_state
    assert live.signals.fresh(deps["a"]) is None


def test_unknown_alias_is_a_readable_error(engine: Engine, deps: dict) -> None:
    with pytest.raises(ConfigError, match="no alias '<script>'"):
        load_plan(engine, "<script>")


def test_hostile_names_pass_through_as_plain_text(engine: Engine, box: SecretBox, live: Balancer) -> None:
    name = '<img src=x onerror="alert(1)">'
    add_deployment(engine, box, alias=name, base_url="http://h.test/v1", model="m", actor="t")
    p = run(load_plan(engine, name), live)
    assert p.alias == name and preview_rows(p)[0]["alias"] == name and p.count("m@h.test") == 100
