"""Routing rules: aliases, links and weights, policy; validated, audited with before and after."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, AuditEvent, Deployment, ModelAlias
from llm_console.gateway.balancer import Balancer
from llm_console.gateway.routing import load_route_table
from llm_console.services.deployments import ConfigError, add_deployment
from llm_console.services.routing_rules import (
    RuleChange,
    add_link,
    check_fallbacks,
    create_alias,
    delete_alias,
    deployment_choices,
    gateway_defaults,
    get_rule,
    list_rules,
    parse_form,
    remove_link,
    save_rule,
    set_weight,
)
from llm_console.services.sessions import SessionUser
from llm_console.settings import Settings
from llm_console.state import routing as module

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE model_aliases; --",
    "{{7*7}} ${jndi:ldap://x} %s %n",
    "модель/λ-模型:latest",
]


def audits(engine: Engine) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]


@pytest.fixture
def deps(engine: Engine, box: SecretBox) -> dict[str, int]:
    """Two deployments routed by `chat` (weights 3 and 1) and one more, unlinked, for `other`."""
    a = add_deployment(engine, box, alias="chat", base_url="http://a.test/v1", model="llama", weight=3, actor="t")
    b = add_deployment(engine, box, alias="chat", base_url="http://b.test/v1", model="llama", weight=1, actor="t")
    c = add_deployment(engine, box, alias="other", base_url="http://c.test/v1", model="qwen", actor="t")
    assert a.id and b.id and c.id
    return {"a": a.id, "b": b.id, "c": c.id}


def change(deps: dict[str, int], **kwargs: object) -> RuleChange:
    args: dict[str, object] = {"strategy": "weighted", "weights": {deps["a"]: 3, deps["b"]: 1}, **kwargs}
    return RuleChange(**args)  # type: ignore[arg-type]


def test_list_rules_shows_deployments_weights_and_policy(engine: Engine, deps: dict[str, int]) -> None:
    rules = {r.alias: r for r in list_rules(engine)}
    assert sorted(rules) == ["chat", "other"]
    chat = rules["chat"]
    assert [(x.deployment, x.weight, x.host) for x in chat.links] == [
        ("llama@a.test", 3, "a.test"),
        ("llama@b.test", 1, "b.test"),
    ]
    assert (chat.strategy, chat.fallbacks, chat.retries, chat.timeouts) == ("weighted", (), None, {})
    assert [d.deployment for d in deployment_choices(engine)] == ["llama@a.test", "llama@b.test", "qwen@c.test"]


def test_save_rule_replaces_the_rule_with_one_audit_row(engine: Engine, deps: dict[str, int]) -> None:
    before_count = len(audits(engine))
    new = RuleChange(
        strategy="least_busy",
        weights={deps["a"]: 5, deps["c"]: 0},  # b unlinked, c linked but drained
        fallbacks=("other",),
        retries=4,
        backoff_ms=250.0,
        retry_after_cap_s=3.0,
        timeouts={"connect_s": 2.0, "total_s": 90.0},
    )
    assert save_rule(engine, alias="chat", change=new, actor="ops@example.com") is True

    rule = get_rule(engine, "chat")
    assert [(x.deployment_id, x.weight) for x in rule.links] == [(deps["a"], 5), (deps["c"], 0)]
    assert (rule.strategy, rule.fallbacks, rule.retries, rule.backoff_ms) == ("least_busy", ("other",), 4, 250.0)
    assert rule.timeouts == {"connect_s": 2.0, "total_s": 90.0}
    events = audits(engine)
    assert len(events) == before_count + 1
    event = events[-1]
    assert (event.action, event.actor, event.target_id) == ("route.update", "ops@example.com", "chat")
    assert event.before is not None and event.after is not None
    assert event.before["strategy"] == "weighted" and event.after["strategy"] == "least_busy"
    assert [d["weight"] for d in event.before["deployments"]] == [3, 1]
    assert [(d["deployment"], d["weight"]) for d in event.after["deployments"]] == [
        ("llama@a.test", 5),
        ("qwen@c.test", 0),
    ]
    assert event.after["fallbacks"] == ["other"] and event.after["timeouts"] == {"connect_s": 2.0, "total_s": 90.0}

    # The gateway's table follows: the drained link is not routed.
    table = load_route_table(engine, SecretBox("unit-test-secret-key-0123456789abcdef"))
    route = table.get("chat")
    assert route is not None and [t.deployment_id for t in route.targets] == [deps["a"]]
    assert route.strategy == "least_busy" and route.policy.retries == 4 and route.policy.fallbacks == ("other",)


def test_saving_the_same_rule_writes_nothing(engine: Engine, deps: dict[str, int]) -> None:
    count = len(audits(engine))
    assert save_rule(engine, alias="chat", change=change(deps), actor="t") is False
    assert len(audits(engine)) == count


def test_empty_fields_inherit_and_other_settings_are_kept(engine: Engine, deps: dict[str, int]) -> None:
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == "chat")).one()
        row.settings = {"retries": 1, "timeouts": {"idle_s": 5}, "future_key": "kept"}
        s.add(row)
        s.commit()
    save_rule(engine, alias="chat", change=change(deps, retries=None), actor="t")
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == "chat")).one()
    assert row.settings == {"future_key": "kept"}
    assert get_rule(engine, "chat").retries is None


def test_parse_form_reads_text_fields_with_readable_errors() -> None:
    got = parse_form("lowest_cost", {7: "2", 8: ""}, ["x"], {"retries": "3", "backoff_ms": " ", "first_byte_s": "12.5"})
    assert got == RuleChange("lowest_cost", {7: 2, 8: 0}, ("x",), 3, None, None, {"first_byte_s": 12.5})
    for strategy, weights, fields, message in [
        ("weighted", {}, {"retries": "abc"}, "Retries: 'abc' is not a number"),
        ("weighted", {}, {"retries": "1.5"}, "whole number"),
        ("weighted", {}, {"retries": "11"}, "0 to 10"),
        ("weighted", {1: "-1"}, {}, "Weights must be whole numbers"),
        ("weighted", {1: "1e9"}, {}, "Weights must be whole numbers"),
        ("weighted", {}, {"total_s": "0"}, "greater than 0"),
        ("weighted", {}, {"idle_s": "nan"}, "must be a number"),
        ("weighted", {}, {"backoff_ms": "-5"}, "at least 0"),
        ("random", {}, {}, "Strategy must be one of"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_form(strategy, weights, [], fields)


def test_engine_fallback_is_stored_audited_routed_and_removable(engine: Engine, deps: dict[str, int]) -> None:
    box = SecretBox("unit-test-secret-key-0123456789abcdef")
    assert get_rule(engine, "chat").engine_fallback is None
    assert save_rule(engine, alias="chat", change=change(deps, strategy="engine_aware"), actor="t") is True
    with session(engine) as s:
        assert "engine_fallback" not in s.exec(select(ModelAlias).where(ModelAlias.alias == "chat")).one().settings
    route = load_route_table(engine, box).get("chat")
    assert route is not None and route.policy.engine_fallback == "least_busy"  # nothing stored: the default

    pinned = change(deps, strategy="engine_aware", engine_fallback="lowest_cost")
    assert save_rule(engine, alias="chat", change=pinned, actor="ops") is True
    assert get_rule(engine, "chat").engine_fallback == "lowest_cost"
    event = audits(engine)[-1]
    assert event.before and event.after
    assert (event.before["engine_fallback"], event.after["engine_fallback"]) == (None, "lowest_cost")
    route = load_route_table(engine, box).get("chat")
    assert route is not None and (route.strategy, route.policy.engine_fallback) == ("engine_aware", "lowest_cost")
    assert save_rule(engine, alias="chat", change=pinned, actor="ops") is False

    # Set explicitly it stays under another strategy (unused there); None removes it.
    save_rule(engine, alias="chat", change=change(deps, engine_fallback="weighted"), actor="t")
    assert get_rule(engine, "chat").engine_fallback == "weighted"
    save_rule(engine, alias="chat", change=change(deps), actor="t")
    with session(engine) as s:
        assert "engine_fallback" not in s.exec(select(ModelAlias).where(ModelAlias.alias == "chat")).one().settings
    for bad in ("engine_aware", "random", ""):
        with pytest.raises(ConfigError, match="engine-aware fallback must be one of: weighted, least_busy"):
            save_rule(engine, alias="chat", change=change(deps, engine_fallback=bad), actor="t")


def test_a_stored_engine_fallback_no_gateway_would_use_reads_as_none(engine: Engine, deps: dict[str, int]) -> None:
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == "chat")).one()
        row.strategy, row.settings = "engine_aware", {"engine_fallback": "engine_aware"}
        s.add(row)
        s.commit()
    assert get_rule(engine, "chat").engine_fallback is None
    route = load_route_table(engine, SecretBox("unit-test-secret-key-0123456789abcdef")).get("chat")
    assert route is not None and route.policy.engine_fallback == "least_busy"


def test_parse_form_reads_the_engine_fallback_field() -> None:
    got = parse_form("engine_aware", {7: "1"}, [], {"engine_fallback": " lowest_latency "})
    assert (got.strategy, got.engine_fallback) == ("engine_aware", "lowest_latency")
    assert parse_form("engine_aware", {7: "1"}, [], {"engine_fallback": ""}).engine_fallback is None
    with pytest.raises(ConfigError, match="engine-aware fallback must be one of"):
        parse_form("engine_aware", {7: "1"}, [], {"engine_fallback": "engine_aware"})


def test_fallbacks_must_exist_and_not_point_back(engine: Engine, deps: dict[str, int]) -> None:
    for fallbacks, message in [
        (("nope",), "There is no alias 'nope'"),
        (("chat",), "cannot fall back to itself"),
        (("other", "other"), "listed twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            save_rule(engine, alias="chat", change=change(deps, fallbacks=fallbacks), actor="t")

    save_rule(engine, alias="chat", change=change(deps, fallbacks=("other",)), actor="t")
    other = RuleChange("weighted", {deps["c"]: 1}, fallbacks=("chat",))
    with pytest.raises(ConfigError, match="would loop: 'other' → 'chat' → 'other'"):
        save_rule(engine, alias="other", change=other, actor="t")
    assert get_rule(engine, "other").fallbacks == ()


def test_longer_fallback_loops_are_refused_by_name() -> None:
    graph = {"a": [], "b": ["c"], "c": ["a"], "d": ["d"]}
    with pytest.raises(ConfigError, match="'a' → 'b' → 'c' → 'a'"):
        check_fallbacks("a", ["b"], graph)
    # A loop elsewhere (d → d, stored before this check existed) does not block unrelated aliases.
    assert check_fallbacks("a", ["d"], graph) == ("d",)


def test_link_weight_changes_are_audited_with_before_and_after(engine: Engine, deps: dict[str, int]) -> None:
    set_weight(engine, alias="chat", deployment_id=deps["b"], weight=0, actor="t")
    add_link(engine, alias="chat", deployment_id=deps["c"], weight=2, actor="t")
    rule = remove_link(engine, alias="chat", deployment_id=deps["a"], actor="t")

    assert [(x.deployment_id, x.weight) for x in rule.links] == [(deps["b"], 0), (deps["c"], 2)]
    drained, added, removed = audits(engine)[-3:]
    assert drained.action == "route.weight" and drained.before and drained.after
    assert [d["weight"] for d in drained.before["deployments"]] == [3, 1]
    assert [d["weight"] for d in drained.after["deployments"]] == [3, 0]
    assert added.action == "route.link.add" and added.after and len(added.after["deployments"]) == 3
    assert removed.action == "route.link.remove" and removed.after and len(removed.after["deployments"]) == 2
    with pytest.raises(ConfigError, match="not linked"):
        set_weight(engine, alias="chat", deployment_id=deps["a"], weight=1, actor="t")
    with pytest.raises(ConfigError, match="from 0 to"):
        set_weight(engine, alias="chat", deployment_id=deps["b"], weight=-1, actor="t")


def test_create_alias_validates_names_and_audits(engine: Engine, deps: dict[str, int]) -> None:
    rule = create_alias(engine, alias="  fresh  ", deployment_id=deps["c"], actor="ops")
    assert rule.alias == "fresh" and [x.deployment_id for x in rule.links] == [deps["c"]]
    event = audits(engine)[-1]
    assert (event.action, event.target_id, event.before) == ("alias.create", "fresh", None)
    assert event.after and event.after["alias"] == "fresh"
    for name, message in [
        ("", "1 to 300"),
        ("x" * 301, "1 to 300"),
        ("bad\nname", "control or invisible"),
        ("zero\u200bwidth", "control or invisible"),
        ("fresh", "already exists"),
    ]:
        with pytest.raises(ConfigError, match=message):
            create_alias(engine, alias=name, actor="ops")
    with pytest.raises(ConfigError, match="no longer exists"):
        create_alias(engine, alias="ghost", deployment_id=9999, actor="ops")
    assert "ghost" not in {r.alias for r in list_rules(engine)}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_alias_names_are_stored_verbatim(engine: Engine, deps: dict[str, int], name: str) -> None:
    create_alias(engine, alias=name, deployment_id=deps["a"], actor="ops")
    assert get_rule(engine, name).alias == name
    save_rule(engine, alias="chat", change=change(deps, fallbacks=(name,)), actor="ops")
    assert get_rule(engine, "chat").fallbacks == (name,)
    assert audits(engine)[-1].after["fallbacks"] == [name]  # type: ignore[index]


def test_delete_alias_is_refused_while_a_fallback_and_audited(engine: Engine, deps: dict[str, int]) -> None:
    save_rule(engine, alias="chat", change=change(deps, fallbacks=("other",)), actor="t")
    with pytest.raises(ConfigError, match="'other' is a fallback of 'chat'"):
        delete_alias(engine, alias="other", actor="t")

    delete_alias(engine, alias="chat", actor="ops")
    assert [r.alias for r in list_rules(engine)] == ["other"]
    with session(engine) as s:
        assert len(list(s.exec(select(AliasDeployment)))) == 1
        assert len(list(s.exec(select(Deployment)))) == 3  # deployments stay
    event = audits(engine)[-1]
    assert (event.action, event.target_id, event.after) == ("alias.delete", "chat", None)
    assert event.before and [d["weight"] for d in event.before["deployments"]] == [3, 1]
    with pytest.raises(ConfigError, match="no alias"):
        delete_alias(engine, alias="chat", actor="ops")


def test_gateway_defaults_come_from_settings() -> None:
    defaults = gateway_defaults(Settings(upstream_connect_timeout_s=3.0, retry_attempts=4))
    assert defaults["connect_s"] == 3.0 and defaults["retries"] == 4 and defaults["total_s"] == 600.0


class PageHarness:
    """The page's two states in one state tree, with the signed-in user and the app context faked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: Engine, role: str, alias: str = "chat") -> None:

        self.user = SessionUser(1, f"{role}@example.com", role, role)
        balancer = Balancer(failure_threshold=3, cooldown_s=30, rng=random.Random(1))
        ctx = SimpleNamespace(engine=engine, settings=Settings(), runtime=SimpleNamespace(balancer=balancer))

        async def user(_state: object) -> SessionUser:
            return self.user

        monkeypatch.setattr(module, "current_user", user)
        monkeypatch.setattr(module, "get_context", lambda: ctx)
        monkeypatch.setattr(module.RoutingState, "_alias_param", lambda _self: alias)
        root = State(_reflex_internal_init=True)
        self.page = root.substates[module.RoutingState.get_name()]
        self.edit = root.substates[module.RoutingEditState.get_name()]
        self.module = module

    async def call(self, handler: str, *args: object) -> object:
        for state in (self.page, self.edit):
            found = type(state).event_handlers.get(handler)
            if found is not None:
                return await found.fn(state, *args)
        raise AssertionError(handler)


