"""Spend by user: status thresholds, URL parameters, filtering, search, sorting, pagination and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.engine import session
from llm_console.db.logstore import write_batch
from llm_console.db.models import Budget, User
from llm_console.db.records import LogRecord
from llm_console.presenters.spend import bar, spend_csv, spend_view
from llm_console.services.spend import PAGE_SIZE, budget_status, load_spend, parse_spend_query, user_spend

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("share", "status"),
    [
        (None, "none"),
        (0.0, "ok"),
        (0.79, "ok"),
        (0.8, "warning"),
        (0.99, "warning"),
        (1.0, "exceeded"),
        (3, "exceeded"),
    ],
)
def test_budget_status_thresholds(share: float | None, status: str) -> None:
    assert budget_status(share) == status


def test_bars_are_coloured_by_share_and_plain_without_a_budget() -> None:
    assert bar("day", "Today", 4.0, 5.0) == {
        "day_text": "$4.00 of $5.00 (80%)",
        "day_aria": "Today: $4.00 of $5.00, 80%",
        "day_level": "warning",
        "day_pct": 80,
    }
    assert bar("month", "This month", 12.0, 10.0)["month_pct"] == 100
    assert bar("month", "This month", 12.0, 10.0)["month_level"] == "exceeded"
    assert bar("day", "Today", 3.9, 5.0)["day_level"] == "ok"
    assert bar("day", "Today", 2.0, None) == {
        "day_text": "$2.00 · no limit",
        "day_aria": "Today: $2.00, no limit",
        "day_level": "none",
        "day_pct": 0,
    }


def test_url_parameters_are_validated_and_a_filter_change_resets_the_page() -> None:
    q = parse_spend_query({"status": "exceeded", "q": " Ada ", "page": "3"})
    assert (q.status, q.q, q.page, q.errors) == ("exceeded", "Ada", 3, [])
    bad = parse_spend_query({"status": "ok", "page": "0", "q": "x" * 300})
    assert (bad.status, bad.page, len(bad.q)) == ("", 1, 200)
    assert len(bad.errors) == 3
    assert parse_spend_query({"page": "-1"}).page == 1
    assert q.query_string(page="4") == "status=exceeded&q=Ada&page=4"
    assert q.query_string(status="warning") == "status=warning&q=Ada"
    assert q.query_string(status="") == "q=Ada"
    assert parse_spend_query({}).query_string() == ""
    assert q.params(page="1") == {"status": "exceeded", "q": "Ada"}
    assert q.params(q="Ada") == {"status": "exceeded", "q": "Ada", "page": "3"}  # unchanged: same page


def spend(at: datetime, user: int, cost: float) -> LogRecord:
    return LogRecord(id=str(uuid.uuid4()), created_at=at, endpoint="/v1/chat/completions", user_id=user, cost_usd=cost)


@pytest.fixture
def users(engine: Engine) -> Engine:
    """Users 1-120; 1: exceeded by the day, 2: warning by the month, 3: over a budget-less day, 4: deleted."""
    with session(engine) as s:
        for i in range(1, 121):
            s.add(User(id=i, email=f"user{i:03d}@example.com"))
        s.add(Budget(entity_type="user", entity_id=1, daily_usd=5.0, monthly_usd=100.0))
        s.add(Budget(entity_type="user", entity_id=2, daily_usd=None, monthly_usd=10.0))
        s.add(Budget(entity_type="user", entity_id=5, daily_usd=1.0, monthly_usd=0.0))
        s.add(Budget(entity_type="team", entity_id=2, daily_usd=0.01))  # a team's budget: not a user's
        s.commit()
    write_batch(
        engine,
        [
            spend(NOW - timedelta(hours=1), 1, 6.0),
            spend(NOW - timedelta(days=3), 2, 8.5),
            spend(NOW - timedelta(days=20), 2, 50.0),  # last month
            spend(NOW - timedelta(hours=2), 3, 40.0),
            spend(NOW - timedelta(hours=2), 130, 2.0),  # a user deleted since
            spend(NOW - timedelta(hours=2), 6, 0.5),
        ],
    )
    return engine


def test_every_user_is_listed_worst_first_then_by_month_spend(users: Engine) -> None:
    rows, counts = user_spend(users, parse_spend_query({}), NOW)
    assert counts == {"all": 121, "ok": 119, "warning": 1, "exceeded": 1}
    assert [(u.user_id, u.status) for u in rows[:6]] == [
        (1, "exceeded"),
        (2, "warning"),
        (3, "ok"),
        (130, "ok"),
        (6, "ok"),
        (4, "ok"),
    ]
    first = rows[0].spend
    assert (first.day_usd, first.month_usd, first.daily_budget_usd, first.monthly_budget_usd) == (6.0, 6.0, 5.0, 100.0)
    assert rows[1].spend.month_usd == pytest.approx(8.5)  # last month's 50 does not count
    assert rows[3].email == "#130 (deleted)"
    assert rows[4].email == "user006@example.com"
    user5 = next(u for u in rows if u.user_id == 5)
    assert (user5.spend.daily_budget_usd, user5.spend.monthly_budget_usd) == (1.0, None)


def test_status_filter_and_email_search(users: Engine) -> None:
    exceeded, _ = user_spend(users, parse_spend_query({"status": "exceeded"}), NOW)
    assert [u.user_id for u in exceeded] == [1]
    warning, _ = user_spend(users, parse_spend_query({"status": "warning"}), NOW)
    assert [u.user_id for u in warning] == [2]
    found, counts = user_spend(users, parse_spend_query({"q": "USER00"}), NOW)
    assert [u.user_id for u in found] == [1, 2, 3, 6, 4, 5, 7, 8, 9]
    assert counts == {"all": 9, "ok": 7, "warning": 1, "exceeded": 1}
    none, _ = user_spend(users, parse_spend_query({"q": "user001", "status": "warning"}), NOW)
    assert none == []


def test_server_side_pages_of_fifty(users: Engine) -> None:
    first = load_spend(users, parse_spend_query({}), NOW)
    assert (len(first.rows), first.matched, first.page, first.pages) == (PAGE_SIZE, 121, 1, 3)
    third = load_spend(users, parse_spend_query({"page": "3"}), NOW)
    assert len(third.rows) == 21
    assert third.rows[-1].user_id == 120
    past_end = load_spend(users, parse_spend_query({"page": "99"}), NOW)
    assert past_end.page == 3 and past_end.rows == third.rows
    ids = [u.user_id for p in (1, 2, 3) for u in load_spend(users, parse_spend_query({"page": str(p)}), NOW).rows]
    assert len(ids) == len(set(ids)) == 121

    view = spend_view(first)
    assert view.summary == "121 users · 1 warning · 1 exceeded"
    assert view.rows[0]["status"] == "exceeded" and view.rows[0]["status_label"] == "Exceeded"
    assert view.rows[0]["day_text"] == "$6.00 of $5.00 (120%)"
    assert view.rows[0]["month_level"] == "ok"
    assert view.rows[1]["day_level"] == "none" and view.rows[1]["month_pct"] == 85


def test_csv_export_holds_the_filtered_list(users: Engine) -> None:
    rows, _ = user_spend(users, parse_spend_query({"status": "exceeded"}), NOW)
    parsed = list(csv.DictReader(io.StringIO(spend_csv(rows))))
    assert parsed == [
        {
            "user_id": "1",
            "email": "user001@example.com",
            "status": "exceeded",
            "day_usd": "6.0",
            "daily_budget_usd": "5.0",
            "day_share": "1.2",
            "month_usd": "6.0",
            "monthly_budget_usd": "100.0",
            "month_share": "0.06",
        }
    ]


def test_a_member_sees_the_spend_of_their_teams_people_only(users: Engine) -> None:
    from llm_console.db.models import Membership, Team
    from llm_console.services.scope import scope_for

    with session(users) as s:
        s.add_all([Team(id=1, name="a"), Team(id=2, name="b")])
        s.flush()  # teams before the memberships that point at them
        s.add_all(
            [Membership(user_id=3, team_id=1), Membership(user_id=1, team_id=1), Membership(user_id=2, team_id=2)]
        )
        s.commit()
    member = scope_for(users, user_id=3, role="member")
    rows, counts = user_spend(users, parse_spend_query({}), NOW, member)
    assert sorted(u.user_id for u in rows) == [1, 3] and counts["all"] == 2  # not 2 (team b), not the deleted 130
    loner = scope_for(users, user_id=7, role="viewer")
    assert [u.user_id for u in user_spend(users, parse_spend_query({}), NOW, loner)[0]] == [7]
    operator = scope_for(users, user_id=7, role="operator")
    assert user_spend(users, parse_spend_query({}), NOW, operator)[1]["all"] == 121
