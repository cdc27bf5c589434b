"""The one rate-limit writer and the Limits page's edit: validation, audit events, no-op writes, clearing,
the global default, finding an entity by name, admin-only, and one transaction for limits and budget."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Budget, RateLimit, Team, User
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.limits_admin import (
    BudgetLimits,
    EntityRef,
    LimitsError,
    LimitsPermissionError,
    RateLimits,
    current_limits,
    find_entity,
    put_limits,
    save_entity_limits,
)

from .test_keys_admin import Org


@pytest.fixture
def org(engine: Engine) -> Org:
    ids: dict[str, int] = {}
    with session(engine) as s:
        for name, role in (("admin", "admin"), ("operator", "operator"), ("ana", "member")):
            user = User(email=f"{name}@Example.com", role=role)
            s.add(user)
            s.flush()
            ids[name] = user.id or 0
        team = Team(name="Research")
        s.add(team)
        s.flush()
        ids["team"] = team.id or 0
        s.commit()
    ids["key"] = create_key(engine, name="ci", actor="t", user_id=ids["ana"]).id
    ids["twin1"] = create_key(engine, name="twin", actor="t").id
    ids["twin2"] = create_key(engine, name="twin", actor="t").id
    return Org(engine, ids, {})


def events(engine: Engine, prefix: str = "limits.") -> list[tuple[str, str, object, object]]:
    with session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    return [(e.action, e.target_id, e.before, e.after) for e in rows if e.action.startswith(prefix)]


def stored(engine: Engine, entity_type: str, entity_id: int) -> RateLimits | None:
    with session(engine) as s:
        row = s.get(RateLimit, (entity_type, entity_id))
        return None if row is None else RateLimits.of(row)


def put(engine: Engine, entity_type: str, entity_id: int, limits: RateLimits) -> None:
    with session(engine) as s:
        put_limits(s, entity_type, entity_id, limits, actor="boss")
        s.commit()


def test_set_change_and_clear_are_audited_and_an_unchanged_write_is_not(org: Org) -> None:
    team = org.ids["team"]
    put(org.engine, "team", team, RateLimits(rpm=60))
    put(org.engine, "team", team, RateLimits(rpm=60))  # unchanged: no write, no event
    put(org.engine, "team", team, RateLimits(rpm=60, tpd=1_000_000))
    assert stored(org.engine, "team", team) == RateLimits(rpm=60, tpd=1_000_000)
    put(org.engine, "team", team, RateLimits())
    put(org.engine, "team", team, RateLimits())  # nothing to clear: no event
    assert stored(org.engine, "team", team) is None
    empty = {"rpm": None, "tpm": None, "rpd": None, "tpd": None}
    target = f"team:{team}"
    assert events(org.engine) == [
        ("limits.set", target, None, {**empty, "rpm": 60}),
        ("limits.set", target, {**empty, "rpm": 60}, {**empty, "rpm": 60, "tpd": 1_000_000}),
        ("limits.clear", target, {**empty, "rpm": 60, "tpd": 1_000_000}, None),
    ]


def test_the_global_default_is_the_default_row(org: Org) -> None:
    put(org.engine, "default", 0, RateLimits(rpm=10, tpm=5000))
    assert stored(org.engine, "default", 0) == RateLimits(rpm=10, tpm=5000)
    assert events(org.engine)[-1][:2] == ("limits.set", "default:0")
    ref, limits, budget = current_limits(org.engine, "default", 0)
    assert (ref.label, limits, budget) == ("Global default", RateLimits(rpm=10, tpm=5000), BudgetLimits())


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (RateLimits(rpm=0), "RPM must be a whole number above 0"),
        (RateLimits(tpm=-5), "TPM must be a whole number above 0"),
        (RateLimits(rpd=1.5), "RPD must be a whole number"),  # type: ignore[arg-type]
        (RateLimits(tpd=True), "TPD must be a whole number"),
        (RateLimits(rpm=10**13), "RPM must be a whole number"),
    ],
)
def test_bad_limits_are_refused_with_the_field_named(org: Org, limits: RateLimits, message: str) -> None:
    with pytest.raises(LimitsError, match=message):
        put(org.engine, "user", org.ids["ana"], limits)
    assert stored(org.engine, "user", org.ids["ana"]) is None and events(org.engine) == []


def test_an_unknown_entity_type_is_refused(org: Org) -> None:
    with pytest.raises(LimitsError, match="Rate limits are set on user, team, key, default"):
        put(org.engine, "planet", 1, RateLimits(rpm=1))


def test_entities_are_found_by_email_name_prefix_or_label(org: Org) -> None:
    with session(org.engine) as s:
        assert find_entity(s, "user", " ANA@example.COM ").entity_id == org.ids["ana"]
        assert find_entity(s, "team", "research").label == "Research"
        key = find_entity(s, "key", "ci")
        assert key.entity_id == org.ids["key"] and key.label.startswith("ci (sk-llmc-")
        prefix = key.label[len("ci (") : -len("…)")]
        assert find_entity(s, "key", prefix).entity_id == org.ids["key"]
        assert find_entity(s, "key", prefix + "…").entity_id == org.ids["key"]
        assert find_entity(s, "key", key.label).entity_id == org.ids["key"]  # as the page shows it
        assert find_entity(s, "default", "ignored").label == "Global default"
        for kind, name, message in [
            ("user", "nobody@example.com", "No user has the email"),
            ("team", "Nope", "No team is named"),
            ("key", "twin", "2 keys are named 'twin': give the key's prefix"),
            ("key", "'; DROP TABLE users; --", "No active key"),
            ("user", "", "Give the user's email"),
            ("user", "x" * 400, "at most 320 characters"),
            ("robot", "r2", "Choose a user, a team or a key"),
        ]:
            with pytest.raises(LimitsError, match=message):
                find_entity(s, kind, name)
    revoke_key(org.engine, org.ids["key"], actor="t")
    with session(org.engine) as s, pytest.raises(LimitsError, match="No active key"):
        find_entity(s, "key", "ci")


def save(org: Org, who: str, limits: RateLimits, budget: BudgetLimits, entity_type: str = "user") -> EntityRef:
    name = "" if entity_type == "default" else "ana@example.com"
    return save_entity_limits(
        org.engine, scope=org.scope(who), entity_type=entity_type, name=name, limits=limits, budget=budget, actor=who
    )


def test_only_admins_save_and_limits_and_budget_go_in_one_transaction(org: Org) -> None:
    for who in ("ana", "operator"):
        with pytest.raises(LimitsPermissionError, match="Only admins"):
            save(org, who, RateLimits(rpm=1), BudgetLimits())
    ref = save(org, "admin", RateLimits(rpm=30), BudgetLimits(daily_usd=2.5))
    assert (ref.entity_type, ref.entity_id) == ("user", org.ids["ana"])
    assert current_limits(org.engine, "user", ref.entity_id)[1:] == (RateLimits(rpm=30), BudgetLimits(2.5, None))
    actions = [e[:2] for e in events(org.engine, "")]
    target = f"user:{ref.entity_id}"
    assert ("limits.set", target) in actions and ("budget.set", target) in actions
    with pytest.raises(LimitsError, match="monthly budget must be between"):  # checked before anything is written
        save(org, "admin", RateLimits(rpm=99), BudgetLimits(None, -1.0))
    with pytest.raises(LimitsError, match="rate limits only"):
        save(org, "admin", RateLimits(rpm=5), BudgetLimits(daily_usd=1.0), entity_type="default")
    assert current_limits(org.engine, "user", ref.entity_id)[1] == RateLimits(rpm=30)
    assert stored(org.engine, "default", 0) is None
    before = len(events(org.engine, ""))
    save(org, "admin", RateLimits(rpm=30), BudgetLimits(daily_usd=2.5))  # the same values again: nothing written
    assert len(events(org.engine, "")) == before
    save(org, "admin", RateLimits(), BudgetLimits())  # all empty: both removed
    with session(org.engine) as s:
        assert s.get(RateLimit, ("user", ref.entity_id)) is None and s.get(Budget, ("user", ref.entity_id)) is None
    assert [e[0] for e in events(org.engine, "")[-2:]] == ["limits.clear", "budget.clear"]
    assert save(org, "admin", RateLimits(rpm=7), BudgetLimits(), entity_type="default").label == "Global default"
    assert stored(org.engine, "default", 0) == RateLimits(rpm=7)


def test_a_keys_form_starts_from_its_own_limits_not_the_default(org: Org) -> None:
    put(org.engine, "default", 0, RateLimits(rpm=10))
    ref, limits, budget = current_limits(org.engine, "key", org.ids["key"])
    assert ref.label.startswith("ci (") and limits == RateLimits() and budget == BudgetLimits()
    with pytest.raises(LimitsError, match="There is no user with id 999"):
        current_limits(org.engine, "user", 999)
