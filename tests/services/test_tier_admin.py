"""Limit tiers as admins manage them: create, change (which changes everyone on the tier), assign, delete;
admins only, audited with before and after, readable errors for every bad input, nothing half-written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, RateLimit, Team, User
from llm_console.db.tier_tables import LimitTier, TierAssignment
from llm_console.limits.plan import load_plan
from llm_console.services.keys import create_key
from llm_console.services.limits_admin import BudgetLimits, RateLimits
from llm_console.services.limits_view import load_limits_page
from llm_console.services.spend import SpendQuery
from llm_console.services.tier_admin import (
    TierError,
    TierPermissionError,
    TierView,
    assign_tier,
    delete_tier,
    list_tiers,
    save_tier,
    tier_assignments,
)


@dataclass
class World:
    engine: Engine
    ids: dict[str, int]


@pytest.fixture
def world(engine: Engine) -> World:
    ids: dict[str, int] = {}
    with session(engine) as s:
        for name in ("ana", "bo"):
            user = User(email=f"{name}@example.com", role="member")
            s.add(user)
            s.flush()
            ids[name] = user.id or 0
        team = Team(name="Research")
        s.add(team)
        s.flush()
        ids["team"] = team.id or 0
        s.commit()
    ids["key"] = create_key(engine, name="ci", actor="t", user_id=ids["ana"]).id
    ids["key2"] = create_key(engine, name="batch", actor="t", user_id=ids["bo"]).id
    return World(engine, ids)


def save(engine: Engine, tier_id: int | None = None, role: str = "admin", **kw: Any) -> TierView:
    values: dict[str, Any] = {
        "name": "Team",
        "description": "for teams",
        "rank": 1,
        "limits": RateLimits(rpm=60),
        "budget": BudgetLimits(daily_usd=5.0),
    }
    values.update(kw)
    return save_tier(engine, role=role, actor="root@example.com", tier_id=tier_id, **values)


def audit(engine: Engine) -> list[tuple[str, str, str, Any, Any]]:
    with session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        return [(r.action, r.target_type, r.target_id, r.before, r.after) for r in rows if r.action.startswith("tier.")]


def count(engine: Engine, table: type[Any]) -> int:
    with session(engine) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def test_admins_create_list_and_change_tiers_audited(engine: Engine) -> None:
    free = save(engine, name="Free", rank=0, limits=RateLimits(rpm=10), budget=BudgetLimits(daily_usd=1.0))
    save(engine, name="Enterprise", rank=2, limits=RateLimits(), budget=BudgetLimits())
    team = save(engine)
    assert [t.name for t in list_tiers(engine)] == ["Free", "Team", "Enterprise"]  # by rank
    assert free.holders == {"user": 0, "team": 0, "key": 0}
    assert (free.limits, free.budget, free.updated_by) == (
        RateLimits(rpm=10),
        BudgetLimits(daily_usd=1.0),
        "root@example.com",
    )
    changed = save(engine, team.id, limits=RateLimits(rpm=120, tpm=100_000), budget=BudgetLimits(5.0, 100.0))
    assert (changed.id, changed.limits.rpm, changed.budget.monthly_usd) == (team.id, 120, 100.0)
    save(engine, team.id, limits=RateLimits(rpm=120, tpm=100_000), budget=BudgetLimits(5.0, 100.0))  # no change
    events = audit(engine)
    assert [e[0] for e in events] == ["tier.create"] * 3 + ["tier.update"]
    _, target_type, target_id, before, after = events[-1]
    assert (target_type, target_id) == ("tier", str(team.id))
    assert (before["rpm"], before["tpm"], before["monthly_usd"]) == (60, None, None)
    assert (after["rpm"], after["tpm"], after["monthly_usd"]) == (120, 100_000, 100.0)


@pytest.mark.parametrize("role", ["viewer", "member", "operator", "", "root"])
def test_only_admins_change_tiers_or_who_is_on_them(world: World, role: str) -> None:
    tier = save(world.engine)
    with pytest.raises(TierPermissionError, match="Only admins"):
        save(world.engine, role=role, name="Free")
    with pytest.raises(TierPermissionError):
        save(world.engine, tier.id, role=role, limits=RateLimits(rpm=1))
    with pytest.raises(TierPermissionError):
        assign_tier(world.engine, role=role, actor="x", entity_type="user", entity_id=world.ids["ana"], tier_id=tier.id)
    with pytest.raises(TierPermissionError):
        delete_tier(world.engine, role=role, actor="x", tier_id=tier.id)
    assert [t.limits.rpm for t in list_tiers(world.engine)] == [60]
    assert count(world.engine, TierAssignment) == 0 and len(audit(world.engine)) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "  "}, "Give the tier a name"),
        ({"name": "x" * 61}, "at most 60"),
        ({"name": "Free\x00"}, "printable"),
        ({"name": "team"}, "A tier named 'Team' already exists"),
        ({"description": "d" * 301}, "at most 300"),
        ({"rank": -1}, "rank must be a whole number from 0 to 1000"),
        ({"rank": True}, "rank"),
        ({"rank": 1.5}, "rank"),
        ({"limits": RateLimits(rpm=0)}, "RPM must be a whole number above 0"),
        ({"limits": RateLimits(tpm=-5)}, "TPM must be"),
        ({"budget": BudgetLimits(daily_usd=0.0)}, "above 0 USD"),
        ({"budget": BudgetLimits(monthly_usd=float("nan"))}, "amount of USD"),
        ({"budget": BudgetLimits(daily_usd=1e13)}, "between 0 and"),
    ],
)
def test_bad_tiers_get_readable_errors_and_write_nothing(engine: Engine, changes: dict[str, Any], message: str) -> None:
    save(engine)
    with pytest.raises(TierError, match=message):
        save(engine, **{"name": "Pro", **changes})
    assert count(engine, LimitTier) == 1 and len(audit(engine)) == 1


def test_changing_a_tier_that_is_gone_is_refused(engine: Engine) -> None:
    with pytest.raises(TierError, match="no longer exists"):
        save(engine, 999)


def test_assignments_count_holders_and_are_audited(world: World) -> None:
    free = save(world.engine, name="Free", rank=0)
    team = save(world.engine, name="Team", rank=1)
    ana, key = world.ids["ana"], world.ids["key"]

    def assign(entity_type: str, entity_id: int, tier_id: int | None) -> None:
        assign_tier(
            world.engine, role="admin", actor="root", entity_type=entity_type, entity_id=entity_id, tier_id=tier_id
        )

    assign("user", ana, free.id)
    assign("key", key, free.id)
    assign("team", world.ids["team"], team.id)
    assign("user", ana, free.id)  # unchanged: nothing written
    holders = {t.name: t.holders for t in list_tiers(world.engine)}
    assert holders == {"Free": {"user": 1, "team": 0, "key": 1}, "Team": {"user": 0, "team": 1, "key": 0}}
    assign("user", ana, team.id)
    assign("key", key, None)
    assign("key", key, None)  # already off: nothing written
    assert tier_assignments(world.engine) == {("user", ana): team.id, ("team", world.ids["team"]): team.id}
    events = [(a, t, before, after) for a, _, t, before, after in audit(world.engine) if a != "tier.create"]
    free_ref, team_ref = {"tier_id": free.id, "tier": "Free"}, {"tier_id": team.id, "tier": "Team"}
    assert events == [
        ("tier.assign", f"user:{ana}", None, free_ref),
        ("tier.assign", f"key:{key}", None, free_ref),
        ("tier.assign", f"team:{world.ids['team']}", None, team_ref),
        ("tier.assign", f"user:{ana}", free_ref, team_ref),
        ("tier.unassign", f"key:{key}", free_ref, None),
    ]


@pytest.mark.parametrize(
    ("entity_type", "entity_id", "tier_id", "message"),
    [
        ("user", 999, 1, "There is no user with id 999"),
        ("key", 999, 1, "There is no key with id 999"),
        ("default", 0, 1, "Choose a user, a team or a key"),
        ("org", 1, 1, "Choose a user, a team or a key"),
        ("user", -1, 1, "whole number id"),
        ("user", "1", 1, "whole number id"),
        ("user", 0, 999, "no longer exists"),
    ],
)
def test_bad_assignments_get_readable_errors(
    world: World, entity_type: str, entity_id: Any, tier_id: int, message: str
) -> None:
    save(world.engine)
    entity_id = world.ids["ana"] if entity_id == 0 else entity_id
    with pytest.raises(TierError, match=message):
        assign_tier(
            world.engine, role="admin", actor="root", entity_type=entity_type, entity_id=entity_id, tier_id=tier_id
        )
    assert count(world.engine, TierAssignment) == 0


def test_a_tier_in_use_cannot_be_deleted(world: World) -> None:
    tier = save(world.engine)
    for entity_type, name in (("user", "ana"), ("user", "bo"), ("key", "key")):
        assign_tier(
            world.engine,
            role="admin",
            actor="root",
            entity_type=entity_type,
            entity_id=world.ids[name],
            tier_id=tier.id,
        )
    with pytest.raises(TierError, match=r"The tier 'Team' is in use \(2 users, 1 key\); move them"):
        delete_tier(world.engine, role="admin", actor="root", tier_id=tier.id)
    for entity_type, name in (("user", "ana"), ("user", "bo"), ("key", "key")):
        assign_tier(
            world.engine, role="admin", actor="root", entity_type=entity_type, entity_id=world.ids[name], tier_id=None
        )
    delete_tier(world.engine, role="admin", actor="root", tier_id=tier.id)
    assert list_tiers(world.engine) == []
    assert audit(world.engine)[-1][:3] == ("tier.delete", "tier", str(tier.id))
    with pytest.raises(TierError, match="no longer exists"):
        delete_tier(world.engine, role="admin", actor="root", tier_id=tier.id)


def test_changing_a_tier_changes_the_limits_of_everyone_on_it(world: World) -> None:
    tier = save(world.engine, limits=RateLimits(rpm=60, tpm=10_000))
    for name in ("key", "key2"):
        assign_tier(
            world.engine, role="admin", actor="root", entity_type="key", entity_id=world.ids[name], tier_id=tier.id
        )
    with session(world.engine) as s:  # key2 sets its own RPM: that one field stays its own
        s.add(RateLimit(entity_type="key", entity_id=world.ids["key2"], rpm=5))
        s.commit()

    def rates(name: str) -> tuple[int | None, int | None, str | None]:
        with world.engine.connect() as conn:
            (e,) = [e for e in load_plan(conn, world.ids[name], None, None).entities if e.kind == "key"]
        return e.rpm, e.tpm, e.tier

    assert (rates("key"), rates("key2")) == ((60, 10_000, "Team"), (5, 10_000, "Team"))
    save(world.engine, tier.id, limits=RateLimits(rpm=2, tpm=500))
    assert (rates("key"), rates("key2")) == ((2, 500, "Team"), (5, 500, "Team"))


def test_the_limits_page_shows_the_effective_limits_and_the_tier(world: World) -> None:
    tier = save(world.engine, limits=RateLimits(rpm=60, tpm=10_000), budget=BudgetLimits(daily_usd=5.0))
    with session(world.engine) as s:
        s.add(RateLimit(entity_type="default", entity_id=0, rpm=100))
        s.add(RateLimit(entity_type="key", entity_id=world.ids["key"], tpm=777))
        s.commit()
    for entity_type, name in (("key", "key"), ("user", "bo")):
        assign_tier(
            world.engine,
            role="admin",
            actor="root",
            entity_type=entity_type,
            entity_id=world.ids[name],
            tier_id=tier.id,
        )
    page = load_limits_page(world.engine, user_id=world.ids["ana"], role="admin", query=SpendQuery())
    rows = {(u.entity_type, u.entity_id): u for u in page.rows}
    key, bo, key2 = rows[("key", world.ids["key"])], rows[("user", world.ids["bo"])], world.ids["key2"]
    # The key's own TPM (777) over the tier's; RPM from the tier, not the global default's 100.
    assert (key.limits, key.limits_from_default, key.tier) == (RateLimits(rpm=60, tpm=777), False, "Team")
    # Bo has no limits of his own: he is listed for his tier, with its budget.
    assert (bo.limits, bo.tier, bo.spend.daily_budget_usd, bo.status) == (
        RateLimits(rpm=60, tpm=10_000),
        "Team",
        5.0,
        "ok",
    )
    assert ("key", key2) not in rows  # no row, no tier: nothing configured (the default applies to it)
