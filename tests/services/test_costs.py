"""Costs: the month-end forecast (hand-computed), breakdowns and shares, month to date against budget, exports."""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.engine import session
from llm_console.db.logstore import write_batch
from llm_console.db.models import Team, User
from llm_console.db.records import LogRecord
from llm_console.presenters.costs import EXPORT_COLUMNS, costs_view
from llm_console.presenters.export import rows_csv, rows_json
from llm_console.services.costs import forecast_month, load_costs, month_to_date
from llm_console.services.filters import parse_filters

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # half of 11 March is left, then 12..31 March: 20.5 days


def day(n: int, month: int = 3) -> datetime:
    return datetime(2026, month, n, tzinfo=UTC)


def test_forecast_mean_model_hand_computed() -> None:
    # 1..10 March alternate 8 and 12 (mean 10; no clear trend), 6 spent so far today.
    daily = {day(n): (8.0 if n % 2 else 12.0) for n in range(1, 11)} | {day(11): 6.0}
    f = forecast_month(daily, NOW)
    assert f is not None
    assert f.method == "mean"
    assert f.days_fitted == 10
    assert f.remaining_days == pytest.approx(20.5)
    assert f.daily_usd == pytest.approx(10.0)
    # Sample standard deviation: ten deviations of ±2 -> sqrt(40 / 9).
    sigma = math.sqrt(40 / 9)
    assert f.sigma_usd == pytest.approx(sigma)
    mtd = 100.0 + 6.0
    assert f.expected_usd == pytest.approx(mtd + 10.0 * 20.5)  # 311
    margin = 1.96 * sigma * math.sqrt(20.5)  # ≈ 18.71
    assert f.low_usd == pytest.approx(311.0 - margin)
    assert f.high_usd == pytest.approx(311.0 + margin)
    assert 292 < f.low_usd < 293 and 329 < f.high_usd < 330


def test_forecast_uses_a_clear_linear_trend() -> None:
    # Spend grows by exactly 1 a day: 1, 2, ..., 10 on 1..10 March (x = 0..9, y = 1 + x), 4 so far today.
    daily = {day(n): float(n) for n in range(1, 11)} | {day(11): 4.0}
    f = forecast_month(daily, NOW)
    assert f is not None
    assert f.method == "trend"
    # The line gives 11 for today (half of it left: 5.5) and 12..31 for 12..31 March (sum 430).
    assert f.daily_usd == pytest.approx(11.0)
    assert f.expected_usd == pytest.approx(55.0 + 4.0 + 5.5 + 430.0)
    assert f.sigma_usd == pytest.approx(0.0, abs=1e-9)
    assert f.low_usd == pytest.approx(f.high_usd)


def test_a_young_month_also_fits_on_the_previous_14_days() -> None:
    now = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # two complete March days; 0.75 of today + 28 days left
    daily = {day(15, 2) + timedelta(days=i): 5.0 for i in range(16)} | {day(3): 1.0}
    daily[day(1, 2)] = 999.0  # older than the look-back: ignored
    f = forecast_month(daily, now)
    assert f is not None
    assert f.days_fitted == 16  # 15..28 February and 1..2 March
    assert f.method == "mean"
    assert f.remaining_days == pytest.approx(28.75)
    assert f.expected_usd == pytest.approx(10.0 + 1.0 + 5.0 * 28.75)
    assert f.sigma_usd == pytest.approx(0.0)


def test_no_forecast_without_two_days_of_history_and_leading_quiet_days_are_dropped() -> None:
    assert forecast_month({}, NOW) is None
    assert forecast_month({day(10): 3.0, day(11): 1.0}, NOW) is None  # one complete day with spend
    f = forecast_month({day(9): 2.0, day(10): 4.0}, NOW)
    assert f is not None and f.days_fitted == 2 and f.daily_usd == pytest.approx(3.0)


def test_the_interval_never_goes_below_what_is_already_spent() -> None:
    daily = {day(1): 0.1, day(2): 50.0, day(3): 0.1, day(4): 0.1, day(11): 0.0}
    f = forecast_month(daily, NOW)
    assert f is not None
    assert f.low_usd == pytest.approx(50.3)