async def test_the_page_loads_the_rule_and_its_preview(monkeypatch: pytest.MonkeyPatch, engine: Engine, deps):
    h = PageHarness(monkeypatch, engine, "viewer")
    await h.call("load")
    assert (h.page.can_edit, h.page.found, h.page.error) == (False, True, "")
    assert [row["weight"] for row in h.page.links] == ["3", "1"]
    assert h.page.hints["connect_s"] == "inherits gateway default 5 s"
    assert h.page.hints["retries"] == "inherits gateway default 2"
    assert sum(int(r["count"].split()[0]) for r in h.page.preview_rows) == 100
    await h.call("run_preview")
    assert h.page.preview_seed == 1 and h.page.preview_summary.startswith("Next 100 requests")


async def test_a_viewer_cannot_change_anything(monkeypatch: pytest.MonkeyPatch, engine: Engine, deps) -> None:
    h = PageHarness(monkeypatch, engine, "viewer")
    await h.call("load")
    count = len(audits(engine))
    await h.call("set_weight", str(deps["a"]), "0")
    await h.call("save")
    await h.call("create_alias", {"alias": "sneaky"})
    await h.call("delete_alias")
    assert h.page.error == "Only operators and admins can change routing rules."
    assert [x.weight for x in get_rule(engine, "chat").links] == [3, 1]
    assert len(audits(engine)) == count and "sneaky" not in {r.alias for r in list_rules(engine)}


