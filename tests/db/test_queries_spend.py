"""Spend per user, team and key for the UTC day and month, against budgets (OK / Warning / Exceeded)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.queries.spend import Spend, month_start, spend_by_entity
from tests.db.seeding import add_rows, at, backends_fixture, budget, db_fixture, rec, write  # noqa: F401

NOW = at(4, 15, 30)  # Wednesday 2026-03-04 15:30 UTC


def figures(rows: list[Spend]) -> list[tuple[int, float, float, float | None, float | None, str]]:
    return [(s.entity_id, s.day_usd, s.month_usd, s.daily_budget_usd, s.monthly_budget_usd, s.status) for s in rows]


def test_day_and_month_boundaries(db: Engine) -> None:
    write(
        db,
        rec(at(28, 23, 59, 59, month=2), user_id=1, cost=4.0),  # last second of February: not this month
        rec(at(1), user_id=1, cost=1.0),  # first instant of March
        rec(at(3, 23, 59, 59), user_id=1, cost=2.0),  # yesterday
        rec(at(4), user_id=1, cost=0.5),  # first instant of today
        rec(at(4, 15), user_id=1, cost=0.25),
        rec(at(4, 23, 59), user_id=1, cost=0.125),  # later today still counts as today
        rec(at(5), user_id=1, cost=8.0),  # tomorrow
        rec(at(4, 9), user_id=None, cost=16.0),  # no user: no entity
    )
    # Today: 0.5 + 0.25 + 0.125 = 0.875; March: 1.0 + 2.0 + 0.875 = 3.875
    assert figures(spend_by_entity(db, "user", NOW)) == [(1, 0.875, 3.875, None, None, "ok")]
    # On the 1st, the day and the month are the same: 1.0
    assert figures(spend_by_entity(db, "user", at(1, 8))) == [(1, 1.0, 1.0, None, None, "ok")]
    # On 28 February: the month is February's 4.0, the day too
    assert figures(spend_by_entity(db, "user", at(28, 12, month=2))) == [(1, 4.0, 4.0, None, None, "ok")]
    assert spend_by_entity(db, "user", at(15, month=1)) == []


def test_now_in_another_time_zone_means_the_utc_day(db: Engine) -> None:
    write(db, rec(at(4, 1), user_id=1, cost=0.5), rec(at(3, 23), user_id=1, cost=0.25))
    # 2026-03-03 22:00-05:00 is 2026-03-04 03:00 UTC: today is 4 March.
    now = at(4, 3).astimezone(timezone(timedelta(hours=-5)))
    assert figures(spend_by_entity(db, "user", now)) == [(1, 0.5, 0.75, None, None, "ok")]
    assert month_start(at(31, 23, 59)) == at(1)


def test_users_teams_and_keys_are_separate(db: Engine) -> None:
    write(
        db,
        rec(at(4, 10), user_id=1, team_id=7, key_id=3, cost=0.5),
        rec(at(4, 11), user_id=2, team_id=7, key_id=4, cost=0.25),
    )
    add_rows(db, budget("team", 7, daily=1.0), budget("key", 9, monthly=5.0))
    assert figures(spend_by_entity(db, "user", NOW)) == [
        (1, 0.5, 0.5, None, None, "ok"),
        (2, 0.25, 0.25, None, None, "ok"),
    ]
    assert figures(spend_by_entity(db, "team", NOW)) == [(7, 0.75, 0.75, 1.0, None, "ok")]
    assert figures(spend_by_entity(db, "key", NOW)) == [
        (3, 0.5, 0.5, None, None, "ok"),
        (4, 0.25, 0.25, None, None, "ok"),
        (9, 0.0, 0.0, None, 5.0, "ok"),
    ]


def test_status_thresholds(db: Engine) -> None:
    today, earlier = at(4, 9), at(2, 9)
    write(
        db,
        rec(today, user_id=2, cost=8.0),  # 8 of a 10 daily budget: exactly 80%
        rec(today, user_id=3, cost=10.0),  # exactly 100%
        rec(today, user_id=4, cost=7.5),  # 75%
        rec(earlier, user_id=5, cost=16.0),  # 16 of a 20 monthly budget, nothing today
        rec(today, user_id=7, cost=5.0),  # budgets of 0: no limit
        rec(earlier, user_id=8, cost=10.0),  # daily 0 ignored, monthly 10 reached
        rec(today, user_id=9, cost=1.0),  # 10% of the day, 110% of the month
        rec(earlier, user_id=9, cost=10.0),
        rec(today, user_id=10, cost=10.5),  # over 100%
    )
    add_rows(
        db,
        budget("user", 2, daily=10.0),
        budget("user", 3, daily=10.0),
        budget("user", 4, daily=10.0),
        budget("user", 5, monthly=20.0),
        budget("user", 6, daily=1.0, monthly=30.0),  # a budget, no spend
        budget("user", 7, daily=0.0, monthly=0.0),
        budget("user", 8, daily=0.0, monthly=10.0),
        budget("user", 9, daily=10.0, monthly=10.0),
        budget("user", 10, daily=10.0),
        budget("team", 2, daily=0.01),  # another entity type: not a user's budget
    )

    rows = {s.entity_id: s for s in spend_by_entity(db, "user", NOW)}

    assert figures(list(rows.values())) == [
        (2, 8.0, 8.0, 10.0, None, "warning"),
        (3, 10.0, 10.0, 10.0, None, "exceeded"),
        (4, 7.5, 7.5, 10.0, None, "ok"),
        (5, 0.0, 16.0, None, 20.0, "warning"),
        (6, 0.0, 0.0, 1.0, 30.0, "ok"),
        (7, 5.0, 5.0, None, None, "ok"),
        (8, 0.0, 10.0, None, 10.0, "exceeded"),
        (9, 1.0, 11.0, 10.0, 10.0, "exceeded"),
        (10, 10.5, 10.5, 10.0, None, "exceeded"),
    ]
    assert (rows[2].day_share, rows[2].month_share) == (0.8, None)
    assert (rows[5].day_share, rows[5].month_share) == (None, 0.8)
    assert (rows[6].day_share, rows[6].month_share) == (0.0, 0.0)
    assert (rows[7].day_share, rows[7].month_share) == (None, None)
    assert rows[9].month_share == 1.1


@pytest.mark.parametrize(
    ("day_usd", "status"),
    [(0.0, "ok"), (0.7999, "ok"), (0.8, "warning"), (0.9999, "warning"), (1.0, "exceeded"), (5.0, "exceeded")],
)
def test_spend_status_edges(day_usd: float, status: str) -> None:
    assert Spend(1, day_usd, day_usd, 1.0, None).status == status
    assert Spend(1, 0.0, day_usd, None, 1.0).status == status
    assert Spend(1, day_usd, day_usd, 0.0, 0.0).status == "ok"


def test_spending_the_budget_in_cents_is_exceeded(db: Engine) -> None:
    write(db, *[rec(at(4, 9, i), user_id=1, cost=0.1) for i in range(10)])
    add_rows(db, budget("user", 1, daily=1.0))
    (spend,) = spend_by_entity(db, "user", NOW)
    assert spend.status == "exceeded"


def test_bar_levels_and_badges_share_one_threshold_rule() -> None:
    from llm_console.services.spend import budget_status

    spent_in_cents = sum([0.1] * 10)  # 0.9999999999999999
    assert spent_in_cents < 1.0
    assert budget_status(spent_in_cents) == Spend(1, spent_in_cents, 0.0, 1.0, None).status == "exceeded"
    assert budget_status(None) == "none"
