"""The statistics behind the Analytics page, as small pure functions (no I/O, standard library only).

Why hand-written: the page needs a handful of textbook intervals and a robust outlier score, and each is a
few lines; pulling in SciPy for them would add a heavy dependency to the gateway image. Every function
states its method so the page can print it under the figures.

Conventions:
- 95 % intervals throughout (z = 1.96 for normal approximations).
- Differences are *second minus first* (B minus A), matching `ArmDifference`.
- Functions return None (never raise) when there are too few samples to state an honest interval;
  they raise ValueError only for input that cannot be right (negative counts, k > n, ...).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.96
# Iglewicz & Hoaglin (1993): a modified z-score above 3.5 in absolute value is a potential outlier.
OUTLIER_Z = 3.5
# 0.6745 is the 0.75 quantile of the standard normal: MAD * 1.4826 (= MAD / 0.6745) estimates sigma.
_MAD_K = 0.6745
# When MAD is 0 (more than half the window is one value), fall back to the mean absolute deviation around the
# median, scaled to estimate sigma: sigma ~= 1.253314 * meanAD (sqrt(pi/2)), i.e. z = (x - med) / (1.253314 * meanAD)
# = 0.7979 * (x - med) / meanAD. This is the form used by IBM SPSS / Iglewicz & Hoaglin's companion note.
_MEANAD_SIGMA = 1.253314

# Two-sided 95 % quantiles of Student's t (t_{0.975, df}), from the standard table. Between rows we interpolate
# linearly in 1/df (the usual way to read such a table, exact to about 0.002 here); beyond 120 we move towards
# the normal 1.96 the same way (1/df -> 0).
_T975: tuple[tuple[float, float], ...] = (
    (1, 12.706),
    (2, 4.303),
    (3, 3.182),
    (4, 2.776),
    (5, 2.571),
    (6, 2.447),
    (7, 2.365),
    (8, 2.306),
    (9, 2.262),
    (10, 2.228),
    (11, 2.201),
    (12, 2.179),
    (13, 2.160),
    (14, 2.145),
    (15, 2.131),
    (16, 2.120),
    (17, 2.110),
    (18, 2.101),
    (19, 2.093),
    (20, 2.086),
    (21, 2.080),
    (22, 2.074),
    (23, 2.069),
    (24, 2.064),
    (25, 2.060),
    (26, 2.056),
    (27, 2.052),
    (28, 2.048),
    (29, 2.045),
    (30, 2.042),
    (40, 2.021),
    (60, 2.000),
    (120, 1.980),
)


def t975(df: float) -> float:
    """The two-sided 95 % Student t quantile for `df` degrees of freedom (df may be fractional, as Welch's is).

    Table lookup with interpolation in 1/df; df < 1 is clamped to 1 (the widest row)."""
    if math.isnan(df):
        raise ValueError("Degrees of freedom must be a number.")
    if df <= 1:
        return _T975[0][1]
    for (d0, t0), (d1, t1) in itertools.pairwise(_T975):
        if df <= d1:
            w = (1 / d0 - 1 / df) / (1 / d0 - 1 / d1)
            return t0 + w * (t1 - t0)
    d_last, t_last = _T975[-1]
    if math.isinf(df):
        return Z95
    w = (1 / d_last - 1 / df) / (1 / d_last)
    return t_last + w * (Z95 - t_last)


def robust_z(window: Sequence[float], x: float) -> tuple[float, float, float]:
    """Modified z-score of `x` against `window` (Iglewicz & Hoaglin): returns (z, median, mad).

    z = 0.6745 * (x - median) / MAD, MAD = median(|w - median|). When MAD is 0 the window is mostly one value;
    then z = (x - median) / (1.253314 * meanAD) with meanAD = mean(|w - median|). When both are 0 (the window
    is constant) any departure is infinitely surprising: z = 0 if x == median, else +inf / -inf by sign.
    Flag |z| > OUTLIER_Z (3.5). The returned `mad` is the plain MAD (0 in the fallback cases)."""
    if not window:
        raise ValueError("The comparison window is empty: need at least one earlier value.")
    med = statistics.median(window)
    deviations = [abs(w - med) for w in window]
    mad = statistics.median(deviations)
    diff = x - med
    if mad > 0:
        return _MAD_K * diff / mad, med, mad
    mean_ad = sum(deviations) / len(deviations)
    if mean_ad > 0:
        return diff / (_MEANAD_SIGMA * mean_ad), med, mad
    if diff == 0:
        return 0.0, med, mad
    return math.copysign(math.inf, diff), med, mad


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0:
        raise ValueError(f"Counts cannot be negative (k={k}, n={n}).")
    if k > n:
        raise ValueError(f"More successes than trials (k={k}, n={n}).")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for the proportion k/n (None when n == 0).

    centre = (p + z²/2n) / (1 + z²/n), half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n). Unlike the Wald
    interval it stays inside [0, 1] and is honest for 0 or n successes, which error counts often are."""
    _check_counts(k, n)
    if n == 0:
        return None
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_ci_from_sums(n: int, total: float, total_sq: float) -> tuple[float, float] | None:
    """95 % normal-approximation CI of a mean from (count, sum, sum of squares): mean ± 1.96·s/√n with the
    sample standard deviation s (n - 1). None when n < 2. Rounding can make the variance a hair negative:
    it is clamped to 0."""
    if n < 2:
        return None
    mean = total / n
    var = max(0.0, (total_sq - total * total / n) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return mean - half, mean + half


@dataclass(frozen=True, slots=True)
class Summary:
    """A sample as the intervals need it: its size, mean and sample variance (n - 1). The A/B view may take
    the size and mean from the rollups (all calls in the range) and the variance from the calls it read."""

    n: int
    mean: float
    var: float


def summarize(values: Sequence[float]) -> Summary | None:
    """None when fewer than 2 values (no variance to speak of)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return Summary(n, mean, sum((v - mean) ** 2 for v in values) / (n - 1))


def summary_ci(s: Summary | None) -> tuple[float, float] | None:
    """95 % normal-approximation CI of the mean: mean ± 1.96·sqrt(var / n)."""
    if s is None or s.n < 2:
        return None
    half = Z95 * math.sqrt(s.var / s.n)
    return s.mean - half, s.mean + half


def mean_ci(values: Sequence[float]) -> tuple[float, float] | None:
    """95 % normal-approximation CI of the mean of `values` (None when fewer than 2)."""
    return summary_ci(summarize(values))


def welch_diff_ci(a_values: Sequence[float], b_values: Sequence[float]) -> tuple[float, float, float] | None:
    """mean(b) - mean(a) with Welch's 95 % interval: ± t(df)·sqrt(va/na + vb/nb), df by Welch-Satterthwaite.

    None when either side has fewer than 2 values. Both variances 0 gives a zero-width interval."""
    return welch_summary_ci(summarize(a_values), summarize(b_values))


def welch_summary_ci(a: Summary | None, b: Summary | None) -> tuple[float, float, float] | None:
    """`welch_diff_ci` from two summaries (None when either is missing or has fewer than 2 values)."""
    if a is None or b is None or a.n < 2 or b.n < 2:
        return None
    na, nb, va, vb = a.n, b.n, a.var, b.var
    diff = b.mean - a.mean
    sa, sb = va / na, vb / nb
    se2 = sa + sb
    if se2 == 0:
        return diff, diff, diff
    df = se2 * se2 / (sa * sa / (na - 1) + sb * sb / (nb - 1))
    half = t975(df) * math.sqrt(se2)
    return diff, diff - half, diff + half


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float] | None:
    """p2 - p1 (second minus first) with Newcombe's hybrid score 95 % interval (his method 10), built from each
    proportion's Wilson interval (l, u):
        low  = d - sqrt((p2 - l2)² + (u1 - p1)²),  high = d + sqrt((u2 - p2)² + (p1 - l1)²).
    None when either side has no trials."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    w1, w2 = wilson(k1, n1), wilson(k2, n2)
    if w1 is None or w2 is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = w1, w2
    d = p2 - p1
    low = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return d, low, high


def linear_forecast(history: Sequence[float], horizon: int) -> tuple[float, float, list[tuple[float, float, float]]]:
    """Ordinary least squares line through `history` (x = 0 .. n-1), projected `horizon` steps ahead:
    returns (slope, intercept, [(prediction, low, high) for x = n .. n+horizon-1]).

    The 95 % prediction interval is ŷ ± t(n-2)·s·sqrt(1 + 1/n + (x - x̄)²/Sxx), s² = SSE/(n-2). We use the
    t quantile (table above) rather than 1.96 so a short history gets the wider band it deserves; for n >= ~30
    the two agree to 2 %. Needs at least 3 points (with 2 the line fits exactly and the spread is unknown)."""
    n = len(history)
    if n < 3:
        raise ValueError(f"A forecast needs at least 3 points of history, got {n}.")
    if horizon < 0:
        raise ValueError(f"The forecast horizon cannot be negative, got {horizon}.")
    x_mean = (n - 1) / 2
    y_mean = sum(history) / n
    sxx = sum((i - x_mean) ** 2 for i in range(n))
    sxy = sum((i - x_mean) * (y - y_mean) for i, y in enumerate(history))
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    sse = sum((y - (intercept + slope * i)) ** 2 for i, y in enumerate(history))
    s = math.sqrt(sse / (n - 2))
    t = t975(n - 2)
    points: list[tuple[float, float, float]] = []
    for x in range(n, n + horizon):
        pred = intercept + slope * x
        half = t * s * math.sqrt(1 + 1 / n + (x - x_mean) ** 2 / sxx)
        points.append((pred, pred - half, pred + half))
    return slope, intercept, points


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) by linear interpolation between order statistics (numpy's default, 'type 7').
    None for no values."""
    if not 0 <= q <= 1:
        raise ValueError(f"A quantile must be between 0 and 1, got {q}.")
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])
