"""Alias policies parsed defensively, and the route table built from a real (migrated SQLite) database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.migrate import upgrade
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias
from llm_console.gateway.pricing import DEFAULT_PRICES, Price
from llm_console.gateway.routing import STRATEGIES, Policy, Route, RouteTable, load_route_table
from llm_console.services.deployments import add_deployment, allow_network, set_price

SECRET_KEY = "unit-test-secret-key-0123456789abcdef"
PROVIDER_KEY = "sk-proj-routing-secret-7f3a9c"
# `*.test` names never resolve; allow-listing them here (not in the DB) skips the DNS lookup entirely.
TEST_HOSTS = ["*.test"]

# -- Policy.from_settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], ["retries", 3], "retries=3", 3, 2.5, True, b"{}", {}])
def test_a_non_dict_or_empty_setting_gives_the_default_policy(raw: object) -> None:
    assert Policy.from_settings(raw) == Policy()


@pytest.mark.parametrize(
    "raw",
    [
        {"retries": -1},
        {"retries": "3"},
        {"retries": None},
        {"retries": [3]},
        {"retries": {"n": 3}},
        {"retries": float("nan")},
        {"backoff_ms": -0.5},
        {"backoff_ms": "250ms"},
        {"retry_after_cap_s": -10},
        {"retry_after_cap_s": "30"},
        {"fallbacks": "other-alias"},
        {"fallbacks": {"other-alias": 1}},
        {"fallbacks": 7},
        {"fallbacks": [1, None, ["x"]]},
        {"timeouts": "30"},
        {"timeouts": [30, 60]},
        {"timeouts": 30},
        {"unknown": 1, "also": "ignored"},
    ],
)
def test_junk_values_fall_back_to_the_defaults(raw: dict[str, Any]) -> None:
    assert Policy.from_settings(raw) == Policy()


def test_junk_entries_are_dropped_field_by_field() -> None:
    policy = Policy.from_settings(
        {"retries": "many", "backoff_ms": 100, "fallbacks": ["b", 3, None, "c", {"d": 1}], "timeouts": "slow"}
    )
    assert policy == Policy(retries=None, backoff_ms=100.0, fallbacks=("b", "c"), timeouts={})


def test_valid_settings_are_parsed() -> None:
    raw = {
        "retries": 2,
        "backoff_ms": 250,
        "retry_after_cap_s": 7.5,
        "fallbacks": ["cheap", "local"],
        "timeouts": {"total_s": 60, "first_byte_s": 5},
    }
    policy = Policy.from_settings(raw)
    assert policy == Policy(2, 250.0, 7.5, ("cheap", "local"), {"total_s": 60, "first_byte_s": 5})
    assert isinstance(policy.retries, int)
    assert isinstance(policy.backoff_ms, float)


def test_zero_is_a_real_value_not_a_missing_one() -> None:
    policy = Policy.from_settings({"retries": 0, "backoff_ms": 0, "retry_after_cap_s": 0.0, "fallbacks": []})
    assert (policy.retries, policy.backoff_ms, policy.retry_after_cap_s, policy.fallbacks) == (0, 0.0, 0.0, ())


def test_fractional_retries_are_truncated_to_a_count() -> None:
    assert Policy.from_settings({"retries": 2.9}).retries == 2


def test_a_boolean_is_junk_not_a_number() -> None:
    assert Policy.from_settings({"retries": True, "backoff_ms": False}) == Policy()


def test_an_infinite_number_is_junk_and_does_not_raise() -> None:
    policy = Policy.from_settings({"retries": float("inf"), "backoff_ms": float("inf")})
    assert (policy.retries, policy.backoff_ms) == (None, None)


# -- load_route_table ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per module; each test copies the file (a fresh database without re-running Alembic)."""
    path = tmp_path_factory.mktemp("routing") / "template.db"
    upgrade(f"sqlite:///{path.as_posix()}")
    return path


@pytest.fixture
def engine(migrated_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "routing.db"
    shutil.copyfile(migrated_template, path)
    eng = make_engine(f"sqlite:///{path.as_posix()}")
    yield eng
    eng.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET_KEY)


def add(engine: Engine, box: SecretBox, alias: str, base_url: str, **kwargs: Any) -> int:
    kwargs.setdefault("extra_allowlist", TEST_HOSTS)
    dep = add_deployment(engine, box, alias=alias, base_url=base_url, actor="test", **kwargs)
    assert dep.id is not None
    return dep.id


