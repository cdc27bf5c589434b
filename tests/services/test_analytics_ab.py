"""The A/B view: two deployments or two models compared on their calls' rows and scores, SQLite and
PostgreSQL, against intervals worked out by hand; and every way a choice of arms can be wrong."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore, ModelAlias
from llm_console.services import analytics_ab as ab
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
START, END = at(4), at(5)


@pytest.fixture
def arms(db: Engine) -> Engine:
    add_rows(db, *directory_rows())
    write(
        db,
        # A = deployment 1 (gpt-a): 100, 200, 300, 400 ms, no errors, $0.01 each
        *[rec(at(4, 1, i), id=f"a{i}", deployment_id=1, latency=100.0 * (i + 1), cost=0.01) for i in range(4)],
        # B = deployment 2 (gpt-b): 200, 300, 400, 500 ms, 2 errors, $0.01, 0.02, 0.03, 0.04
        *[
            rec(at(4, 2, i), id=f"b{i}", deployment_id=2, alias="mini", latency=100.0 * (i + 2),
                cost=0.01 * (i + 1), status="error" if i < 2 else "ok")
            for i in range(4)
        ],
        rec(at(5, 1), deployment_id=1, latency=9000.0),  # after the range
    )  # fmt: skip
    add_rows(
        db,
        *[
            FeedbackScore(created_at=at(4, 3), request_id=f"a{i}", name="stars", value=v, alias="gpt",
                          deployment_id=1, request_at=at(4, 1, i))
            for i, v in enumerate([4.0, 5.0, 3.0])
        ],
        *[
            FeedbackScore(created_at=at(4, 3), request_id=f"b{i}", name="stars", value=v, alias="mini",
                          deployment_id=2, request_at=at(4, 2, i))
            for i, v in enumerate([2.0, 3.0, 1.0])
        ],
        FeedbackScore(created_at=at(4, 3), request_id="b3", name="thumb", value=1.0, alias="mini", deployment_id=2,
                      request_at=at(4, 2, 3)),  # a less given name: not the one compared
        FeedbackScore(created_at=at(4, 3), request_id="b3", name="stars", category="n/a", alias="mini",
                      deployment_id=2, request_at=at(4, 2, 3)),  # categorical: no number to average
    )  # fmt: skip
    return db


def test_two_deployments(arms: Engine) -> None:
    r = ab.ab_test(arms, START, END, kind="deployment", a="1", b="2")
    a, b = r.a, r.b
    assert (r.kind, r.sampled, a.label, b.label) == ("deployment", False, "openai-main / gpt-a", "openai-main / gpt-b")
    assert (a.value, a.n, a.errors, a.error_rate, b.n, b.errors, b.error_rate) == ("1", 4, 0, 0.0, 4, 2, 0.5)
    # Wilson 0/4 = (0, 0.489900), 2/4 = (0.150036, 0.849964) (worked out in test_analytics_stats)
    assert a.error_ci == (0.0, approx(0.489900, abs=1e-5))
    assert b.error_ci == (approx(0.150036, abs=1e-5), approx(0.849964, abs=1e-5))
    # latency A: mean 250, s² = (150² + 50² + 50² + 150²) / 3 = 16666.67, half = 1.96 * √(16666.67/4) = 126.52
    assert a.mean_latency_ms == 250 and a.latency_ci == (approx(123.4825, abs=1e-3), approx(376.5175, abs=1e-3))
    # p95 of 100..400 by interpolation: position 0.95 * 3 = 2.85 -> 300 + 0.85 * 100
    assert a.p95_latency_ms == approx(385.0)
    # cost B: 0.01..0.04, mean 0.025, s² = (0.015² + 0.005² + 0.005² + 0.015²) / 3 = 0.000166667
    assert b.cost_per_request == approx(0.025)
    # = 0.0005 / 3; half = 1.96 * √(0.0005 / 12) = 1.96 * 0.0064550 = 0.0126517
    assert b.cost_ci == (approx(0.0123483, abs=1e-6), approx(0.0376517, abs=1e-6))
    assert a.cost_ci == (approx(0.01), approx(0.01))
    # scores: "stars" (6 numeric) beats "thumb" (1); A 4, 5, 3 (mean 4), B 2, 3, 1 (mean 2)
    assert (a.score_n, a.score_mean, b.score_n, b.score_mean) == (3, 4.0, 3, 2.0)
    assert a.score_ci == (approx(4 - 1.131607), approx(4 + 1.131607))  # s = 1: 1.96 / √3
    err, lat, cost, stars = r.differences
    # error rate: Newcombe 0/4 -> 2/4 = 0.5 (-0.102061, 0.849964), as in test_analytics_stats; not significant
    assert (err.metric, err.a, err.b, err.diff) == ("error_rate", 0.0, 0.5, 0.5)
    assert (err.ci_low, err.ci_high, err.significant) == (
        approx(-0.102061, abs=1e-5),
        approx(0.849964, abs=1e-5),
        False,
    )
    # latency: +100 ms; both variances 16666.67 / 4 = 4166.67, se = √8333.33 = 91.287;
    # Welch df = 8333.33² / (2 * 4166.67² / 3) = 6 -> t = 2.447; half = 223.379
    assert (lat.metric, lat.diff) == ("latency_ms", approx(100.0))
    assert (lat.ci_low, lat.ci_high, lat.significant) == (approx(-123.379, abs=1e-3), approx(323.379, abs=1e-3), False)
    # cost: +0.015; se² = 0 + 0.000166667/4, df = 3 -> t = 3.182, half = 3.182 * 0.0064550 = 0.020540: spans 0
    assert (cost.metric, cost.diff) == ("cost_per_request", approx(0.015))
    assert (cost.ci_low, cost.ci_high) == (approx(0.015 - 0.020540, abs=1e-5), approx(0.015 + 0.020540, abs=1e-5))
    # stars: -2; each side s² = 1, se² = 2/3, df = (2/3)² / (2 * (1/3)² / 2) = 4 -> t 2.776, half = 2.266594
    assert (stars.metric, stars.diff, stars.significant) == ("score", approx(-2.0), False)
    assert (stars.ci_low, stars.ci_high) == (approx(-4.266594, abs=1e-5), approx(0.266594, abs=1e-5))
    assert "Newcombe" in r.method and "Welch" in r.method and "'stars'" in r.method and "newest" not in r.method


def test_two_models_sampled(arms: Engine) -> None:
    r = ab.ab_test(arms, START, END, kind="alias", a="gpt", b="mini", max_rows=3)
    assert r.sampled and (r.a.label, r.b.label) == ("gpt", "mini")
    # counts, errors and means cover all four calls of each arm in the range (rollups), not the three read:
    # A (100 + 200 + 300 + 400) / 4 = 250 ms; B 2 errors of 4, (200 + 300 + 400 + 500) / 4 = 350 ms
    assert (r.a.n, r.a.mean_latency_ms, r.b.n, r.b.errors, r.b.mean_latency_ms) == (4, 250.0, 4, 2, 350.0)
    assert r.b.error_rate == 0.5
    assert (r.a.cost_per_request, r.b.cost_per_request) == (approx(0.01), approx(0.025))  # B: 0.10 / 4
    # the spread from the three read: A's 200, 300, 400 ms have variance 10,000, so the mean's interval is
    # 250 +/- 1.96 * sqrt(10,000 / 4) = 250 +/- 98
    assert r.a.latency_ci == (approx(152.0), approx(348.0))
    # scores from the whole range, the newest 3 numeric ones of each arm: A's 4, 5, 3; B's b3 thumb (another
    # name), b2's 1 and b1's 3 stars (its category is no number)
    assert (r.a.score_n, r.a.score_mean, r.b.score_n, r.b.score_mean) == (3, 4.0, 2, 2.0)
    # the oldest call read of each: A's a1 at 01:01, B's b1 at 02:01 (the range starts at midnight)
    assert "gpt: 3 of 4 calls, from 2026-03-04 01:01 UTC; mini: 3 of 4 calls, from 2026-03-04 02:01 UTC" in r.method
    assert "its counts, error rate, means and P95 cover every call in the range" in r.method


def test_significant_difference(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(
        db,
        *[rec(at(4, 1, i), deployment_id=1, latency=100.0 + i % 2) for i in range(30)],
        *[rec(at(4, 2, i), deployment_id=3, latency=200.0 + i % 2, status="error") for i in range(30)],
    )
    r = ab.ab_test(db, START, END, kind="deployment", a="1", b="3")
    err, lat = r.differences[:2]
    # 0/30 vs 30/30: the difference's interval sits far above 0; latency +100 ms with a spread of 1 ms
    assert (err.diff, err.significant) == (1.0, True) and err.ci_low is not None and err.ci_low > 0.8
    assert (lat.diff, lat.significant) == (approx(100.0), True)
    no_score = r.differences[3]
    assert (no_score.a, no_score.b, no_score.diff, no_score.ci_low, no_score.significant) == (
        None,
        None,
        None,
        None,
        False,
    )
    assert "Score:" not in r.method


@pytest.mark.parametrize(
    ("kind", "a", "b", "message"),
    [
        ("model", "gpt", "mini", "Unknown comparison 'model': compare by 'deployment' or by 'alias' (model)."),
        ("deployment", "1", "1", "Choose two different deployments: A and B are both 'openai-main / gpt-a'."),
        ("alias", "gpt", " gpt ", "Choose two different models: A and B are both 'gpt'."),
        ("alias", "gpt", "", "Choose two models to compare."),
        ("deployment", "1", "abc", "Unknown deployment 'abc': choose one from the list."),
        ("deployment", "1", "1; DROP TABLE requests", "Unknown deployment '1; DROP TABLE requests'"),
        ("deployment", "1", "²", "Unknown deployment '²'"),
        ("deployment", "42", "1", "Unknown deployment '#42 (deleted)': choose one from the list."),
        ("deployment", "1", "3", "The deployment 'azure-eu / gpt-eu' had no calls in the range"),
        ("alias", "gpt", "nope", "Unknown model 'nope': choose one from the list."),
    ],
)
def test_bad_arms(arms: Engine, kind: str, a: str, b: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        ab.ab_test(arms, START, END, kind=kind, a=a, b=b)
    assert str(info.value).startswith(message)


def test_a_configured_model_without_calls(arms: Engine) -> None:
    add_rows(arms, ModelAlias(alias="quiet"))
    with pytest.raises(ValueError, match="The model 'quiet' had no calls in the range"):
        ab.ab_test(arms, START, END, kind="alias", a="gpt", b="quiet")