async def test_an_operator_saves_the_draft_as_one_change(monkeypatch: pytest.MonkeyPatch, engine: Engine, deps):
    h = PageHarness(monkeypatch, engine, "operator")
    await h.call("load")
    count = len(audits(engine))
    await h.call("set_weight", str(deps["b"]), "0")
    await h.call("add_link", str(deps["c"]))
    await h.call("add_fallback", "other")
    await h.call("set_strategy", "lowest_cost")
    await h.call("set_field", "retries", "abc")
    await h.call("save")
    assert "not a number" in h.page.error and len(audits(engine)) == count

    await h.call("set_field", "retries", "4")
    await h.call("set_field", "total_s", "90")
    await h.call("run_preview")  # the draft, unsaved: b drained, c added
    assert h.page.preview_rows[1]["note"] == "weight 0 (drained): gets no traffic"
    assert len(audits(engine)) == count
    await h.call("save")
    assert (h.page.error, h.page.notice) == ("", "Saved; gateways use it within 5 s.")
    rule = get_rule(engine, "chat")
    assert [(x.deployment_id, x.weight) for x in rule.links] == [(deps["a"], 3), (deps["b"], 0), (deps["c"], 1)]
    assert (rule.strategy, rule.fallbacks, rule.retries, rule.timeouts) == (
        "lowest_cost",
        ("other",),
        4,
        {"total_s": 90},
    )
    assert len(audits(engine)) == count + 1
    await h.call("save")
    assert h.page.notice == "Nothing changed."


