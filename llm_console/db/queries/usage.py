"""Aggregates from `usage_rollups`: totals, breakdowns and time series, percentiles from histograms.

Never a scan of `requests`: every figure here is a SUM over the rollup rows of one dimension in a time
range, which the (grain, dim, bucket, value) key serves directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import Engine

from llm_console.db.queries.filters import utc
from llm_console.db.rollups import (
    DIMS_BY_GRAIN,
    GRAIN_SECONDS,
    LAT_COLS,
    N_BUCKETS,
    SCALAR_COLS,
    TTFB_COLS,
    percentile,
    truncate,
    usage_rollups,
)

T = usage_rollups
MINUTE_RANGE = timedelta(hours=48)
HOUR_RANGE = timedelta(days=92)


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    stream_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms_sum: float = 0.0
    ttfb_ms_sum: float = 0.0
    ttfb_count: int = 0
    lat_hist: tuple[int, ...] = (0,) * N_BUCKETS
    ttfb_hist: tuple[int, ...] = (0,) * N_BUCKETS

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_latency_ms(self) -> float:
        return self.latency_ms_sum / self.requests if self.requests else 0.0

    @property
    def avg_ttfb_ms(self) -> float:
        return self.ttfb_ms_sum / self.ttfb_count if self.ttfb_count else 0.0

    @property
    def cost_per_request(self) -> float:
        return self.cost_usd / self.requests if self.requests else 0.0

    def __add__(self, other: Totals) -> Totals:
        """Every counter and histogram slot summed (all of them are additive)."""
        return Totals(
            self.requests + other.requests,
            self.errors + other.errors,
            self.stream_requests + other.stream_requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cost_usd + other.cost_usd,
            self.latency_ms_sum + other.latency_ms_sum,
            self.ttfb_ms_sum + other.ttfb_ms_sum,
            self.ttfb_count + other.ttfb_count,
            tuple(x + y for x, y in zip(self.lat_hist, other.lat_hist, strict=True)),
            tuple(x + y for x, y in zip(self.ttfb_hist, other.ttfb_hist, strict=True)),
        )

    def latency_p(self, q: float) -> float:
        return percentile(self.lat_hist, q)

    def ttfb_p(self, q: float) -> float:
        return percentile(self.ttfb_hist, q)


def _totals(values: Any, hist: bool = True) -> Totals:
    """Totals from one row of sums (histogram slots only when selected; a SUM over no rows is NULL)."""
    v = tuple(values)
    n = len(SCALAR_COLS)
    s = [x or 0 for x in v[:n]]
    if hist:
        lat = v[n : n + N_BUCKETS]
        ttfb = v[n + N_BUCKETS : n + 2 * N_BUCKETS]
        if lat[0] is None:
            lat, ttfb = ZERO_HIST, ZERO_HIST
    else:
        lat = ttfb = ZERO_HIST
    return Totals(
        int(s[0]), int(s[1]), int(s[2]), int(s[3]), int(s[4]), int(s[5]),
        float(s[6]), float(s[7]), float(s[8]), int(s[9]), lat, ttfb,
    )  # fmt: skip


ZERO_HIST: tuple[int, ...] = (0,) * N_BUCKETS
_SCALAR_SUMS: list[ColumnElement[Any]] = [func.sum(T.c[name]) for name in SCALAR_COLS]
_SUMS: list[ColumnElement[Any]] = [*_SCALAR_SUMS, *[func.sum(T.c[name]) for name in (*LAT_COLS, *TTFB_COLS)]]


def _sums(hist: bool) -> list[ColumnElement[Any]]:
    """What to sum: every counter, or the scalar ones only (52 histogram columns fewer)."""
    return _SUMS if hist else _SCALAR_SUMS


def choose_grain(start: datetime, end: datetime, dim: str = "all") -> str:
    """The finest grain that keeps the scan small: minutes up to two days, hours up to a quarter, then days.

    Keys, users, teams and embedding sizes are rolled up per hour at the finest.
    """
    span = end - start
    grain = "m" if span <= MINUTE_RANGE else "h" if span <= HOUR_RANGE else "d"
    if dim not in DIMS_BY_GRAIN[grain]:
        grain = "h"
    return grain


def aligned(start: datetime, end: datetime, grain: str) -> tuple[datetime, datetime]:
    """The range widened to whole buckets of `grain` (what the figures for [start, end) really cover)."""
    start, end = truncate(utc(start), grain), utc(end)
    step = timedelta(seconds=GRAIN_SECONDS[grain])
    end_bucket = truncate(end, grain)
    return start, end_bucket if end_bucket == end else end_bucket + step


COARSER = {"m": "h", "h": "d"}


def _base(
    grain: str, dim: str, start: datetime, end: datetime, value: str | None, *, coarse: bool = False
) -> list[ColumnElement[bool]]:
    """Rows of `dim` covering [start, end) at `grain`.

    With `coarse` (for sums over the range, never for series), the whole hours (or days) inside a range of
    minutes (or hours) are read from the coarser rows and only the partial ones at its ends at `grain`:
    the same figures (a coarser row is the sum of its finer rows, written in the same transaction) from up
    to 60 (or 24) times fewer rows.
    """
    lo, hi = aligned(start, end, grain)
    where: list[ColumnElement[bool]] = [T.c.dim == dim]
    outer = COARSER.get(grain, "")
    inner_lo = inner_hi = lo
    if coarse and outer and dim in DIMS_BY_GRAIN[outer]:
        inner_lo = truncate(lo, outer)
        inner_lo += timedelta(seconds=GRAIN_SECONDS[outer]) if inner_lo < lo else timedelta(0)
        inner_hi = truncate(hi, outer)
    if inner_hi - inner_lo >= timedelta(seconds=2 * GRAIN_SECONDS[outer or "d"]):
        where.append(
            or_(
                and_(T.c.grain == grain, T.c.bucket >= lo, T.c.bucket < inner_lo),
                and_(T.c.grain == outer, T.c.bucket >= inner_lo, T.c.bucket < inner_hi),
                and_(T.c.grain == grain, T.c.bucket >= inner_hi, T.c.bucket < hi),
            )
        )
    else:
        where += [T.c.grain == grain, T.c.bucket >= lo, T.c.bucket < hi]
    if value is not None:
        where.append(T.c.value == value)
    return where


def totals(
    engine: Engine, start: datetime, end: datetime, *, dim: str = "all", value: str | None = None, grain: str = ""
) -> Totals:
    """Every counter summed over [start, end) (widened to whole buckets), for one value of `dim` or all."""
    grain = grain or choose_grain(start, end, dim)
    stmt: Select[Any] = select(*_SUMS).where(*_base(grain, dim, start, end, value, coarse=True))
    with engine.connect() as conn:
        return _totals(conn.execute(stmt).one())


def breakdown(
    engine: Engine,
    start: datetime,
    end: datetime,
    dim: str,
    *,
    order_by: str = "cost_usd",
    limit: int = 50,
    grain: str = "",
    values: list[str] | None = None,
    value_prefix: str | None = None,
    hist: bool = True,
) -> list[tuple[str, Totals]]:
    """Totals per value of `dim` (those starting with `value_prefix` when given), largest `order_by` first.

    `hist=False` leaves the histograms out (zero): pages that show no percentiles sum a sixth of the columns.
    """
    grain = grain or choose_grain(start, end, dim)
    if order_by not in SCALAR_COLS:
        raise ValueError(f"cannot order by {order_by!r}")
    where = _base(grain, dim, start, end, None, coarse=True)
    if values is not None:
        where.append(T.c.value.in_(values))
    if value_prefix:
        where.append(T.c.value.startswith(value_prefix, autoescape=True))
    stmt = (
        select(T.c.value, *_sums(hist))
        .where(*where)
        .group_by(T.c.value)
        .order_by(func.sum(T.c[order_by]).desc(), T.c.value)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(str(row[0]), _totals(row[1:], hist)) for row in conn.execute(stmt)]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    bucket: datetime
    value: str
    totals: Totals


def series(
    engine: Engine,
    start: datetime,
    end: datetime,
    grain: str,
    *,
    dim: str = "all",
    value: str | None = None,
    per_value: bool = False,
    hist: bool = True,
) -> list[SeriesPoint]:
    """One point per bucket (and per value of `dim` when `per_value`), only buckets that saw traffic.

    `hist=False` leaves the histograms out (zero), for charts that show no percentiles.
    """
    if dim not in DIMS_BY_GRAIN[grain]:
        raise ValueError(f"{dim!r} is not rolled up per {grain!r}")
    cols: list[Any] = [T.c.bucket, T.c.value] if per_value else [T.c.bucket]
    stmt = select(*cols, *_sums(hist)).where(*_base(grain, dim, start, end, value)).group_by(*cols).order_by(*cols)
    offset = len(cols)
    with engine.connect() as conn:
        return [
            SeriesPoint(utc(row[0]), str(row[1]) if per_value else "", _totals(row[offset:], hist))
            for row in conn.execute(stmt)
        ]


def counter_by_value(
    engine: Engine, start: datetime, end: datetime, grain: str, dim: str, counter: str = "requests"
) -> list[tuple[datetime, str, float]]:
    """(bucket, value, counter) for every rollup row of `dim` at `grain` in the range.

    Rows are unique per (grain, dim, bucket, value), so this reads them as they are, no GROUP BY and one
    counter: the stacked per-model chart over a day of minutes is ~11k rows, and this is its cheap path.
    """
    if dim not in DIMS_BY_GRAIN[grain] or counter not in SCALAR_COLS:
        raise ValueError(f"cannot read {counter!r} of {dim!r} per {grain!r}")
    stmt = select(T.c.bucket, T.c.value, T.c[counter]).where(*_base(grain, dim, start, end, None))
    with engine.connect() as conn:
        return [(utc(b), str(v), c) for b, v, c in conn.execute(stmt)]


def bucket_starts(start: datetime, end: datetime, grain: str) -> list[datetime]:
    """Every bucket start of `grain` in [start, end), for zero-filling a series."""
    lo, hi = aligned(start, end, grain)
    step = timedelta(seconds=GRAIN_SECONDS[grain])
    out = []
    at = lo
    while at < hi:
        out.append(at)
        at += step
    return out


def daily_cost(
    engine: Engine, start: datetime, end: datetime, *, dim: str = "all", value: str | None = None
) -> dict[datetime, float]:
    """Spend per UTC day in [start, end)."""
    return {p.bucket: p.totals.cost_usd for p in series(engine, start, end, "d", dim=dim, value=value)}
