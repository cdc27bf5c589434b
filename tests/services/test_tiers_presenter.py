"""The tiers page's strings: tier rows, distribution, suggestions with their figures and advice, the tier form
read back, spend administration rows and form values, and the Limits page's budget notes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm_console.presenters.keys import KeyAdminError
from llm_console.presenters.limits import budget_note
from llm_console.presenters.tiers import (
    NO_TIER,
    advice,
    distribution_chart,
    distribution_row,
    increase_row,
    parse_entity,
    parse_number,
    parse_tier_form,
    reset_row,
    suggestion_row,
    tier_form_values,
    tier_row,
    tiers_view,
)
from llm_console.services.limits_admin import BudgetLimits, RateLimits
from llm_console.services.spend_admin import IncreaseView, SpendAdminError, SpendResetView
from llm_console.services.tier_admin import TierError, TierView
from llm_console.services.tier_insights import RULE, DistributionRow, Suggestion, TiersPage

WHEN = datetime(2026, 3, 10, 14, 5, tzinfo=UTC)


def tier(**kw: object) -> TierView:
    base: dict[str, object] = {
        "id": 1,
        "name": "Free",
        "description": "for trying",
        "rank": 0,
        "limits": RateLimits(rpm=10, tpm=20_000, rpd=None, tpd=None),
        "budget": BudgetLimits(daily_usd=1.5, monthly_usd=None),
        "holders": {"user": 2, "team": 0, "key": 1234},
        "updated_at": WHEN,
        "updated_by": "admin@x",
    }
    return TierView(**{**base, **kw})  # type: ignore[arg-type]


def suggestion(**kw: object) -> Suggestion:
    base: dict[str, object] = {
        "entity_type": "key",
        "entity_id": 7,
        "name": "ci (sk-abc…)",
        "tier": "Free",
        "limit": "rpm",
        "refused": 1250,
        "calls": 10_000,
        "days": 3,
        "current": 10,
        "own_override": False,
        "target_tier": "Team",
        "target_value": 100,
    }
    return Suggestion(**{**base, **kw})  # type: ignore[arg-type]


def test_tier_row() -> None:
    assert tier_row(tier()) == {
        "id": "1",
        "name": "Free",
        "description": "for trying",
        "rank": "0",
        "rpm": "10",
        "tpm": "20,000",
        "rpd": "—",
        "tpd": "—",
        "daily_usd": "$1.50",
        "monthly_usd": "—",
        "users": "2",
        "teams": "0",
        "keys": "1,234",
        "held": "1",
        "updated": "2026-03-10 14:05 UTC by admin@x",
    }
    assert tier_row(tier(holders={"user": 0, "team": 0, "key": 0}, updated_by=""))["held"] == ""
    assert tier_row(tier(updated_by=""))["updated"] == "2026-03-10 14:05 UTC"


def test_distribution() -> None:
    rows = [DistributionRow(1, "Free", 1, 2, 3), DistributionRow(None, "No tier", 4, 0, 1000)]
    assert distribution_chart(rows) == [
        {"tier": "Free", "users": 1, "teams": 2, "keys": 3},
        {"tier": "No tier", "users": 4, "teams": 0, "keys": 1000},
    ]
    assert distribution_row(rows[1]) == {
        "tier": "No tier",
        "tier_id": "",
        "users": "4",
        "teams": "0",
        "keys": "1,000",
        "total": "1,004",
    }


def test_suggestion_rows_show_their_figures_and_what_to_do() -> None:
    assert suggestion_row(suggestion()) == {
        "entity": "key:7",
        "name": "ci (sk-abc…)",
        "kind": "Key",
        "tier": "Free",
        "limit": "RPM",
        "refused": "1,250",
        "calls": "10,000",
        "share": "12.5%",  # 1,250 / 10,000
        "days": "3",
        "current": "10",
        "target": "100 (Team)",
        "advice": "Move to Team.",
    }
    budget = suggestion(limit="daily_usd", current=5.0, target_tier="Enterprise", target_value=None)
    assert (suggestion_row(budget)["limit"], suggestion_row(budget)["current"]) == ("Daily budget", "$5.00")
    assert suggestion_row(budget)["target"] == "no limit (Enterprise)"
    top = suggestion(target_tier=None, target_value=None)
    assert (suggestion_row(top)["target"], advice(top)) == ("—", "No higher tier: raise their own limit.")
    own = suggestion(limit="rpd", own_override=True, target_tier=None, target_value=None)
    assert advice(own) == "Their own RPD overrides the tier: raise their own limit."


def test_tiers_view() -> None:
    page = TiersPage(
        tiers=[tier(), tier(id=2, name="Team", rank=10)],
        distribution=[DistributionRow(1, "Free", 1, 0, 0)],
        suggestions=[suggestion()],
        start=datetime(2026, 3, 3, 14, 5, tzinfo=UTC),
        end=WHEN,
        can_edit=True,
        as_of=WHEN,
    )
    v = tiers_view(page)
    assert [t["name"] for t in v.tiers] == ["Free", "Team"]
    assert v.tier_options == [
        {"value": "1", "label": "Free"},
        {"value": "2", "label": "Team"},
        {"value": NO_TIER, "label": "No tier"},
    ]
    assert v.range_text == "the last 7 days (2026-03-03 14:05 UTC to 2026-03-10 14:05 UTC)"
    assert v.rule == RULE and "20" in RULE and "5%" in RULE
    assert (v.can_edit, v.as_of, len(v.suggestions)) == (True, "14:05:00 UTC", 1)
    short = tiers_view(TiersPage([], [], [], datetime(2026, 3, 9, 14, 5, tzinfo=UTC), WHEN, False, WHEN))
    assert short.range_text.startswith("the last 24 hours")


def test_tier_form_round_trip_and_readable_errors() -> None:
    values = tier_form_values(tier())
    assert values == {
        "name": "Free",
        "description": "for trying",
        "rank": "0",
        "rpm": "10",
        "tpm": "20000",
        "rpd": "",
        "tpd": "",
        "daily_usd": "1.5",
        "monthly_usd": "",
    }
    typed = parse_tier_form(values | {"name": "  Free  ", "rank": "10"})
    assert (typed.name, typed.rank) == ("Free", 10)
    assert typed.limits == RateLimits(rpm=10, tpm=20_000) and typed.budget == BudgetLimits(1.5, None)
    assert tier_form_values(None)["rank"] == "0" and tier_form_values(None)["rpm"] == ""
    assert parse_tier_form({"name": "x"}).rank == 0
    with pytest.raises(TierError, match="rank must be a whole number"):
        parse_tier_form({"name": "x", "rank": "1.5"})
    with pytest.raises(KeyAdminError, match="RPM must be a whole number"):
        parse_tier_form({"name": "x", "rpm": "ten"})
    with pytest.raises(ValueError, match="daily budget"):
        parse_tier_form({"name": "x", "daily_usd": "1e99"})


def test_spend_rows_and_form_values() -> None:
    inc = IncreaseView(3, "user", 2, "bob@x", "day", 5.0, WHEN, WHEN.replace(hour=15), "launch <b>day</b>", "a@x", None)
    assert increase_row(inc) == {
        "id": "3",
        "entity": "user:2",
        "name": "bob@x",
        "kind": "User",
        "period": "Daily",
        "amount": "+$5.00",
        "created": "2026-03-10 14:05 UTC",
        "expires": "2026-03-10 15:05 UTC",
        "actor": "a@x",
        "reason": "launch <b>day</b>",  # text: the page renders it inert
    }
    reset = SpendResetView(4, "key", 7, "ci (sk-abc…)", "month", "2026-03", WHEN, 12.3456, "refund", "a@x")
    assert reset_row(reset) == {
        "id": "4",
        "entity": "key:7",
        "name": "ci (sk-abc…)",
        "kind": "Key",
        "period": "Monthly (2026-03)",
        "when": "2026-03-10 14:05 UTC",
        "spent_before": "$12.35",
        "actor": "a@x",
        "reason": "refund",
    }
    assert parse_entity("team:12") == ("team", 12)
    for bad in ("", "default:0", "key:", "key:x", "key:-1", "key:1234567890123", "key:\uff11"):
        with pytest.raises(SpendAdminError, match="Choose a user, a team or a key"):
            parse_entity(bad)
    assert parse_number(" $1,000.5 ", "The amount") == 1000.5
    for bad, why in (("", "must be a number"), ("abc", "must be a number"), ("0", "above 0"), ("-2", "above 0")):
        with pytest.raises(SpendAdminError, match=why):
            parse_number(bad, "The amount")
    with pytest.raises(SpendAdminError, match="above 0"):
        parse_number("nan", "The duration")


def test_budget_notes_on_the_limits_page() -> None:
    assert budget_note(0.0, None) == ""
    assert budget_note(0.0, WHEN) == "since the reset at 14:05 UTC"
    assert budget_note(5.0, None) == "incl. +$5.00 temporary"
    assert budget_note(2.5, WHEN) == "since the reset at 14:05 UTC · incl. +$2.50 temporary"
