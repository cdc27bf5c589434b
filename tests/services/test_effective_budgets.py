"""Budget use outside the Limits page — the Spend page, budget alerts, the analytics API's user spend — counts
budgets as the gateway enforces them: a tier's budget where the user has none, active increases added, and
the spend since an admin's reset in the current period. Figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from llm_console.db.alert_tables import AlertRule
from llm_console.db.engine import session
from llm_console.db.models import Budget, User
from llm_console.db.queries.names import load_directory
from llm_console.db.tier_tables import LimitTier, TierAssignment
from llm_console.presenters.spend import spend_row
from llm_console.services.alerts_conditions import budgets as budget_alerts
from llm_console.services.effective_budgets import budget_use
from llm_console.services.spend import SpendQuery, user_spend
from llm_console.services.spend_admin import grant_increase, reset_spend
from llm_console.settings import Settings
from tests.db.seeding import rec, write

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def spent(engine: Engine, user_id: int, usd: float, at: datetime) -> None:
    write(engine, rec(at, user_id=user_id, cost=usd))


def test_tier_budgets_increases_and_resets_shape_budget_use(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, env="dev", _env_file=None)  # type: ignore[call-arg]
    with session(engine) as s:
        ana, bo, cy = (User(email=f"{n}@example.com", role="member") for n in ("ana", "bo", "cy"))
        tier = LimitTier(name="Team", daily_usd=2.0, monthly_usd=20.0)
        s.add_all([ana, bo, cy, tier])
        s.flush()
        assert ana.id and bo.id and cy.id and tier.id
        s.add(Budget(entity_type="user", entity_id=ana.id, daily_usd=1.0))  # ana: her own $1 a day
        s.add(TierAssignment(entity_type="user", entity_id=bo.id, tier_id=tier.id))  # bo: the tier's $2 / $20
        s.commit()
        ids = {"ana": ana.id, "bo": bo.id, "cy": cy.id}
    spent(engine, ids["ana"], 0.9, NOW - timedelta(hours=3))
    spent(engine, ids["bo"], 1.8, NOW - timedelta(hours=2))
    spent(engine, ids["cy"], 5.0, NOW - timedelta(hours=1))  # no budget at all

    use = {u.spend.entity_id: u for u in budget_use(engine, "user", NOW)}
    assert (use[ids["bo"]].spend.daily_budget_usd, use[ids["bo"]].spend.monthly_budget_usd) == (2.0, 20.0)
    assert use[ids["bo"]].tier == "Team" and use[ids["bo"]].spend.status == "warning"  # 1.8 of 2.0 = 90 %
    assert use[ids["cy"]].spend.status == "ok" and use[ids["cy"]].spend.daily_budget_usd is None
    rule = AlertRule(name="budgets", kind="budget_warning", scope_type="user", scope_value="")
    flagged = {o.fingerprint for o in budget_alerts(engine, settings, rule, NOW, load_directory(engine))}
    assert flagged == {f"user:{ids['bo']}", f"user:{ids['ana']}"}  # 90 % of the tier's $2, 90 % of her own $1

    admin = {"role": "admin", "actor": "root@example.com", "entity_type": "user", "now": NOW}
    grant_increase(engine, settings, **admin, entity_id=ids["bo"], period="day", amount_usd=2.0, hours=2,
                   reason="launch day")  # fmt: skip
    spent(engine, ids["ana"], 0.3, NOW + timedelta(minutes=1))  # ana is now at $1.20 of $1
    later = NOW + timedelta(minutes=30)
    reset_spend(engine, settings, **admin, entity_id=ids["ana"], period="day", reason="refunded a runaway job")
    spent(engine, ids["ana"], 0.25, later)

    use = {u.spend.entity_id: u for u in budget_use(engine, "user", later + timedelta(minutes=1))}
    bo_use, ana_use = use[ids["bo"]], use[ids["ana"]]
    assert bo_use.spend.daily_budget_usd == 4.0 and bo_use.day_increase_usd == 2.0  # $2 tier + $2 for 2 hours
    assert bo_use.spend.status == "ok"  # 1.8 of 4.0
    assert round(ana_use.spend.day_usd, 6) == 0.25 and ana_use.day_reset_at == NOW  # counted from the reset
    assert ana_use.spend.status == "ok"

    page, _ = user_spend(engine, SpendQuery(), later + timedelta(minutes=1))
    rows = {u.user_id: spend_row(u) for u in page}
    assert rows[ids["bo"]]["day_text"] == "$1.80 of $4.00 (45%)"
    assert rows[ids["bo"]]["day_note"] == "incl. +$2.00 temporary"
    assert rows[ids["ana"]]["day_note"] == "since the reset at 12:00 UTC"
