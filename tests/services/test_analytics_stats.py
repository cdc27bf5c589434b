"""The Analytics page's statistics against figures worked out by hand (and, where one exists, a published
worked example)."""

from __future__ import annotations

import math

import pytest

from llm_console.services.analytics_stats import (
    OUTLIER_Z,
    linear_forecast,
    mean_ci,
    mean_ci_from_sums,
    newcombe_diff_ci,
    percentile,
    robust_z,
    t975,
    welch_diff_ci,
    wilson,
)

approx = pytest.approx


def test_robust_z_uses_the_mad() -> None:
    # median(10, 12, 11, 13, 9) = 11; |deviations| = 1, 1, 0, 2, 2 -> MAD = 1; z = 0.6745 * (20 - 11) / 1
    z, med, mad = robust_z([10, 12, 11, 13, 9], 20)
    assert (med, mad) == (11, 1)
    assert z == approx(6.0705)
    assert abs(z) > OUTLIER_Z
    # 12 is one MAD above: 0.6745, well inside the 3.5 threshold; below the median the sign flips.
    assert robust_z([10, 12, 11, 13, 9], 12)[0] == approx(0.6745)
    assert robust_z([10, 12, 11, 13, 9], 8)[0] == approx(-2.0235)


def test_robust_z_falls_back_to_the_mean_absolute_deviation() -> None:
    # median(5, 5, 5, 5, 7, 9) = 5; |deviations| 0, 0, 0, 0, 2, 4 -> MAD 0, meanAD = 6 / 6 = 1
    # z = (8 - 5) / (1.253314 * 1) = 2.393655
    z, med, mad = robust_z([5, 5, 5, 5, 7, 9], 8)
    assert (med, mad) == (5, 0)
    assert z == approx(3 / 1.253314)
    assert z == approx(0.7979 * 3, rel=1e-4)  # the equivalent form


def test_robust_z_on_a_constant_window() -> None:
    assert robust_z([4, 4, 4], 4) == (0.0, 4, 0)
    assert robust_z([4, 4, 4], 5)[0] == math.inf
    assert robust_z([4, 4, 4], 3.5)[0] == -math.inf
    with pytest.raises(ValueError, match="window is empty"):
        robust_z([], 1.0)


def test_wilson_interval() -> None:
    # k=2, n=10: p = 0.2, z² = 3.8416, denominator 1 + 3.8416/10 = 1.38416
    # centre = (0.2 + 3.8416/20) / 1.38416 = 0.39208 / 1.38416 = 0.283262
    # half = 1.96 * sqrt(0.2*0.8/10 + 3.8416/400) / 1.38416 = 1.96 * 0.160012 / 1.38416 = 0.226581
    low, high = wilson(2, 10) or (0, 0)
    assert (low, high) == (approx(0.056681, abs=1e-6), approx(0.509843, abs=1e-6))
    # k=0, n=4: centre = half = (3.8416/8) / 1.9604 = 0.244950 -> [0, 0.489900]; never below 0
    assert wilson(0, 4) == (0.0, approx(0.489900, abs=1e-6))
    assert wilson(4, 4) == (approx(0.510100, abs=1e-6), 1.0)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="More successes than trials"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="cannot be negative"):
        wilson(-1, 2)


def test_mean_ci() -> None:
    # 1..5: mean 3, s² = (4+1+0+1+4)/4 = 2.5, s/√5 = √0.5 = 0.707107, half = 1.96 * 0.707107 = 1.385929
    assert mean_ci([1, 2, 3, 4, 5]) == (approx(1.614071), approx(4.385929))
    # the same from (n, sum, sum of squares) = (5, 15, 55)
    assert mean_ci_from_sums(5, 15, 55) == (approx(1.614071), approx(4.385929))
    assert mean_ci([7.0]) is None
    assert mean_ci_from_sums(1, 7, 49) is None
    assert mean_ci([2, 2, 2]) == (2, 2)


