"""Aggregates from `usage_rollups`: totals, breakdowns and time series, percentiles from histograms.

Never a scan of `requests`: every figure here is a SUM over the rollup rows of one dimension in a time
range, which the (grain, dim, bucket, value) key serves directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
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

    def latency_p(self, q: float) -> float:
        return percentile(self.lat_hist, q)

    def ttfb_p(self, q: float) -> float:
        return percentile(self.ttfb_hist, q)


def _totals(values: Any) -> Totals:
    v = list(values)
    n = len(SCALAR_COLS)
    scalars = [x or 0 for x in v[:n]]
    lat = tuple(int(x or 0) for x in v[n : n + N_BUCKETS])
    ttfb = tuple(int(x or 0) for x in v[n + N_BUCKETS : n + 2 * N_BUCKETS])
    return Totals(
        requests=int(scalars[0]),
        errors=int(scalars[1]),
        stream_requests=int(scalars[2]),
        prompt_tokens=int(scalars[3]),
        completion_tokens=int(scalars[4]),
        cached_tokens=int(scalars[5]),
        cost_usd=float(scalars[6]),
        latency_ms_sum=float(scalars[7]),
        ttfb_ms_sum=float(scalars[8]),
        ttfb_count=int(scalars[9]),
        lat_hist=lat,
        ttfb_hist=ttfb,
    )


_SUMS: list[ColumnElement[Any]] = [func.sum(T.c[name]) for name in (*SCALAR_COLS, *LAT_COLS, *TTFB_COLS)]


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


def _base(grain: str, dim: str, start: datetime, end: datetime, value: str | None) -> list[ColumnElement[bool]]:
    lo, hi = aligned(start, end, grain)
    where = [T.c.grain == grain, T.c.dim == dim, T.c.bucket >= lo, T.c.bucket < hi]
    if value is not None:
        where.append(T.c.value == value)
    return where


def totals(
    engine: Engine, start: datetime, end: datetime, *, dim: str = "all", value: str | None = None, grain: str = ""
) -> Totals:
    """Every counter summed over [start, end) (widened to whole buckets), for one value of `dim` or all."""
    grain = grain or choose_grain(start, end, dim)
    stmt: Select[Any] = select(*_SUMS).where(*_base(grain, dim, start, end, value))
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
) -> list[tuple[str, Totals]]:
    """Totals per value of `dim` (those starting with `value_prefix` when given), largest `order_by` first."""
    grain = grain or choose_grain(start, end, dim)
    if order_by not in SCALAR_COLS:
        raise ValueError(f"cannot order by {order_by!r}")
    where = _base(grain, dim, start, end, None)
    if values is not None:
        where.append(T.c.value.in_(values))
    if value_prefix:
        where.append(T.c.value.startswith(value_prefix, autoescape=True))
    stmt = (
        select(T.c.value, *_SUMS)
        .where(*where)
        .group_by(T.c.value)
        .order_by(func.sum(T.c[order_by]).desc(), T.c.value)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(str(row[0]), _totals(row[1:])) for row in conn.execute(stmt)]


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
) -> list[SeriesPoint]:
    """One point per bucket (and per value of `dim` when `per_value`), only buckets that saw traffic."""
    if dim not in DIMS_BY_GRAIN[grain]:
        raise ValueError(f"{dim!r} is not rolled up per {grain!r}")
    cols: list[Any] = [T.c.bucket, T.c.value] if per_value else [T.c.bucket]
    stmt = select(*cols, *_SUMS).where(*_base(grain, dim, start, end, value)).group_by(*cols).order_by(*cols)
    offset = len(cols)
    with engine.connect() as conn:
        return [
            SeriesPoint(utc(row[0]), str(row[1]) if per_value else "", _totals(row[offset:]))
            for row in conn.execute(stmt)
        ]


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
