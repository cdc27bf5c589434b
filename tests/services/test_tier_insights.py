"""Tier distribution and upgrade suggestions on seeded rollups, SQLite and PostgreSQL, and the assign dialog's
by-name assignment. Log records go through the real writer (write_batch); every figure is worked out by hand
in the comments.

Tiers: Free (rank 0: RPM 10, RPD 100, $1/day), Team (rank 10: RPM 8 — lower than Free's, to show the
suggestion skips it —, $5/day), Enterprise (rank 20: RPM 1,000, no daily budget).
Holders: key 1 and bob (user 2, own RPD 50) on Free, team 1 on Team, key 2 on Enterprise; alice (user 1) is on
no tier and has a budget of her own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import Budget, RateLimit
from llm_console.db.records import LogRecord
from llm_console.db.tier_tables import LimitTier, TierAssignment
from llm_console.services.tier_admin import TierError, TierPermissionError
from llm_console.services.tier_insights import (
    DistributionRow,
    Suggestion,
    assign_by_name,
    load_tiers_page,
)
from tests.db.seeding import add_rows, at, backends_fixture, db_fixture, directory_rows, rec, write  # noqa: F401

DAY = timedelta(days=1)
START, END = at(3), at(10)  # seven days


def tiers() -> list[LimitTier]:
    return [
        LimitTier(id=1, name="Free", rank=0, rpm=10, rpd=100, daily_usd=1.0),
        LimitTier(id=2, name="Team", rank=10, rpm=8, daily_usd=5.0),
        LimitTier(id=3, name="Enterprise", rank=20, rpm=1000),
    ]


def holders() -> list[TierAssignment]:
    return [
        TierAssignment(entity_type="key", entity_id=1, tier_id=1),
        TierAssignment(entity_type="user", entity_id=2, tier_id=1),
        TierAssignment(entity_type="team", entity_id=1, tier_id=2),
        TierAssignment(entity_type="key", entity_id=2, tier_id=3),
    ]


def own_limits() -> list[RateLimit | Budget]:
    return [
        RateLimit(entity_type="user", entity_id=2, rpd=50),  # bob's own RPD overrides Free's 100
        Budget(entity_type="user", entity_id=1, daily_usd=2.0),  # alice: own budget, no tier
        RateLimit(entity_type="default", entity_id=0, rpm=60),  # the global default: no entity, never counted
    ]


def refused(when: datetime, throttle: str, n: int, **ids: int | None) -> list[LogRecord]:
    """`n` calls the limiter refused (429, the entity|limit named), one second apart."""
    base = {"key_id": 9, "user_id": None, "team_id": None, **ids}
    out = []
    for i in range(n):
        r = rec(when + timedelta(seconds=i), status="error", deployment_id=None, **base)  # type: ignore[arg-type]
        out.append(replace(r, status_code=429, error_type="rate_limit_exceeded", throttle=throttle))
    return out


def ok(when: datetime, n: int, **ids: int | None) -> list[LogRecord]:
    base = {"key_id": 9, "user_id": None, "team_id": None, **ids}
    return [rec(when + timedelta(seconds=i), **base) for i in range(n)]  # type: ignore[arg-type]


@pytest.fixture
def seeded(db: Engine) -> Engine:
    add_rows(db, *directory_rows(), *tiers(), *holders(), *own_limits())
    write(
        db,
        # key 1 (Free): 15 RPM refusals on the 4th and 10 on the 6th: 25 on 2 days; with 500 admitted calls
        # and 5 RPD refusals that is 25 of 530 calls (4.7%, under 5%), but 2 days -> a suggestion. Team's RPM 8
        # is not above 10: the suggestion skips to Enterprise (1,000).
        *refused(at(4, 9), "key:1|rpm", 15, key_id=1),
        *refused(at(6, 9), "key:1|rpm", 10, key_id=1),
        *ok(at(5, 9), 500, key_id=1),
        *refused(at(7, 9), "key:1|rpd", 5, key_id=1),  # RPD: 5 refusals, under 20 -> nothing
        *refused(at(2, 9), "key:1|rpm", 50, key_id=1),  # the day before the range: not counted
        # bob (user 2, Free, own RPD 50): 30 RPD refusals on the 5th only (1 day), 70 admitted: 30 of 100 calls,
        # 30% >= 5% -> a suggestion; his own RPD overrides the tier, so no tier helps. 19 RPM refusals over three
        # days: under 20 -> nothing. His calls: 30 + 70 + 19 = 119.
        *refused(at(5, 14), "user:2|rpd", 30, user_id=2),
        *ok(at(5, 15), 70, user_id=2),
        *[r for d in (4, 6, 8) for r in refused(at(d, 1), "user:2|rpm", 6 if d < 8 else 7, user_id=2)],
        # team 1 (Team, $5/day): 20 daily-budget refusals on the 7th and 20 on the 8th, 160 admitted:
        # 40 of 200 calls (20%), 2 days -> Enterprise, which has no daily budget.
        *refused(at(7, 20), "team:1|daily_usd", 20, team_id=1),
        *refused(at(8, 20), "team:1|daily_usd", 20, team_id=1),
        *ok(at(8, 21), 160, team_id=1),
        # key 2 (Enterprise, the top rank): 20 RPM refusals over 3 days, no other call: 20 of 20 (100%).
        *[r for d in (3, 4, 9) for r in refused(at(d, 12), "key:2|rpm", 7 if d < 9 else 6, key_id=2)],
        # alice (user 1, no tier): 100 refusals -> nobody to suggest a tier to.
        *refused(at(5, 3), "user:1|rpm", 100, user_id=1),
        # a malformed throttle value and one of the global default: ignored.
        *refused(at(5, 4), "garbage", 30),
        *refused(at(5, 4), "default:0|rpm", 30),
    )
    return db


def test_distribution_counts_holders_per_tier_and_own_limits_only(seeded: Engine) -> None:
    page = load_tiers_page(seeded, role="operator", start=START, end=END, now=END)
    assert [t.name for t in page.tiers] == ["Free", "Team", "Enterprise"]
    assert page.distribution == [
        DistributionRow(1, "Free", 1, 0, 1),  # bob, key 1
        DistributionRow(2, "Team", 0, 1, 0),  # team 1
        DistributionRow(3, "Enterprise", 0, 0, 1),  # key 2
        DistributionRow(None, "No tier", 1, 0, 0),  # alice's own budget; bob's own RPD does not count (on Free)
    ]
    assert [r.total for r in page.distribution] == [2, 1, 1, 1]
    assert page.can_edit is False
    assert load_tiers_page(seeded, role="admin", start=START, end=END).can_edit is True


def test_suggestions_follow_the_rule_with_their_figures(seeded: Engine) -> None:
    page = load_tiers_page(seeded, role="operator", start=START, end=END, now=END)
    assert page.suggestions == [
        Suggestion("team", 1, "research", "Team", "daily_usd", 40, 200, 2, 5.0, False, "Enterprise", None),
        Suggestion("user", 2, "bob@example.com", "Free", "rpd", 30, 119, 1, 50, True, None, None),
        Suggestion("key", 1, "ci (sk-abc…)", "Free", "rpm", 25, 530, 2, 10, False, "Enterprise", 1000),
        Suggestion("key", 2, "key (sk-def…)", "Enterprise", "rpm", 20, 20, 3, 1000, False, None, None),
    ]
    assert [round(s.share, 4) for s in page.suggestions] == [0.2, round(30 / 119, 4), round(25 / 530, 4), 1.0]


def test_a_shorter_range_drops_what_falls_outside_it(seeded: Engine) -> None:
    # From the 6th: key 1 keeps 10 RPM refusals (under 20); team 1 keeps its 40; key 2 only the 9th's 6.
    page = load_tiers_page(seeded, role="operator", start=at(6), end=END)
    assert [(s.entity_type, s.entity_id, s.limit, s.refused) for s in page.suggestions] == [
        ("team", 1, "daily_usd", 40)
    ]


def test_a_tier_change_moves_the_suggestion(seeded: Engine) -> None:
    # Team's RPM raised to 20 (above Free's 10): key 1's suggestion now names Team, the next rank up.
    with session(seeded) as s:
        team = s.get(LimitTier, 2)
        assert team is not None
        team.rpm = 20
        s.add(team)
        s.commit()
    page = load_tiers_page(seeded, role="operator", start=START, end=END)
    key1 = next(s for s in page.suggestions if (s.entity_type, s.entity_id) == ("key", 1))
    assert (key1.current, key1.target_tier, key1.target_value) == (10, "Team", 20)


def test_assign_by_name(seeded: Engine) -> None:
    ref, tier = assign_by_name(seeded, role="admin", actor="a@x", entity_type="key", name="sk-def", tier_id=1)
    assert (ref.entity_type, ref.entity_id, tier) == ("key", 2, "Free")
    ref, tier = assign_by_name(
        seeded, role="admin", actor="a@x", entity_type="user", name="ALICE@example.com", tier_id=None
    )
    assert (ref.entity_id, tier) == (1, None)  # alice was on no tier: nothing changes, nothing fails
    assign_by_name(seeded, role="admin", actor="a@x", entity_type="team", name="research", tier_id=None)
    with session(seeded) as s:
        assigned = {(a.entity_type, a.entity_id): a.tier_id for a in s.exec(select(TierAssignment))}
    assert assigned == {("key", 1): 1, ("user", 2): 1, ("key", 2): 1}
    with pytest.raises(TierPermissionError, match="Only admins"):
        assign_by_name(seeded, role="operator", actor="o@x", entity_type="key", name="sk-def", tier_id=3)
    with pytest.raises(ValueError, match="No user has the email"):
        assign_by_name(seeded, role="admin", actor="a@x", entity_type="user", name="nobody@x", tier_id=3)
    with pytest.raises(TierError, match="no longer exists"):
        assign_by_name(seeded, role="admin", actor="a@x", entity_type="key", name="sk-def", tier_id=99)
    with pytest.raises(TierError, match="Choose a user, a team or a key"):
        assign_by_name(seeded, role="admin", actor="a@x", entity_type="default", name="", tier_id=3)