def set_alias(engine: Engine, alias: str, *, strategy: str | None = None, settings: Any = None) -> None:
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).one()
        if strategy is not None:
            row.strategy = strategy
        if settings is not None:
            row.settings = settings
        s.add(row)
        s.commit()


def update_deployment(engine: Engine, dep_id: int, **fields: Any) -> None:
    with session(engine) as s:
        dep = s.get(Deployment, dep_id)
        assert dep is not None
        for name, value in fields.items():
            setattr(dep, name, value)
        s.add(dep)
        s.commit()


def route_of(table: RouteTable, alias: str) -> Route:
    route = table.get(alias)
    assert route is not None, f"no route for {alias!r}; have {table.aliases()}"
    return route


def test_an_empty_database_gives_an_empty_table(engine: Engine, box: SecretBox) -> None:
    table = load_route_table(engine, box)
    assert (table.routes, table.allowlist, table.aliases(), table.targets()) == ({}, (), [], {})


def test_targets_carry_the_deployment_provider_and_decrypted_key(engine: Engine, box: SecretBox) -> None:
    remote = add(
        engine,
        box,
        "chat",
        "https://api-a.test/v1",
        model="gpt-4o",
        api_key=PROVIDER_KEY,
        weight=3,
        provider_settings={"api_version": "2024-01-01", "region": "eu"},
    )
    local = add(
        engine, box, "chat", "http://127.0.0.1:8001/v1", model="local-llama", allow_private=True, max_concurrency=4
    )
    update_deployment(engine, remote, settings={"api_version": "2025-02-02", "timeouts": {"total_s": 30}})

    route = route_of(load_route_table(engine, box), "chat")
    assert [t.deployment_id for t in route.targets] == [remote, local]
    a, b = route.targets
    assert (a.deployment, a.model, a.api_base, a.kind, a.host) == (
        "gpt-4o@api-a.test",
        "gpt-4o",
        "https://api-a.test/v1",
        "openai",
        "api-a.test",
    )
    assert (a.weight, a.max_concurrency, a.api_key) == (3, None, PROVIDER_KEY)
    # provider settings, overlaid key by key by the deployment's own
    assert a.options == {"api_version": "2025-02-02", "region": "eu", "timeouts": {"total_s": 30}}
    assert (b.host, b.weight, b.max_concurrency, b.api_key, b.options) == ("127.0.0.1", 1, 4, None, {})


def test_the_api_key_never_shows_in_a_repr(engine: Engine, box: SecretBox) -> None:
    add(engine, box, "chat", "https://api-a.test/v1", api_key=PROVIDER_KEY)
    table = load_route_table(engine, box)
    (target,) = route_of(table, "chat").targets
    assert target.api_key == PROVIDER_KEY
    for shown in (repr(target), str(target), repr(route_of(table, "chat")), repr(table)):
        assert PROVIDER_KEY not in shown
        assert "api_key" not in shown


def test_the_alias_strategy_and_policy_are_used(engine: Engine, box: SecretBox) -> None:
    add(engine, box, "fast", "https://api-a.test/v1")
    add(engine, box, "odd", "https://api-b.test/v1")
    add(engine, box, "plain", "https://api-c.test/v1")
    set_alias(engine, "fast", strategy="engine_aware", settings={"retries": 4, "fallbacks": ["plain"]})
    set_alias(engine, "odd", strategy="round_robin_please", settings=["not", "a", "dict"])

    table = load_route_table(engine, box)
    fast, odd, plain = (route_of(table, a) for a in ("fast", "odd", "plain"))
    assert (fast.alias, fast.strategy, fast.policy) == ("fast", "engine_aware", Policy(retries=4, fallbacks=("plain",)))
    assert (odd.strategy, odd.policy) == ("weighted", Policy())
    assert (plain.strategy, plain.policy) == ("weighted", Policy())
    assert table.aliases() == ["fast", "odd", "plain"]


def test_every_known_strategy_is_kept(engine: Engine, box: SecretBox) -> None:
    for n, strategy in enumerate(STRATEGIES):
        add(engine, box, strategy, f"https://api-{n}.test/v1")
        set_alias(engine, strategy, strategy=strategy)
    table = load_route_table(engine, box)
    assert {alias: route_of(table, alias).strategy for alias in table.aliases()} == {s: s for s in STRATEGIES}


