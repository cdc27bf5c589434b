"""Costs & budgets: spend in a range by model, endpoint, team, user and key; daily trend; month to date
against the organisation's budget, and a forecast to the month's end; self-hosted GPU-hour cost beside it.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.spend import month_start
from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import truncate
from llm_console.services.filters import ParsedFilters
from llm_console.services.gpu_cost import DEFAULT_OPTIONS, GpuCostOptions, GpuCostReport, gpu_cost
from llm_console.services.gpu_usage import UsageCache
from llm_console.services.spend import budget_status
from llm_console.services.usage import Named

DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("alias", "Model"),
    ("endpoint", "Endpoint"),
    ("team", "Team"),
    ("user", "User"),
    ("key", "Key"),
)
TOP = 20
YOUNG_MONTH_DAYS = 7  # fewer complete days than this in the month: also fit on the days before it
LOOKBACK_DAYS = 14
TREND_MIN_DAYS = 7
TREND_T = 2.0  # the slope must be this many standard errors from zero to be used
Z95 = 1.96
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Forecast:
    method: str  # "mean" (average day) | "trend" (least-squares line)
    expected_usd: float
    low_usd: float
    high_usd: float
    daily_usd: float  # the mean (or the trend's value today) the projection starts from
    sigma_usd: float  # day-to-day standard deviation around the fit
    remaining_days: float
    days_fitted: int


@dataclass(frozen=True, slots=True)
class MonthToDate:
    month: datetime
    spent_usd: float
    budget_usd: float  # 0: no budget set
    status: str  # none | ok | warning | exceeded
    forecast: Forecast | None


@dataclass(frozen=True, slots=True)
class CostsData:
    totals: Totals
    breakdowns: dict[str, list[Named]]  # dimension -> its top rows by cost
    daily: list[tuple[datetime, float]]  # UTC days of the range, zero-filled
    month: MonthToDate
    directory: Directory
    as_of: datetime
    gpu: GpuCostReport | None = None  # self-hosted deployments priced by the GPU-hour


def _fit_mean(ys: list[float]) -> tuple[float, float]:
    mean = sum(ys) / len(ys)
    sigma = math.sqrt(sum((y - mean) ** 2 for y in ys) / (len(ys) - 1))
    return mean, sigma


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float, float]:
    """Least squares y = a + b * x: (a, b, residual standard deviation, t statistic of b)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    sigma = math.sqrt(sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True)) / (n - 2))
    se = sigma / math.sqrt(sxx)
    t = abs(b) / se if se > 0 else (math.inf if b != 0 else 0.0)
    return a, b, sigma, t


def forecast_month(daily: Mapping[datetime, float], now: datetime) -> Forecast | None:
    """Projected spend for the whole UTC month of `now`, with a 95% interval; None without two days of history.

    Method. The fit uses complete UTC days only (today is partial): the month's days so far, plus the
    `LOOKBACK_DAYS` days before the month while it has fewer than `YOUNG_MONTH_DAYS` complete days.
    Days before the first one with any spend are dropped (no traffic yet is not a zero-spend habit).
    - Mean model: expected = MTD + mean daily spend x remaining days, where remaining days counts the rest
      of today as a fraction. sigma is the sample standard deviation of the daily spend.
    - Trend model, used when clearly better: with at least `TREND_MIN_DAYS` days, a least-squares line
      whose slope is at least `TREND_T` standard errors from zero. Expected = MTD + the line's value for
      the rest of today and each remaining day (never below zero). sigma is the residuals' standard deviation.
    The 95% interval treats the remaining days as independent draws: expected ± 1.96 * sigma * sqrt(remaining days),
    the lower end never below what is already spent. It ignores the uncertainty of the fit itself, so it
    is optimistic early in the month.
    """
    now = utc(now)
    today = truncate(now, "d")
    first = month_start(now)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    days = {truncate(d, "d"): v for d, v in daily.items()}
    mtd = sum(v for d, v in days.items() if first <= d <= today)
    window = first if (today - first).days >= YOUNG_MONTH_DAYS else first - LOOKBACK_DAYS * DAY
    points = [(window + i * DAY, days.get(window + i * DAY, 0.0)) for i in range((today - window).days)]
    while points and points[0][1] <= 0:
        points.pop(0)
    if len(points) < 2:
        return None
    xs = [float((d - window).days) for d, _ in points]
    ys = [v for _, v in points]
    today_left = (today + DAY - now) / DAY
    future = [(today - window).days + i for i in range(1, (last - today).days + 1)]
    remaining = today_left + len(future)
    method, (daily_usd, sigma) = "mean", _fit_mean(ys)
    projected = daily_usd * remaining
    if len(points) >= TREND_MIN_DAYS:
        a, b, line_sigma, t = _fit_line(xs, ys)
        if t >= TREND_T:
            x_today = float((today - window).days)
            method, daily_usd, sigma = "trend", max(0.0, a + b * x_today), line_sigma
            projected = today_left * daily_usd + sum(max(0.0, a + b * x) for x in future)
    expected = mtd + projected
    margin = Z95 * sigma * math.sqrt(remaining)
    return Forecast(
        method=method,
        expected_usd=expected,
        low_usd=max(mtd, expected - margin),
        high_usd=expected + margin,
        daily_usd=daily_usd,
        sigma_usd=sigma,
        remaining_days=remaining,
        days_fitted=len(points),
    )


def month_to_date(engine: Engine, budget_usd: float, now: datetime) -> MonthToDate:
    today = truncate(now, "d")
    first = month_start(now)
    daily = usage.daily_cost(engine, first - LOOKBACK_DAYS * DAY, today + DAY)
    spent = sum(v for d, v in daily.items() if d >= first)
    status = budget_status(spent / budget_usd if budget_usd > 0 else None)
    return MonthToDate(first, spent, budget_usd, status, forecast_month(daily, now))


def load_costs(
    engine: Engine,
    parsed: ParsedFilters,
    budget_usd: float,
    now: datetime | None = None,
    *,
    gpu: GpuCostOptions = DEFAULT_OPTIONS,
    gpu_cache: UsageCache | None = None,
) -> CostsData:
    """Everything the Costs page shows, for the range in `parsed` (the month figures ignore the range);
    `gpu_cache`: the process's cache of past hours' traffic for the GPU cost's shares."""
    now = now or datetime.now(UTC)
    f = parsed.filters
    grain = usage.choose_grain(f.start, f.end, "user")  # one grain for all, so shares add up
    directory = load_directory(engine)
    breakdowns = {
        dim: [
            Named(directory.name(dim, v), v, t)
            for v, t in usage.breakdown(
                engine, f.start, f.end, dim, order_by="cost_usd", limit=TOP, grain=grain, hist=False
            )
        ]
        for dim, _ in DIMENSIONS
    }
    per_day = usage.daily_cost(engine, f.start, f.end)
    daily = [(d, per_day.get(d, 0.0)) for d in usage.bucket_starts(f.start, f.end, "d")]
    return CostsData(
        totals=usage.totals(engine, f.start, f.end, grain=grain),
        breakdowns=breakdowns,
        daily=daily,
        month=month_to_date(engine, budget_usd, now),
        directory=directory,
        as_of=now,
        gpu=gpu_cost(engine, f.start, f.end, options=gpu, now=now, directory=directory, cache=gpu_cache, limit=TOP),
    )