def test_welch_difference() -> None:
    # a = 1..5: mean 3, var 2.5, n 5 -> var/n = 0.5
    # b = 2,4,..,12: mean 7, var = (25+9+1+1+9+25)/5 = 14, n 6 -> var/n = 2.333333
    # se² = 2.833333, se = 1.683251; df = 2.833333² / (0.5²/4 + 2.333333²/5) = 8.027778 / 1.151389 = 6.972256
    # t: between the table's 6 (2.447) and 7 (2.365) in 1/df: w = (1/6 - 1/6.972256) / (1/6 - 1/7) = 0.976157
    #    t = 2.447 - 0.976157 * 0.082 = 2.366955 (the exact quantile is 2.3662)
    # half = 2.366955 * 1.683251 = 3.984179 -> 4 ± 3.984179
    diff, low, high = welch_diff_ci([1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12]) or (0, 0, 0)
    assert diff == 4
    assert (low, high) == (approx(0.015821, abs=1e-5), approx(7.984179, abs=1e-5))
    assert welch_diff_ci([1], [1, 2]) is None
    assert welch_diff_ci([3, 3], [5, 5]) == (2, 2, 2)


def test_newcombe_difference_matches_the_paper() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 - 48/80 = 0.2000,
    # hybrid score interval 0.0524 to 0.3339. Ours is second minus first, so the arms go in swapped.
    d, low, high = newcombe_diff_ci(48, 80, 56, 70) or (0, 0, 0)
    assert d == approx(0.2)
    assert (low, high) == (approx(0.0524, abs=5e-5), approx(0.3339, abs=5e-5))
    # 0/4 vs 2/4, by hand: Wilson (0, 0.489900) and (0.150036, 0.849964); d = 0.5
    # low = 0.5 - sqrt((0.5 - 0.150036)² + (0.489900 - 0)²) = 0.5 - sqrt(0.362477) = -0.102061
    # high = 0.5 + sqrt((0.849964 - 0.5)² + (0 - 0)²) = 0.849964
    d, low, high = newcombe_diff_ci(0, 4, 2, 4) or (0, 0, 0)
    assert (d, low, high) == (0.5, approx(-0.102061, abs=1e-5), approx(0.849964, abs=1e-5))
    assert newcombe_diff_ci(0, 0, 1, 2) is None


def test_linear_forecast_on_an_exact_line() -> None:
    slope, intercept, points = linear_forecast([2 * x + 1 for x in range(10)], 2)
    assert (slope, intercept) == (approx(2), approx(1))
    # no scatter: the prediction interval has no width
    assert points == [(approx(21), approx(21), approx(21)), (approx(23), approx(23), approx(23))]


def test_linear_forecast_interval() -> None:
    # y = 1, 3, 2, 5, 4 at x = 0..4: x̄ = 2, ȳ = 3, Sxx = 10, Sxy = 4 + 0 + 0 + 2 + 2 = 8
    # slope 0.8, intercept 3 - 1.6 = 1.4; residuals -0.4, 0.8, -1, 1.2, -0.6 -> SSE 3.6, s² = 3.6/3 = 1.2
    # x = 5: ŷ = 5.4, se = √1.2 * √(1 + 1/5 + 9/10) = 1.095445 * 1.449138 = 1.587451; t(3 df) = 3.182
    # half = 3.182 * 1.587451 = 5.051270
    slope, intercept, points = linear_forecast([1, 3, 2, 5, 4], 1)
    assert (slope, intercept) == (approx(0.8), approx(1.4))
    assert points == [(approx(5.4), approx(0.348730, abs=1e-5), approx(10.451270, abs=1e-5))]
    with pytest.raises(ValueError, match="at least 3 points"):
        linear_forecast([1, 2], 3)
    with pytest.raises(ValueError, match="cannot be negative"):
        linear_forecast([1, 2, 3], -1)


def test_t_table() -> None:
    assert t975(3) == 3.182
    assert t975(0.5) == 12.706
    # between 30 (2.042) and 40 (2.021) in 1/df: w = (1/30 - 1/35) / (1/30 - 1/40) = 0.571429 -> 2.03
    assert t975(35) == approx(2.042 - 0.571429 * 0.021)
    assert t975(math.inf) == 1.96
    assert 1.96 < t975(10_000) < 1.961


def test_percentile() -> None:
    # 0.95 of 1..4: position 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3)
    assert percentile([4, 1, 3, 2], 0.95) == approx(3.85)
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1], 95)
