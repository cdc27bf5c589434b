"""Spend administration: resetting a budget's count for the current period and granting temporary increases.
Who may (LLMC_SPEND_ADMIN_ROLE), what is recorded and audited (with the reason), how the gateway's plan and
the Limits page read it afterwards, and a readable error for every bad input with nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Budget, User
from llm_console.db.tier_tables import BudgetIncrease, LimitTier, SpendReset, TierAssignment
from llm_console.limits.plan import Reset, load_plan
from llm_console.services.keys import create_key
from llm_console.services.limits_view import load_limits_page
from llm_console.services.spend import SpendQuery
from llm_console.services.spend_admin import (
    SpendAdminError,
    SpendAdminPermissionError,
    active_increases,
    grant_increase,
    may_administer_spend,
    recent_resets,
    reset_spend,
    revoke_increase,
)
from llm_console.settings import Settings
from tests.db.seeding import rec, write

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, env="dev", _env_file=None, **kw)  # type: ignore[call-arg]


@dataclass
class World:
    engine: Engine
    settings: Settings
    ana: int  # a user with a daily budget of $1 and no monthly budget
    bo: int  # a user on the "Team" tier (daily $2, monthly $20), no budget of their own
    key: int  # ana's key, without any budget


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> World:
    with session(engine) as s:
        ana, bo = User(email="ana@example.com", role="member"), User(email="bo@example.com", role="member")
        tier = LimitTier(name="Team", daily_usd=2.0, monthly_usd=20.0)
        s.add_all([ana, bo, tier])
        s.flush()
        assert ana.id and bo.id and tier.id
        s.add(Budget(entity_type="user", entity_id=ana.id, daily_usd=1.0))
        s.add(TierAssignment(entity_type="user", entity_id=bo.id, tier_id=tier.id))
        s.commit()
        ids = (ana.id, bo.id)
    key = create_key(engine, name="ci", actor="t", user_id=ids[0]).id
    return World(engine, settings(tmp_path), ids[0], ids[1], key)


def reset(w: World, entity_id: int, *, role: str = "admin", at: datetime = NOW, **kw: Any) -> Any:
    args: dict[str, Any] = {"entity_type": "user", "period": "day", "reason": "refunded a runaway batch job"}
    args.update(kw)
    return reset_spend(w.engine, w.settings, role=role, actor="root@example.com", entity_id=entity_id, now=at, **args)


def grant(w: World, entity_id: int, *, role: str = "admin", at: datetime = NOW, **kw: Any) -> Any:
    args: dict[str, Any] = {"entity_type": "user", "period": "day", "amount_usd": 1.5, "hours": 2, "reason": "demo day"}
    args.update(kw)
    return grant_increase(
        w.engine, w.settings, role=role, actor="root@example.com", entity_id=entity_id, now=at, **args
    )


def audit(engine: Engine) -> list[tuple[str, str, Any, Any]]:
    with session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        return [(r.action, r.target_id, r.before, r.after) for r in rows if r.target_type == "spend"]


def rows(engine: Engine) -> tuple[int, int]:
    with session(engine) as s:
        resets = s.exec(select(func.count()).select_from(SpendReset)).one()
        increases = s.exec(select(func.count()).select_from(BudgetIncrease)).one()
    return int(resets), int(increases)


def test_the_setting_allows_admin_or_operator_and_nothing_lower(tmp_path: Path) -> None:
    for value in ("member", "viewer", "root", ""):
        with pytest.raises(ValidationError):
            settings(tmp_path, spend_admin_role=value)
    default, operators = settings(tmp_path), settings(tmp_path, spend_admin_role="operator")
    allowed = {
        role: (may_administer_spend(role, default), may_administer_spend(role, operators))
        for role in ("admin", "operator", "member", "viewer", "", "superuser")
    }
    assert allowed == {
        "admin": (True, True),
        "operator": (False, True),
        "member": (False, False),
        "viewer": (False, False),
        "": (False, False),
        "superuser": (False, False),
    }


@pytest.mark.parametrize("role", ["operator", "member", "viewer"])
def test_refused_roles_write_nothing(world: World, role: str) -> None:
    with pytest.raises(SpendAdminPermissionError, match="Only admins can reset spend"):
        reset(world, world.ana, role=role)
    with pytest.raises(SpendAdminPermissionError):
        grant(world, world.ana, role=role)
    increase = grant(world, world.ana)
    with pytest.raises(SpendAdminPermissionError):
        revoke_increase(world.engine, world.settings, role=role, actor="x", increase_id=increase.id, reason="nope")
    assert rows(world.engine) == (0, 1) and len(active_increases(world.engine, NOW)) == 1


def test_operators_may_when_the_setting_says_so(world: World, tmp_path: Path) -> None:
    world.settings = settings(tmp_path, spend_admin_role="operator")
    assert reset(world, world.ana, role="operator").actor == "root@example.com"
    grant(world, world.ana, role="operator")
    with pytest.raises(SpendAdminPermissionError, match="Only operators and admins"):
        reset(world, world.ana, role="member")


def test_a_reset_records_what_the_budget_counted_and_the_count_restarts(world: World) -> None:
    # Yesterday $0.50; today $0.70 before the first reset, $0.20 between the resets, $0.15 after them.
    write(world.engine, rec(NOW - timedelta(days=1), user_id=world.ana, cost=0.5))
    write(world.engine, rec(NOW - timedelta(hours=2), user_id=world.ana, cost=0.7))
    first = reset(world, world.ana)
    assert (first.period, first.period_id, first.spent_before_usd) == ("day", "2026-03-04", pytest.approx(0.7))
    assert (first.entity_name, first.reason, first.reset_at) == ("ana@example.com", "refunded a runaway batch job", NOW)
    write(world.engine, rec(NOW + timedelta(minutes=5), user_id=world.ana, cost=0.2))
    second = reset(world, world.ana, at=NOW + timedelta(minutes=30), reason="second look")
    assert second.spent_before_usd == pytest.approx(0.2)  # counted since the first reset only
    write(world.engine, rec(NOW + timedelta(minutes=40), user_id=world.ana, cost=0.15))
    with world.engine.connect() as conn:
        plan = load_plan(conn, world.key, world.ana, None, now=(NOW + timedelta(hours=1)).timestamp())
    user = plan.entity("user", world.ana)
    assert user is not None and user.daily_reset == Reset((NOW + timedelta(minutes=30)).timestamp(), pytest.approx(0.9))  # type: ignore[arg-type]
    page = load_limits_page(
        world.engine, user_id=world.ana, role="member", query=SpendQuery(), now=NOW + timedelta(hours=1)
    )
    (mine,) = [u for u in page.mine if u.entity_type == "user"]
    # Today's $1.05 less the $0.90 counted before the latest reset; the month is not reset: $1.55.
    assert mine.spend.day_usd == pytest.approx(0.15) and mine.spend.month_usd == pytest.approx(1.55)
    assert (mine.day_reset_at, mine.month_reset_at) == (NOW + timedelta(minutes=30), None)
    assert [r.reason for r in recent_resets(world.engine)] == ["second look", "refunded a runaway batch job"]
    events = audit(world.engine)
    assert [e[:2] for e in events] == [("spend.reset", f"user:{world.ana}")] * 2
    assert events[0][3] == {
        "period": "day",
        "period_id": "2026-03-04",
        "spent_before_usd": pytest.approx(0.7),
        "reason": "refunded a runaway batch job",
    }


def test_an_increase_adds_to_the_tier_budget_and_expires_by_itself(world: World) -> None:
    first = grant(world, world.bo, amount_usd=1.5, hours=2)
    grant(world, world.bo, amount_usd=0.5, hours=1, reason="and a bit more")
    assert (first.entity_name, first.expires_at, first.revoked_at) == ("bo@example.com", NOW + timedelta(hours=2), None)

    def daily(at: datetime) -> tuple[float | None, float, float | None]:
        with world.engine.connect() as conn:
            plan = load_plan(conn, world.key, world.bo, None, now=at.timestamp())
        user = plan.entity("user", world.bo)
        assert user is not None
        return user.daily_usd, user.daily_increase_usd, plan.valid_until

    hour = timedelta(hours=1)
    assert daily(NOW) == (2.0, 2.0, (NOW + hour).timestamp())  # the tier's $2 plus $1.50 and $0.50
    assert daily(NOW + hour) == (2.0, 1.5, (NOW + 2 * hour).timestamp())
    assert daily(NOW + 2 * hour) == (2.0, 0.0, None)
    assert [i.amount_usd for i in active_increases(world.engine, NOW + 0.5 * hour)] == [0.5, 1.5]  # soonest first
    assert active_increases(world.engine, NOW + 2 * hour) == []
    page = load_limits_page(world.engine, user_id=world.bo, role="member", query=SpendQuery(), now=NOW)
    (mine,) = [u for u in page.mine if u.entity_type == "user"]
    assert (mine.tier, mine.spend.daily_budget_usd, mine.day_increase_usd) == ("Team", 4.0, 2.0)
    assert mine.spend.monthly_budget_usd == 20.0
    action, target, _, after = audit(world.engine)[0]
    assert (action, target) == ("budget.increase", f"user:{world.bo}")
    assert (after["amount_usd"], after["budget_usd"], after["reason"]) == (1.5, 2.0, "demo day")


def test_a_revoked_increase_ends_at_once(world: World) -> None:
    increase = grant(world, world.ana)
    later = NOW + timedelta(minutes=10)
    revoke_increase(
        world.engine, world.settings, role="admin", actor="root", increase_id=increase.id, reason="demo over", now=later
    )
    assert active_increases(world.engine, later) == []
    with world.engine.connect() as conn:
        user = load_plan(conn, world.key, world.ana, None, now=later.timestamp()).entity("user", world.ana)
    assert user is not None and user.daily_increase_usd == 0.0
    action, _, before, after = audit(world.engine)[-1]
    assert action == "budget.increase.revoke" and before["id"] == increase.id and after["reason"] == "demo over"
    for increase_id, message, at in (
        (increase.id, "already revoked", later),
        (grant(world, world.ana, hours=1).id, "already expired", NOW + timedelta(hours=1)),
        (999, "does not exist", later),
        ("1", "does not exist", later),
    ):
        with pytest.raises(SpendAdminError, match=message):
            revoke_increase(
                world.engine, world.settings, role="admin", actor="r", increase_id=increase_id, reason="why", now=at
            )


@pytest.mark.parametrize(
    ("action", "changes", "message"),
    [
        ("reset", {"entity_id": 999}, "There is no user with id 999"),
        ("reset", {"entity_type": "default", "entity_id": 0}, "Choose a user, a team or a key"),
        ("reset", {"entity_type": "key"}, r"ci \(sk-llmc-.*\) has no daily budget \(of its own or from its tier\)"),
        ("reset", {"period": "month"}, "ana@example.com has no monthly budget"),
        ("reset", {"period": "week"}, "daily or the monthly budget"),
        ("reset", {"reason": "  ab "}, "reason of 3 to 500 characters"),
        ("reset", {"reason": "x" * 501}, "reason of 3 to 500"),
        ("reset", {"reason": None}, "reason of 3"),
        ("grant", {"entity_type": "key"}, "has no daily budget"),
        ("grant", {"amount_usd": 0}, "amount in USD must be above 0"),
        ("grant", {"amount_usd": -1}, "amount in USD must be above 0"),
        ("grant", {"amount_usd": 2e12}, "at most 1e\\+12"),
        ("grant", {"amount_usd": float("nan")}, "amount in USD must be a number"),
        ("grant", {"amount_usd": True}, "must be a number"),
        ("grant", {"amount_usd": "5"}, "must be a number"),
        ("grant", {"hours": 0}, "duration in hours must be above 0 and at most 2160"),
        ("grant", {"hours": 24 * 90 + 0.5}, "at most 2160"),
        ("grant", {"hours": float("inf")}, "must be a number"),
        ("grant", {"reason": ""}, "reason"),
    ],
)
def test_bad_input_gets_a_readable_error_and_writes_nothing(
    world: World, action: str, changes: dict[str, Any], message: str
) -> None:
    call = reset if action == "reset" else grant
    changes = {"entity_id": world.key if changes.get("entity_type") == "key" else world.ana, **changes}
    entity_id = changes.pop("entity_id")
    with pytest.raises(SpendAdminError, match=message):
        call(world, entity_id, **changes)
    assert rows(world.engine) == (0, 0) and audit(world.engine) == []
