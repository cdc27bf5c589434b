"""The Overview's figures from a seeded database (SQLite and PostgreSQL), worked out by hand."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.queries.names import load_directory
from llm_console.db.queries.usage import Totals, totals
from llm_console.services.usage import OverviewData, load_overview, per_minute, providers
from tests.db.seeding import (  # noqa: F401
    add_rows,
    at,
    backends_fixture,
    db_fixture,
    directory_rows,
    rec,
    write,
)

NOW = at(4, 10, 30, 20)
# The day is [03-03 10:31, 03-04 10:31) in minutes; the week [02-25 10:00, 03-04 11:00) in hours;
# "today" is [03-04 00:00, 11:00) in hours (users and keys are rolled up per hour).
RECORDS = [
    ("r1", at(4, 10, 30, 5), dict(deployment_id=1, key_id=1, user_id=1, cost=1.0)),
    ("r2", at(4, 10, 29, 10), dict(deployment_id=2, key_id=1, user_id=2, cost=0.5, status="error")),
    ("r3", at(4, 10, 0, 0), dict(deployment_id=3, key_id=2, user_id=2, cost=2.0)),
    ("r4", at(4, 0, 10), dict(deployment_id=1, key_id=None, user_id=None, cost=0.25)),
    ("r5", at(3, 23, 0), dict(deployment_id=3, key_id=2, user_id=1, cost=4.0, status="error")),  # yesterday
    ("r6", at(3, 10, 30, 59), dict(deployment_id=1, key_id=1, user_id=1, cost=8.0)),  # just before the day
    ("r7", at(26, 9, month=2), dict(deployment_id=99, key_id=1, user_id=1, cost=16.0)),  # week only
    ("r8", at(25, 9, 59, month=2), dict(deployment_id=1, key_id=1, user_id=1, cost=32.0)),  # before the week
    ("r9", at(4, 10, 30, 59), dict(deployment_id=1, key_id=1, user_id=1, cost=0.125)),
    ("r10", at(4, 9), dict(deployment_id=None, key_id=2, user_id=2, cost=0.0625)),
    ("r11", at(4, 8), dict(deployment_id=99, key_id=None, user_id=1, cost=0.03125)),  # a deleted deployment
    ("r12", at(4, 7), dict(deployment_id=2, key_id=77, user_id=42, cost=0.015625)),  # a deleted key and user
]


@pytest.fixture
def overview(db: Engine) -> OverviewData:
    add_rows(db, *directory_rows())
    write(db, *[rec(when, id=rid, **kw) for rid, when, kw in RECORDS])  # type: ignore[arg-type]
    return load_overview(db, NOW)


def test_day_and_week_totals(overview: OverviewData) -> None:
    day, week = overview.day, overview.week
    # Day: r1 r2 r3 r4 r5 r9 r10 r11 r12 -> 1 + 0.5 + 2 + 0.25 + 4 + 0.125 + 0.0625 + 0.03125 + 0.015625
    assert (day.requests, day.errors, day.cost_usd) == (9, 2, 7.984375)
    assert day.error_rate == 2 / 9
    # Week: the day's nine, r6 (8.0) and r7 (16.0); r8 is a minute before the week starts.
    assert (week.requests, week.errors, week.cost_usd) == (11, 2, 31.984375)
    assert overview.as_of == NOW


def test_providers_merge_their_deployments(overview: OverviewData) -> None:
    got = [(p.label, p.totals.requests, p.totals.errors, p.totals.cost_usd) for p in overview.providers]
    assert got == [
        ("azure-eu", 2, 1, 6.0),  # deployment 3: r3 + r5
        ("openai-main", 5, 1, 1.890625),  # deployment 1: r1 r4 r9 (1.375), deployment 2: r2 r12 (0.515625)
        ("(none)", 1, 0, 0.0625),  # no deployment (r10)
        ("(deleted)", 1, 0, 0.03125),  # the deleted deployment 99 (r11)
    ]
    assert [p.value for p in overview.providers] == [p.label for p in overview.providers]


def test_top_users_and_keys_by_todays_spend(overview: OverviewData) -> None:
    # Today only (r5 was yesterday); requests without a user or key are left out.
    assert [(n.label, n.value, n.totals.requests, n.totals.cost_usd) for n in overview.top_users] == [
        ("bob@example.com", "2", 3, 2.5625),  # r2 r3 r10
        ("alice@example.com", "1", 3, 1.15625),  # r1 r9 r11
        ("#42 (deleted)", "42", 1, 0.015625),  # r12
    ]
    assert [(n.label, n.value, n.totals.requests, n.totals.cost_usd) for n in overview.top_keys] == [
        ("key (sk-def…)", "2", 2, 2.0625),  # r3 r10
        ("ci (sk-abc…)", "1", 3, 1.625),  # r1 r2 r9
        ("#77 (deleted)", "77", 1, 0.015625),  # r12
    ]


def test_per_minute_is_60_zero_filled_points(overview: OverviewData) -> None:
    points = overview.per_minute
    assert len(points) == 60
    assert (points[0].minute, points[-1].minute) == (at(4, 9, 31), at(4, 10, 30))
    assert all(b.minute - a.minute == timedelta(minutes=1) for a, b in itertools.pairwise(points))
    busy = {p.minute: (p.requests, p.errors) for p in points if p.requests}
    assert busy == {at(4, 10, 0): (1, 0), at(4, 10, 29): (1, 1), at(4, 10, 30): (2, 0)}  # r3 | r2 | r1 r9


def test_latest_and_directory(overview: OverviewData) -> None:
    newest_first = "r9 r1 r2 r3 r10 r11 r12 r4 r5 r6 r7 r8".split()
    assert [r.id for r in overview.latest] == newest_first
    d = overview.directory
    assert d.deployment_provider == {1: "openai-main", 2: "openai-main", 3: "azure-eu"}
    assert (d.users[1], d.keys[2], d.teams[1]) == ("alice@example.com", "key (sk-def…)", "research")


def test_an_empty_database(db: Engine) -> None:
    o = load_overview(db, NOW)
    assert (o.day, o.week, o.providers, o.top_users, o.top_keys, o.latest) == (Totals(), Totals(), [], [], [], [])
    assert len(o.per_minute) == 60 and sum(p.requests for p in o.per_minute) == 0


def test_top_lists_stop_at_five(db: Engine) -> None:
    write(db, *[rec(at(4, 9, i), user_id=100 + i, key_id=200 + i, cost=float(i + 1)) for i in range(7)])
    o = load_overview(db, NOW)
    assert [n.value for n in o.top_users] == ["106", "105", "104", "103", "102"]
    assert [n.label for n in o.top_keys] == [f"#{k} (deleted)" for k in (206, 205, 204, 203, 202)]


def test_per_minute_window_and_providers_directly(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(db, rec(at(4, 10, 25, 59), status="error"), rec(at(4, 10, 26)), rec(at(4, 10, 20)))
    points = per_minute(db, NOW, minutes=5)
    assert [(p.minute, p.requests, p.errors) for p in points] == [
        (at(4, 10, 26), 1, 0),
        (at(4, 10, 27), 0, 0),
        (at(4, 10, 28), 0, 0),
        (at(4, 10, 29), 0, 0),
        (at(4, 10, 30), 0, 0),
    ]  # 10:25:59 is just outside the five minutes
    got = providers(db, at(4, 10), at(4, 11), load_directory(db))
    assert [(p.label, p.totals.requests) for p in got] == [("openai-main", 3)]


def test_totals_add_up_every_field(db: Engine) -> None:
    write(db, rec(at(4, 10, 1), latency=40, ttfb=12, cost=0.5, prompt=3, stream=True))
    write(db, rec(at(4, 11, 1), latency=300, cost=0.25, completion=4, cached=1, status="error"))
    a, b = totals(db, at(4, 10), at(4, 11)), totals(db, at(4, 11), at(4, 12))
    s = a + b
    assert s == totals(db, at(4, 10), at(4, 12))
    assert (s.requests, s.errors, s.stream_requests) == (2, 1, 1)
    assert (s.prompt_tokens, s.completion_tokens, s.cached_tokens) == (3, 4, 1)
    assert (s.cost_usd, s.latency_ms_sum, s.ttfb_ms_sum, s.ttfb_count) == (0.75, 340.0, 12.0, 1)
    assert (s.lat_hist[4], s.lat_hist[9], sum(s.lat_hist), sum(s.ttfb_hist)) == (1, 1, 2, 1)  # 40 ms, 300 ms