def test_targets_are_sorted_by_deployment_id_whatever_the_link_order(engine: Engine, box: SecretBox) -> None:
    first = add(engine, box, "other", "https://api-a.test/v1", model="m1")
    second = add(engine, box, "chat", "https://api-b.test/v1", model="m2")
    third = add(engine, box, "chat", "https://api-c.test/v1", model="m3")
    assert add(engine, box, "chat", "https://api-a.test/v1", model="m1") == first  # reused, linked last
    with session(engine) as s:
        chat_id = s.exec(select(ModelAlias.id).where(ModelAlias.alias == "chat")).one()
        linked = [link.deployment_id for link in s.exec(select(AliasDeployment)) if link.alias_id == chat_id]
    assert linked == [second, third, first]  # the precondition: stored out of id order

    table = load_route_table(engine, box)
    assert [t.deployment_id for t in route_of(table, "chat").targets] == [first, second, third]
    assert [t.deployment_id for t in route_of(table, "other").targets] == [first]
    assert sorted(table.targets()) == [first, second, third]


def test_disabled_deployments_and_zero_weight_links_are_not_routed(engine: Engine, box: SecretBox) -> None:
    live = add(engine, box, "chat", "https://api-a.test/v1", model="live")
    disabled = add(engine, box, "chat", "https://api-b.test/v1", model="off")
    add(engine, box, "chat", "https://api-c.test/v1", model="drained", weight=0)
    add(engine, box, "drained-only", "https://api-d.test/v1", model="gone", weight=0)
    update_deployment(engine, disabled, enabled=False)
    add(engine, box, "disabled-only", "https://api-b.test/v1", model="off")  # links the disabled deployment

    table = load_route_table(engine, box)
    assert [t.deployment_id for t in route_of(table, "chat").targets] == [live]
    assert table.get("drained-only") is None
    assert table.get("disabled-only") is None
    assert table.aliases() == ["chat"]
    assert list(table.targets()) == [live]


def test_prices_come_from_the_deployment_model_then_the_alias_then_the_defaults(engine: Engine, box: SecretBox) -> None:
    priced_model = add(engine, box, "chat", "https://api-a.test/v1", model="gpt-4o")
    alias_priced = add(engine, box, "chat", "https://api-b.test/v1", model="local-llama")
    default_priced = add(engine, box, "mini", "https://api-c.test/v1", model="gpt-4o-mini")
    unpriced = add(engine, box, "mystery", "https://api-d.test/v1", model="unknown-x")
    set_price(engine, model="gpt-4o", input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.5, actor="t")
    set_price(engine, model="chat", input_per_mtok=9.0, output_per_mtok=9.5, actor="t")

    table = load_route_table(engine, box)
    prices = {dep_id: t.price for dep_id, t in table.targets().items()}
    assert prices[priced_model] == Price(1.0, 2.0, 0.5)  # the DB row beats both the alias and DEFAULT_PRICES
    assert prices[alias_priced] == Price(9.0, 9.5, 0.0)
    assert prices[default_priced] == DEFAULT_PRICES["gpt-4o-mini"]
    assert prices[unpriced] is None
    assert table.targets()[alias_priced].unit_price == 18.5
    assert table.targets()[unpriced].unit_price == 0.0


def test_the_stored_allowlist_is_part_of_the_table(engine: Engine, box: SecretBox) -> None:
    add(engine, box, "local", "http://127.0.0.1:8001/v1", allow_private=True)
    allow_network(engine, "10.20.0.0/16", actor="admin", note="lab")
    allow_network(engine, "*.internal.example", actor="admin")

    table = load_route_table(engine, box)
    assert sorted(table.allowlist) == sorted(["127.0.0.1/32", "10.20.0.0/16", "*.internal.example"])
    assert "*.test" not in table.allowlist  # entries passed only at call time are not stored


def test_the_table_is_a_snapshot(engine: Engine, box: SecretBox) -> None:
    add(engine, box, "chat", "https://api-a.test/v1")
    before = load_route_table(engine, box)
    add(engine, box, "chat", "https://api-b.test/v1")
    assert len(route_of(before, "chat").targets) == 1
    assert len(route_of(load_route_table(engine, box), "chat").targets) == 2


def test_one_alias_with_an_infinite_retry_count_does_not_break_the_others(engine: Engine, box: SecretBox) -> None:
    add(engine, box, "good", "https://api-a.test/v1")
    add(engine, box, "bad", "https://api-b.test/v1")
    set_alias(engine, "bad", settings={"retries": float("inf")})  # stored as JSON `Infinity`, read back as inf
    table = load_route_table(engine, box)
    assert route_of(table, "good").policy == Policy()
    assert route_of(table, "bad").policy.retries is None