def record(at: datetime, cost: float, *, alias: str = "gpt", user: int | None = None, team: int | None = None):
    return LogRecord(
        id=str(uuid.uuid4()),
        created_at=at,
        endpoint="/v1/chat/completions",
        alias=alias,
        user_id=user,
        team_id=team,
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=cost,
        latency_ms=50.0,
    )


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with session(engine) as s:
        s.add(User(id=1, email="ada@example.com"))
        s.add(User(id=2, email="=cmd@example.com"))
        s.add(Team(id=7, name="research"))
        s.commit()
    write_batch(
        engine,
        [
            record(NOW - timedelta(hours=1), 3.0, user=1, team=7),
            record(NOW - timedelta(days=1), 1.0, alias="small", user=2),
            record(NOW - timedelta(days=2), 2.0, user=1, team=7),
            record(NOW - timedelta(days=40), 100.0),  # outside 30 days, before the month
        ],
    )
    return engine


def test_load_costs_breaks_spend_down_with_names_and_a_daily_trend(seeded: Engine) -> None:
    data = load_costs(seeded, parse_filters({"range": "30d"}, now=NOW), 0.0, now=NOW)
    assert data.totals.cost_usd == pytest.approx(6.0)
    assert [(n.label, n.totals.cost_usd) for n in data.breakdowns["alias"]] == [("gpt", 5.0), ("small", 1.0)]
    assert [(n.label, n.totals.cost_usd) for n in data.breakdowns["user"]] == [
        ("ada@example.com", 5.0),
        ("=cmd@example.com", 1.0),
    ]
    assert [n.label for n in data.breakdowns["team"]] == ["research", "(none)"]
    assert [n.label for n in data.breakdowns["endpoint"]] == ["/v1/chat/completions"]
    assert len(data.daily) == 31  # every UTC day the 30-day range touches, zero-filled
    assert sum(v for _, v in data.daily) == pytest.approx(6.0)
    assert data.daily[-1] == (day(11), 3.0)
    assert data.month.spent_usd == pytest.approx(6.0)
    assert data.month.status == "none"

    view = costs_view(data)
    assert view.breakdowns["alias"][0] == {
        "name": "gpt",
        "requests": "2",
        "tokens": "30",
        "cost": "$5.00",
        "share": "83.3%",
    }
    assert view.budget["status"] == "none"
    assert "LLMC_MONTHLY_BUDGET_USD" in view.budget["hint"]
    assert view.trend[-1] == {"day": "2026-03-11", "cost": 3.0}


@pytest.mark.parametrize(
    ("budget", "status", "pct"),
    [(10.0, "ok", 60), (7.5, "warning", 80), (6.0, "exceeded", 100), (3.0, "exceeded", 100)],
)
def test_month_to_date_against_the_budget(seeded: Engine, budget: float, status: str, pct: int) -> None:
    m = month_to_date(seeded, budget, NOW)
    assert m.status == status
    data = load_costs(seeded, parse_filters({}, now=NOW), budget, now=NOW)
    view = costs_view(data)
    assert view.budget_pct == pct
    assert view.budget["label"] == {"ok": "OK", "warning": "Warning", "exceeded": "Exceeded"}[status]


def test_forecast_text_and_budget_warning() -> None:
    from llm_console.presenters.costs import forecast_view
    from llm_console.services.costs import MonthToDate

    daily = {day(n): (8.0 if n % 2 else 12.0) for n in range(1, 11)} | {day(11): 6.0}
    m = MonthToDate(day(1), 106.0, 300.0, "ok", forecast_month(daily, NOW))
    view = forecast_view(m)
    assert view["text"] == "forecast $311.00 (95%: $292.29 \u2013 $329.71)"
    assert view["warn"] == "Expected to exceed the $300.00 budget."
    assert forecast_view(MonthToDate(day(1), 0.0, 0.0, "none", None))["text"] == "Not enough history yet"


def test_exports_hold_plain_values_and_defuse_formulas(seeded: Engine) -> None:
    view = costs_view(load_costs(seeded, parse_filters({"range": "30d"}, now=NOW), 0.0, now=NOW))
    rows = list(csv.DictReader(io.StringIO(rows_csv(view.export, EXPORT_COLUMNS))))
    assert {r["dimension"] for r in rows} == {"alias", "endpoint", "team", "user", "key"}
    gpt = next(r for r in rows if r["dimension"] == "alias" and r["name"] == "gpt")
    assert gpt["cost_usd"] == "5.0" and gpt["share"] == "0.8333" and gpt["requests"] == "2"
    assert any(r["name"] == "'=cmd@example.com" for r in rows)
    loaded = json.loads(rows_json(view.export))
    assert loaded[0]["dimension"] == "alias" and loaded[0]["cost_usd"] == 5.0
    assert any(r["name"] == "=cmd@example.com" for r in loaded)  # JSON is data, not a spreadsheet
    # State hands rows over wrapped (Reflex's MutableProxy); any mapping will do.
    assert json.loads(rows_json([MappingProxyType({"a": 1})])) == [{"a": 1}]
