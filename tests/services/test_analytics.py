"""The Analytics page's rollup panels on seeded traffic (through the real log writer), SQLite and PostgreSQL,
every figure worked out by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore
from llm_console.db.records import LogRecord
from llm_console.services import analytics as an
from llm_console.services import analytics_ab as ab
from llm_console.services import analytics_signals as signals
from llm_console.services.analytics_types import TracePoint
from tests.db.seeding import (  # noqa: F401
    add_rows,
    at,
    backends_fixture,
    db_fixture,
    directory_rows,
    rec,
    write,
)

approx = pytest.approx
EMBED = "/v1/embeddings"


def call(when: datetime, *, end_user: str | None = None, tags: str | None = None, **kw: Any) -> LogRecord:
    r = rec(when, **kw)
    r.end_user, r.tags = end_user, tags
    return r


def score(when: datetime, name: str, value: float | None = None, **kw: Any) -> FeedbackScore:
    return FeedbackScore(created_at=when, name=name, value=value, **kw)


def test_traces_over_time_zero_fills_minutes(db: Engine) -> None:
    write(
        db,
        call(at(4, 10, 0, 5), cost=0.5, prompt=10, completion=5),
        call(at(4, 10, 0, 50), status="error", cost=0.25, prompt=1),
        call(at(4, 10, 2), alias="claude", cost=1.0, completion=7),
        call(at(4, 12, 59), alias="claude"),  # after the range
    )
    points = an.traces_over_time(db, at(4, 10), at(4, 11))  # one hour: minutes
    assert len(points) == 60 and points[0].bucket == at(4, 10) and points[-1].bucket == at(4, 10, 59)
    # 10:00: two calls (one error), 10 + 5 + 1 tokens, $0.75; 10:01 nothing; 10:02 the claude call
    assert points[0] == TracePoint(at(4, 10), 2, 1, 16, 0.75)
    assert points[1] == TracePoint(at(4, 10, 1), 0, 0, 0, 0.0)
    assert points[2] == TracePoint(at(4, 10, 2), 1, 0, 7, 1.0)
    assert sum(p.requests for p in points) == 3
    only = an.traces_over_time(db, at(4, 10), at(4, 11), alias="claude")
    assert [(p.bucket, p.requests) for p in only if p.requests] == [(at(4, 10, 2), 1)]


def test_traces_by_tag_use_hours(db: Engine) -> None:
    write(
        db,
        call(at(4, 10, 5), tags="batch,eval"),
        call(at(4, 10, 6), tags="eval"),
        call(at(4, 11, 30), tags="batch"),
        call(at(4, 11, 31)),
    )
    # Three hours would be minutes, but tags are rolled up per hour at the finest.
    points = an.traces_over_time(db, at(4, 10), at(4, 13), tag="eval")
    assert [(p.bucket, p.requests) for p in points] == [(at(4, 10), 2), (at(4, 11), 0), (at(4, 12), 0)]
    assert [p.requests for p in an.traces_over_time(db, at(4, 10), at(4, 13), tag="batch")] == [1, 1, 0]
    assert an.tag_options(db, at(4, 10), at(4, 13)) == [("batch", 2), ("eval", 2)]
    with pytest.raises(ValueError, match=r"Filter by a model or by a tag, not both\."):
        an.traces_over_time(db, at(4, 10), at(4, 13), alias="gpt", tag="eval")


def test_traces_over_a_week_are_hourly(db: Engine) -> None:
    write(db, call(at(2, 5, 30)), call(at(2, 5, 45)))
    points = an.traces_over_time(db, at(1), at(8))
    assert len(points) == 7 * 24
    assert points[24 + 5] == TracePoint(at(2, 5), 2, 0, 0, 0.0)


def test_unique_users_count_end_users_and_key_owners(db: Engine) -> None:
    write(
        db,
        # 03-04: end users ann and bob (ann twice, once from user 1's key), key owners 1 and 2, bare key 2,
        # and one call with neither key nor user ("k:"): 6 distinct, 2 of them end users
        call(at(4, 9), end_user="ann", key_id=1, user_id=1),
        call(at(4, 10), end_user="ann", key_id=2),
        call(at(4, 11), end_user="bob"),
        call(at(4, 12), key_id=1, user_id=1),
        call(at(4, 13), key_id=3, user_id=2),
        call(at(4, 14), key_id=2),
        call(at(4, 15)),
        # 03-05: ann again and user 1: 2 distinct, 1 end user
        call(at(5, 1), end_user="ann"),
        call(at(5, 2), key_id=1, user_id=1),
        call(at(6, 0, 0, 1), end_user="carol"),  # the day after the range
    )
    points = an.unique_users(db, at(3, 12), at(6))
    assert [(p.day, p.users, p.end_users) for p in points] == [
        (at(3).date(), 0, 0),
        (at(4).date(), 6, 2),
        (at(5).date(), 2, 1),
    ]


def test_heatmap_by_weekday_and_hour(db: Engine) -> None:
    write(
        db,
        # 2026-03-04 and 03-11 are Wednesdays (weekday 2); 03-08 a Sunday (6)
        call(at(4, 10, 5)),
        call(at(4, 10, 40)),
        call(at(11, 10, 0)),
        call(at(8, 23, 59), alias="claude"),
        call(at(11, 9, 59), alias="claude"),
        call(at(12, 10), alias="claude"),  # Thursday, after the range
    )
    h = an.heatmap(db, at(4), at(12))
    assert h.cells[2][10] == 3 and h.cells[6][23] == 1 and h.cells[2][9] == 1
    assert h.total == 5 and sum(map(sum, h.cells)) == 5
    assert (h.peak_weekday, h.peak_hour, h.peak_requests) == (2, 10, 3)
    claude = an.heatmap(db, at(4), at(12), alias="claude")
    assert (claude.total, claude.cells[6][23], claude.cells[2][9]) == (2, 1, 1)
    # ties go to the earliest (weekday, hour): Wednesday 09:00 before Sunday 23:00
    assert (claude.peak_weekday, claude.peak_hour) == (2, 9)
    empty = an.heatmap(db, at(20), at(21))
    assert (empty.total, empty.peak_weekday, empty.peak_hour, empty.peak_requests) == (0, None, None, 0)


def _economy(db: Engine) -> None:
    write(
        db,
        call(at(4, 1), alias="gpt", prompt=1000, completion=500, cached=200, cost=0.03),
        call(at(4, 2), alias="gpt", prompt=3000, completion=500, cached=0, cost=0.05, status="error"),
        call(at(4, 3), alias="mini", prompt=1000, completion=1000, cost=0.002),
        call(at(4, 4), alias="mini", prompt=0, completion=0, cost=0.0, status="error"),
        call(at(4, 5), alias="mini", prompt=0, completion=0, cost=0.0, status="error"),
        call(at(4, 6), alias="free", prompt=0, completion=0, cost=0.0),
    )


def test_token_economics(db: Engine) -> None:
    _economy(db)
    gpt, mini, free = an.token_economics(db, at(4), at(5))
    # gpt: 2 calls, 4000 prompt + 1000 completion = 5000 tokens, 200 cached, $0.08
    assert (gpt.alias, gpt.requests, gpt.prompt_tokens, gpt.completion_tokens, gpt.cached_tokens) == (
        "gpt", 2, 4000, 1000, 200,
    )  # fmt: skip
    assert gpt.cost_usd == approx(0.08)
    assert gpt.cost_per_request == approx(0.04)  # 0.08 / 2
    assert gpt.cost_per_1k_tokens == approx(0.016)  # 0.08 / 5000 * 1000
    assert gpt.tokens_per_request == 2500  # 5000 / 2
    assert gpt.cached_share == 0.05  # 200 / 4000
    # mini: 3 calls, 2000 tokens, $0.002 -> $0.001 per 1k; no cached tokens out of 1000 prompt tokens
    assert (mini.alias, mini.requests, mini.cost_per_1k_tokens, mini.cached_share) == ("mini", 3, approx(0.001), 0)
    assert mini.tokens_per_request == approx(2000 / 3)
    # free: no tokens, no spend -> ratios over zero are None, not 0
    assert (free.alias, free.cost_per_request, free.cost_per_1k_tokens, free.cached_share) == ("free", 0, None, None)


def test_error_rates_with_wilson_intervals(db: Engine) -> None:
    _economy(db)
    mini, gpt, free = an.error_rates(db, at(4), at(5))  # most errors first
    # mini 2 of 3: p = 0.666667, z²/n = 1.280533, denominator 2.280533
    # centre = (0.666667 + 0.640267) / 2.280533 = 0.573085
    # half = 1.96 * sqrt(0.222222/3 + 3.8416/36) / 2.280533 = 1.96 * sqrt(0.180785) / 2.280533 = 0.365424
    assert (mini.alias, mini.requests, mini.errors, mini.error_rate) == ("mini", 3, 2, approx(2 / 3))
    assert (mini.ci_low, mini.ci_high) == (approx(0.207661, abs=1e-5), approx(0.938509, abs=1e-5))
    # gpt 1 of 2 and free 0 of 1: Wilson keeps them honest (wide), free's low end is 0
    assert (gpt.alias, gpt.errors, gpt.error_rate) == ("gpt", 1, 0.5)
    assert (free.alias, free.errors, free.error_rate, free.ci_low) == ("free", 0, 0.0, 0.0)
    # 0 of 1: centre = half = (3.8416/2) / 4.8416 = 0.396728 -> high 0.793457
    assert free.ci_high == approx(0.793457, abs=1e-5)


def test_feedback_summary(db: Engine) -> None:
    add_rows(
        db,
        score(at(4, 1), "quality", 4, alias="gpt", request_id="r1"),
        score(at(4, 2), "quality", 5, alias="gpt", request_id="r2"),
        score(at(5, 3), "quality", 3, alias="gpt", request_id="r3"),
        score(at(5, 4), "quality", 2, alias="mini", request_id="r4"),
        score(at(5, 5), "verdict", None, category="correct", alias="mini", request_id="r4"),
        score(at(5, 6), "verdict", None, category="correct", alias="mini", request_id="r5"),
        score(at(5, 7), "verdict", None, category="wrong", alias="mini", request_id="r6"),
        score(at(5, 8), "quality", 1, session_id="s1"),  # a whole session: no model
        score(at(6, 0, 0, 1), "quality", 5, alias="gpt", request_id="r9"),  # after the range
    )
    fb = an.feedback_summary(db, at(4), at(6))
    assert fb.names == ["quality", "verdict"] and fb.total == 8
    session, gpt, mini_q, mini_v = fb.by_model
    # gpt quality 4, 5, 3: mean 4, s² = (0 + 1 + 1) / 2 = 1, half = 1.96 * 1/√3 = 1.131607
    assert (gpt.alias, gpt.name, gpt.n, gpt.mean) == ("gpt", "quality", 3, approx(4))
    assert (gpt.ci_low, gpt.ci_high) == (approx(2.868393), approx(5.131607))
    assert (session.alias, session.n, session.mean, session.ci_low) == ("", 1, 1.0, None)
    assert (mini_q.n, mini_q.mean, mini_q.ci_low) == (1, 2.0, None)  # one score: no interval
    assert (mini_v.name, mini_v.n, mini_v.mean, mini_v.categories) == ("verdict", 3, None, {"correct": 2, "wrong": 1})
    # per day: 03-04 quality 4, 5 -> 4.5; 03-05 quality 3, 2, 1 -> 2, verdict 3 (no mean)
    assert [(p.day, p.name, p.n, p.mean) for p in fb.over_time] == [
        (at(4).date(), "quality", 2, approx(4.5)),
        (at(5).date(), "quality", 3, approx(2.0)),
        (at(5).date(), "verdict", 3, None),
    ]
    only = an.feedback_summary(db, at(4), at(6), alias="mini")
    assert only.total == 4 and [(m.alias, m.name) for m in only.by_model] == [("mini", "quality"), ("mini", "verdict")]
    assert [(p.day, p.name, p.n) for p in only.over_time] == [
        (at(5).date(), "quality", 1),
        (at(5).date(), "verdict", 3),
    ]


def test_model_comparison(db: Engine) -> None:
    write(
        db,
        *[call(at(4, 1, i), alias="gpt", completion=50, latency=100, cost=0.01) for i in range(4)],
        call(at(4, 2), alias="mini", completion=30, latency=2000, cost=0.002, status="error"),
    )
    add_rows(
        db,
        score(at(4, 3), "thumb", 1, alias="gpt"),
        score(at(4, 3), "thumb", 0, alias="gpt"),
        score(at(4, 3), "thumb", 1, alias="mini"),
        score(at(4, 3), "stars", 5, alias="mini"),  # given once: "thumb" (three times) is the one compared on
    )
    gpt, mini = an.model_comparison(db, at(4), at(5))
    # gpt: four calls of 100 ms, all in the (75, 100] histogram bucket: p50 = 75 + 25 * (2/4) = 87.5,
    # p95 = 75 + 25 * (3.8/4) = 98.75; 200 completion tokens over 0.4 s = 500 tokens/s
    assert (gpt.alias, gpt.requests, gpt.p50_ms, gpt.p95_ms, gpt.mean_ms) == ("gpt", 4, 87.5, 98.75, 100.0)
    assert gpt.output_tokens_per_s == approx(500.0)
    assert (gpt.cost_per_request, gpt.error_rate) == (approx(0.01), 0.0)
    assert (gpt.score_name, gpt.score_mean, gpt.score_n) == ("thumb", 0.5, 2)
    # mini: one call of 2000 ms in (1500, 2000]: p50 = 1500 + 500 * 0.5 = 1750; 30 tokens / 2 s = 15 /s
    assert (mini.p50_ms, mini.mean_ms, mini.output_tokens_per_s, mini.error_rate) == (1750.0, 2000.0, 15.0, 1.0)
    assert (mini.score_name, mini.score_mean, mini.score_n) == ("thumb", 1.0, 1)


def test_ab_options(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(
        db,
        call(at(4, 1), alias="gpt", deployment_id=3),
        call(at(4, 1), alias="gpt", deployment_id=1),
        call(at(4, 2), alias="mini", deployment_id=99),  # a deleted deployment
        call(at(4, 3), alias="mini", deployment_id=None),  # refused before routing
        call(at(9), alias="old", deployment_id=2),  # outside the range
    )
    deployments, aliases = ab.ab_options(db, at(4), at(5))
    assert deployments == [("99", "#99 (deleted)"), ("3", "azure-eu / gpt-eu"), ("1", "openai-main / gpt-a")]
    assert aliases == [("gpt", "gpt"), ("mini", "mini")]


def test_load_analytics_is_the_panels_together(db: Engine) -> None:
    add_rows(db, *directory_rows())
    _economy(db)
    write(db, call(at(4, 7), alias="gpt", tags="eval", end_user="ann"))
    add_rows(db, score(at(4, 8), "quality", 4, alias="gpt"), score(at(4, 9), "quality", 2, alias="mini"))
    start, end, now = at(4), at(5), at(5, 6)
    data = an.load_analytics(db, start, end, now, ab=("deployment", "1", "1"))
    assert data.traces == an.traces_over_time(db, start, end)
    assert data.users == an.unique_users(db, start, end)
    assert data.heatmap == an.heatmap(db, start, end)
    assert data.economics == an.token_economics(db, start, end)
    assert data.errors == an.error_rates(db, start, end)
    assert data.feedback == an.feedback_summary(db, start, end)
    assert data.comparison == an.model_comparison(db, start, end)
    assert (data.ab_deployments, data.ab_aliases) == ab.ab_options(db, start, end)
    assert data.anomalies == signals.anomalies(db, now)
    assert data.forecasts == signals.forecasts(db, now)
    assert data.recommendations == signals.recommendations(db, start, end)
    assert data.tags == [("eval", 1)] and data.as_of == now
    assert data.ab is None
    assert data.ab_error == "Choose two different deployments: A and B are both 'openai-main / gpt-a'."
    narrowed = an.load_analytics(db, start, end, now, alias="mini")
    assert narrowed.traces == an.traces_over_time(db, start, end, alias="mini")
    assert narrowed.heatmap.total == 3 and narrowed.feedback.total == 1
    assert narrowed.economics == data.economics  # the tables always show every model
    # over a week the chart is hourly and shares its rows with the heatmap, unless it shows a tag
    for kw in ({}, {"alias": "mini"}, {"tag": "eval"}):
        week = an.load_analytics(db, at(1), at(8), now, **kw)
        assert week.traces == an.traces_over_time(db, at(1), at(8), **kw)
        assert week.heatmap == an.heatmap(db, at(1), at(8), alias=kw.get("alias"))
    assert an.load_analytics(db, at(1), at(8), now, tag="eval").heatmap.total == 7
    with pytest.raises(ValueError, match="not both"):
        an.load_analytics(db, start, end, now, alias="gpt", tag="eval")
    with pytest.raises(ValueError, match="must end after it starts"):
        an.load_analytics(db, end, start, now)