async def test_an_operator_picks_the_engine_aware_fallback(monkeypatch: pytest.MonkeyPatch, engine: Engine, deps):
    h = PageHarness(monkeypatch, engine, "operator")
    await h.call("load")
    assert h.page.fields["engine_fallback"] == ""
    assert h.page.hints["engine_fallback"] == "used when no deployment has an engine sample newer than 20 s"
    await h.call("set_strategy", "engine_aware")
    await h.call("set_field", "engine_fallback", "lowest_cost")
    await h.call("save")
    assert (h.page.error, h.page.notice) == ("", "Saved; gateways use it within 5 s.")
    rule = get_rule(engine, "chat")
    assert (rule.strategy, rule.engine_fallback) == ("engine_aware", "lowest_cost")
    assert h.page.fields["engine_fallback"] == "lowest_cost"  # the reloaded page shows what is stored

    await h.call("set_field", "engine_fallback", "engine_aware")
    await h.call("save")
    assert "engine-aware fallback must be one of" in h.page.error
    assert get_rule(engine, "chat").engine_fallback == "lowest_cost"

    viewer = PageHarness(monkeypatch, engine, "viewer")
    await viewer.call("load")
    await viewer.call("set_field", "engine_fallback", "weighted")
    assert viewer.page.fields["engine_fallback"] == "lowest_cost"
    assert viewer.page.error == "Only operators and admins can change routing rules."


async def test_creating_a_hostile_alias_redirects_to_it_encoded(monkeypatch: pytest.MonkeyPatch, engine: Engine, deps):
    h = PageHarness(monkeypatch, engine, "admin")
    await h.call("load")
    spec = await h.call("create_alias", {"alias": HOSTILE[1], "deployment": str(deps["a"])})
    assert h.edit.create_error == "" and get_rule(engine, HOSTILE[1]).links[0].deployment_id == deps["a"]
    assert "/config/routing?alias=%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E" in repr(spec)
    await h.call("create_alias", {"alias": HOSTILE[1]})
    assert "already exists" in h.edit.create_error
