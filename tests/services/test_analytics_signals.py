"""Anomaly flags, forecasts and recommendations on seeded traffic (SQLite and PostgreSQL): each fires where the
hand-worked figures say it must, and stays quiet where they say it must not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore
from llm_console.db.records import LogRecord
from llm_console.services import analytics_signals as signals
from tests.db.seeding import (  # noqa: F401
    EMBED,
    add_rows,
    at,
    backends_fixture,
    db_fixture,
    directory_rows,
    rec,
    write,
)

approx = pytest.approx
NOW = at(10, 0, 30)  # 24 hours checked: [03-09 00:00, 03-10 00:00), each against the 24 before it


def _hours(spike: bool = False) -> list[LogRecord]:
    """48 hours from 03-08 00:00, ten calls each: one carries the hour's spend ($1.00 on even hours, $1.02 on
    odd ones), latency 100 ms on even hours and 110 ms on odd ones, no errors. With `spike`, 03-09 12:00 spends
    $10 and fails 3 calls of 10; 03-09 16:00 has five calls only, all failing (too few to judge a rate)."""
    out = []
    for i in range(48):
        when = at(8 + i // 24, i % 24)
        spend, errors, calls = (1.00 if i % 2 == 0 else 1.02), 0, 10
        if spike and i == 36:
            spend, errors = 10.0, 3
        if spike and i == 40:
            errors, calls = 5, 5
        latency = 100.0 if i % 2 == 0 else 110.0
        out += [
            rec(when.replace(minute=j), cost=spend if j == 0 else 0.0, latency=latency,
                status="error" if j < errors else "ok")
            for j in range(calls)
        ]  # fmt: skip
    return out


def test_flat_noise_raises_no_flag(db: Engine) -> None:
    write(db, *_hours(), rec(at(10, 0, 10), cost=500.0))  # the current hour is not over: never judged
    report = signals.anomalies(db, NOW, hours=24, window=24)
    # every window holds twelve $1.00 and twelve $1.02 hours: median 1.01, MAD 0.01, so each hour sits at
    # z = ±0.6745; latency likewise (median 105 ms, MAD 5 ms); error rate is 0 throughout (z = 0)
    assert report.anomalies == [] and report.hours_checked == 24
    assert "Iglewicz" in report.method and "3.5" in report.method


def test_a_spike_is_flagged(db: Engine) -> None:
    write(db, *_hours(spike=True))
    spend, errors = signals.anomalies(db, NOW, hours=24, window=24).anomalies
    # 03-09 12:00 against 03-08 12:00 .. 03-09 11:00: twelve $1.00 and twelve $1.02 -> median 1.01, MAD 0.01
    # z = 0.6745 * (10 - 1.01) / 0.01 = 606.3755
    assert (spend.metric, spend.at, spend.value, spend.direction) == ("spend", at(9, 12), 10.0, "up")
    assert (spend.median, spend.mad, spend.z) == (approx(1.01), approx(0.01), approx(606.3755))
    # 3 errors of 10 against 24 hours without any: MAD and mean deviation are 0 -> shown as +999
    assert (errors.metric, errors.at, errors.value, errors.median, errors.z) == ("error_rate", at(9, 12), 0.3, 0, 999)
    # 03-09 16:00 (5 calls, all failing) is too quiet to judge; the hours after the spike see it as one
    # outlier among 24 (median and MAD barely move): no further flags


def test_anomaly_arguments(db: Engine) -> None:
    with pytest.raises(ValueError, match="at least one hour"):
        signals.anomalies(db, NOW, hours=0)
    assert signals.anomalies(db, NOW).anomalies == []  # no traffic: spend 0 throughout, rates never judged


def test_forecast_on_a_known_line(db: Engine) -> None:
    # 03-01 .. 03-28 (x = 0..27): x + 1 calls a day, 10 prompt tokens and $0.50 each
    write(db, *[rec(at(d, 12, i), prompt=10, cost=0.5) for d in range(1, 29) for i in range(d)])
    write(db, *[rec(at(28, 12, i, month=2), cost=9.0) for i in range(50)])  # 02-28: before the 28 days
    write(db, *[rec(at(29, 1, i), cost=9.0) for i in range(40)])  # today (03-29): not over, left out
    requests, tokens, cost = signals.forecasts(db, at(29, 12))
    assert requests.history[0] == (at(1).date(), 1.0) and requests.history[-1] == (at(28).date(), 28.0)
    # requests = x + 1 exactly: slope 1; today is x = 28 -> 29, then 30 .. 35; no scatter, no interval width
    assert requests.slope_per_day == approx(1.0)
    assert [(p.day, p.value) for p in requests.points] == [(at(29 + i).date() if i < 3 else at(i - 2, month=4).date(),
        approx(29.0 + i)) for i in range(7)]  # fmt: skip
    assert all(p.low == approx(p.value) == approx(p.high) for p in requests.points)
    # the next 7 days: 29 + 30 + ... + 35 = 224 calls, 2240 tokens, $112
    assert requests.next_7_days_total == approx(224.0)
    assert (tokens.slope_per_day, tokens.next_7_days_total) == (approx(10.0), approx(2240.0))
    assert (cost.metric, cost.slope_per_day, cost.next_7_days_total) == ("cost_usd", approx(0.5), approx(112.0))
    assert "28 full UTC days" in cost.method and "26 degrees of freedom" in cost.method


def test_forecast_zero_fills_and_stops_at_zero(db: Engine) -> None:
    # 03-05 .. 03-09: 8, 6, 4, 2 calls and a silent day (0): slope -2; the line goes below 0 from 03-10
    write(db, *[rec(at(5 + k, 3, i)) for k, n in enumerate((8, 6, 4, 2)) for i in range(n)])
    (requests, *_) = signals.forecasts(db, at(10, 12), history_days=5, horizon=2)
    assert [v for _, v in requests.history] == [8, 6, 4, 2, 0]
    assert requests.slope_per_day == approx(-2.0)
    assert [(p.day, p.value, p.low, p.high) for p in requests.points] == [
        (at(10).date(), 0.0, 0.0, 0.0),
        (at(11).date(), 0.0, 0.0, 0.0),
    ]
    assert requests.next_7_days_total == 0.0
    with pytest.raises(ValueError, match="at least 3 days"):
        signals.forecasts(db, NOW, history_days=2)
    with pytest.raises(ValueError, match="at least one day ahead"):
        signals.forecasts(db, NOW, horizon=0)


def _pair(small_latency: float = 900.0, small_errors: int = 0, small_cost: float = 0.002) -> list[LogRecord]:
    """'big' and 'small' on chat, 20 calls each of 1000 prompt tokens; big $0.01 a call at 1000 ms, so
    $0.01 per 1k tokens; an embedding model far cheaper still, which must never be offered for chat."""
    return [
        *[rec(at(4, 1, i), alias="big", deployment_id=1, prompt=1000, cost=0.01, latency=1000.0) for i in range(20)],
        *[
            rec(at(4, 2, i), alias="small", deployment_id=2, prompt=1000, cost=small_cost, latency=small_latency,
                status="error" if i < small_errors else "ok")
            for i in range(20)
        ],
        *[rec(at(4, 3, i), alias="embed", endpoint=EMBED, deployment_id=3, prompt=1000, cost=0.00002, latency=50.0)
          for i in range(20)],
    ]  # fmt: skip


def _scores(alias: str, values: list[float]) -> list[FeedbackScore]:
    return [FeedbackScore(created_at=at(4, 5), name="stars", value=v, alias=alias) for v in values]


def test_cheaper_model(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(db, *_pair())
    (r,) = signals.recommendations(db, at(4), at(5))
    # big: 20 000 tokens for $0.20 = $0.01 per 1k; small: $0.04 for 20 000 = $0.002 per 1k (80 % cheaper)
    # p95: 1000 ms and 900 ms both fall in the (750, 1000] bucket -> 750 + 250 * 19/20 = 987.5 each (<= +10 %)
    # saving = $0.20 - 20 000 tokens at $0.002 per 1k = 0.20 - 0.04 = $0.16
    assert (r.kind, r.title, r.saving_usd) == ("cheaper_model", "Try small instead of big", approx(0.16))
    assert r.figures == {
        "Cost per 1k tokens": "$0.0100 → $0.002000",
        "Latency": "p95 988 ms → p95 988 ms",
        "Error rate": "0.0 % → 0.0 %",
        "Tokens in range": "20.0k",
        "Saving in range": "$0.1600",
    }
    assert "/v1/chat/completions" in r.detail


@pytest.mark.parametrize(
    ("why", "kw"),
    [
        ("slower: p95 1500 + 500 * 0.95 = 1975 ms > 1.1 * 987.5", {"small_latency": 2000.0}),
        ("less reliable: 10 % errors against 0 % + 1 point", {"small_errors": 2}),
        ("not cheap enough: $0.0085 per 1k > 0.8 * $0.01", {"small_cost": 0.0085}),
    ],
)
def test_no_cheaper_model(db: Engine, why: str, kw: dict[str, Any]) -> None:
    write(db, *_pair(**kw))
    assert [r for r in signals.recommendations(db, at(4), at(5)) if r.kind == "cheaper_model"] == [], why


def test_cheaper_model_respects_scores(db: Engine) -> None:
    write(db, *_pair())
    # The stars scale seen is 1..5 (the 1 from a third model): 5 % of it is 0.2.
    add_rows(db, *_scores("other", [1.0]), *_scores("big", [5, 5, 5, 4, 4]))  # big: mean 4.6
    add_rows(db, *_scores("small", [5, 5, 4, 4]))  # four scores only: not enough to judge -> still offered
    assert [r.kind for r in signals.recommendations(db, at(4), at(5))] == ["cheaper_model"]
    add_rows(db, *_scores("small", [1.0]))  # small: 19 / 5 = 3.8, 0.8 lower than big: no longer offered
    assert signals.recommendations(db, at(4), at(5)) == []


def test_cheaper_model_within_the_score_margin(db: Engine) -> None:
    write(db, *_pair())
    add_rows(db, *_scores("other", [1.0]), *_scores("big", [5, 5, 5, 4, 4]), *_scores("small", [5, 5, 4, 4, 4.25]))
    # small: 22.25 / 5 = 4.45, 0.15 below big's 4.6: inside 0.2
    (r,) = signals.recommendations(db, at(4), at(5))
    assert r.figures["Mean stars"] == "4.60 (n=5) → 4.45 (n=5)"


def test_error_hotspots(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(
        db,
        *[rec(at(4, 1, i // 60, i % 60), alias="gpt", deployment_id=1, status="error" if i == 0 else "ok")
          for i in range(100)],
        *[rec(at(4, 3, i), alias="flaky", deployment_id=2, status="error" if i < 4 else "ok") for i in range(20)],
    )  # fmt: skip
    model, deployment = signals.recommendations(db, at(4), at(5))
    # all traffic: 5 errors in 120 calls = 4.17 %; flaky 4 of 20 = 20 % (>= 5 %, >= 3 x 4.17 = 12.5 %)
    # Wilson 4/20: centre (0.2 + 0.09604) / 1.19208 = 0.248339, half 1.96 * 0.101985 / 1.19208 = 0.167683
    assert (model.kind, model.title) == ("error_hotspot", "Errors concentrate on flaky")
    assert model.figures == {
        "Calls": "20",
        "Errors": "4",
        "Error rate": "20.0 % (95 % CI 8.1 % to 41.6 %)",
        "All traffic": "4.2 %",
    }
    assert (deployment.title, deployment.saving_usd) == ("Errors concentrate on openai-main / gpt-b", None)


@pytest.mark.parametrize(
    ("flaky_calls", "flaky_errors", "gpt_errors", "why"),
    [
        (19, 4, 1, "too few calls: 19 < 20"),
        (30, 1, 0, "too rare: 1 of 30 = 3.3 % < 5 %, though far above the 0.8 % overall"),
        (20, 2, 4, "not concentrated: 10 % < 3 x (6 / 120 = 5 %)"),
    ],
)
def test_no_error_hotspot(db: Engine, flaky_calls: int, flaky_errors: int, gpt_errors: int, why: str) -> None:
    write(
        db,
        *[rec(at(4, 1, i // 60, i % 60), alias="gpt", deployment_id=1, status="error" if i < gpt_errors else "ok")
          for i in range(100)],
        *[rec(at(4, 3, i), alias="flaky", deployment_id=2, status="error" if i < flaky_errors else "ok")
          for i in range(flaky_calls)],
    )  # fmt: skip
    assert signals.recommendations(db, at(4), at(5)) == [], why


def test_cache_prompts(db: Engine) -> None:
    write(
        db,
        rec(at(4, 1), alias="long", prompt=1_000_000, cached=50_000),  # 5 % cached: fires
        rec(at(4, 2), alias="cached", prompt=2_000_000, cached=200_000),  # 10 %: enough
        rec(at(4, 3), alias="short", prompt=999_999),  # under a million prompt tokens
    )
    (r,) = signals.recommendations(db, at(4), at(5))
    assert (r.kind, r.title, r.saving_usd) == ("cache_prompts", "Cache long's prompts", None)
    assert r.figures == {"Prompt tokens": "1.0M", "Cached share": "5.0 %", "Spend": "$0.00"}


def test_recommendations_order(db: Engine) -> None:
    write(
        db,
        *_pair(),
        *[rec(at(4, 4, i), alias="flaky", deployment_id=None, status="error") for i in range(20)],
        rec(at(4, 6), alias="long", deployment_id=None, prompt=1_000_000),
    )
    # a dollar saving first, then the hotspot (flaky: 20 of 81 calls fail; no deployment), then caching
    assert [(r.kind, r.title) for r in signals.recommendations(db, at(4), at(5))] == [
        ("cheaper_model", "Try small instead of big"),
        ("error_hotspot", "Errors concentrate on flaky"),
        ("cache_prompts", "Cache long's prompts"),
    ]
