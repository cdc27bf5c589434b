"""Fleet series: samples averaged into bins of whole seconds aligned to the epoch, so every subject's bins line up.

Points are summed per bin in SQL, with a per-dialect epoch; averaged points (5-minute and hour buckets, see
`store.downsample`) are weighted by the number of raw points they stand for (`n`), so a bin's value is the
mean of every raw reading that fell into it, whichever points it is read from.

Every time is read from one tier only. Bins shorter than 5 minutes read raw points, and 5-minute points
where raw ones are gone; bins of 5 minutes or more are whole 5-minute buckets (from an hour up, whole hours)
and read the averages of that size up to where they are made, the finer tiers after that. A day's chart
thus reads a few hundred points per subject, not thousands.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Float, FromClause, Integer, Table, case, column, func, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection

from llm_console.db.fleet_tables import FleetSample
from llm_console.db.queries.filters import utc

MAX_SERIES_ROWS = 50_000
TIERS = (3600, 300)  # the averaged points' bucket sizes, coarsest first
S: Table = FleetSample.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Point:
    """One bin of a series: its start and the mean of each value in it (None: no reading of that value)."""

    at: datetime
    values: Mapping[str, float | None]


def number_or_none(value: Any) -> float | None:
    """A finite number from JSON, else None (booleans, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def bin_seconds(start: datetime, end: datetime, max_points: int) -> int:
    """Whole seconds per bin such that bins aligned to its multiples cover [start, end) in <= max_points; from
    5 minutes up a whole number of 5-minute buckets (from an hour up, of hours), so each bin is made of whole
    averaged points."""
    span = max((end - start).total_seconds(), 1.0)
    seconds = max(1, math.ceil(span / max(1, max_points - 1)))
    for tier in TIERS:
        if seconds >= tier:
            return math.ceil(seconds / tier) * tier
    return seconds


def _tier(bin_s: int) -> int:
    return next((tier for tier in TIERS if bin_s >= tier and bin_s % tier == 0), 0)


def _epoch(conn: Connection, column: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        return sql_cast(func.strftime("%s", column), Integer)
    return sql_cast(func.floor(func.extract("epoch", column)), BigInteger)


def _edge(conn: Connection, bucket_s: int, newest: bool) -> datetime | None:
    """The newest (or oldest) point's time in a tier, all kinds together (one index lookup)."""
    at = func.max(S.c.at) if newest else func.min(S.c.at)
    value = conn.execute(select(at).where(S.c.bucket_s == bucket_s)).scalar()
    return None if value is None else utc(value)


def stretches(conn: Connection, start: datetime, end: datetime, bin_s: int) -> list[tuple[int, datetime, datetime]]:
    """(tier, from, to): which points cover which part of [start, end), each time from one tier only.

    Averages are made for all kinds at once, bucket by bucket (`store.downsample`), so a tier's newest point
    says how far it goes; raw points are kept from one cut for all kinds, so the oldest says where they start."""
    tier, finest = _tier(bin_s), TIERS[-1]
    if tier == 0:
        oldest = _edge(conn, 0, newest=False)
        cut = end if oldest is None else oldest - timedelta(seconds=oldest.timestamp() % finest)
        cut = max(start, min(end, cut))
        return [(finest, start, cut), (0, cut, end)]
    out, lo = [], start
    for size in TIERS[TIERS.index(tier) :]:
        newest = _edge(conn, size, newest=True)
        hi = lo if newest is None else max(lo, min(end, newest + timedelta(seconds=size)))
        out.append((size, lo, hi))
        lo = hi
    out.append((0, lo, end))
    return out


def _numbers(conn: Connection, keys: Sequence[str]) -> tuple[FromClause, dict[str, ColumnElement[Any]]]:
    """The samples with each of `keys` (and `n`) as a number: on PostgreSQL the document is parsed once per row
    (`json_to_record`; each `->>` would parse it again), on SQLite `json_extract` reuses its parse."""
    names = [*keys, "n"]
    if conn.dialect.name == "postgresql":
        record = (
            func.json_to_record(S.c["values"])
            .table_valued(*[column(name, Float) for name in names], name="r")
            .render_derived(with_types=True)
        )
        return S.join(record, true()), {name: record.c[name] for name in names}
    return S, {name: S.c["values"][name].as_float() for name in names}


def series(
    conn: Connection,
    kind: str,
    subjects: Sequence[str],
    keys: Sequence[str],
    start: datetime,
    end: datetime,
    bin_s: int,
) -> dict[str, tuple[Point, ...]]:
    """Per subject, the mean of each key per bin of `bin_s` seconds (a query per tier read, each bounded and
    summed per bin by the database)."""
    if not subjects:
        return {}
    acc: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(dict))
    source, values = _numbers(conn, keys)
    bin_col = (_epoch(conn, S.c.at) // bin_s).label("bin")
    weight = func.coalesce(values["n"], 1.0)
    raw, averaged = [], []  # a raw point counts once, an average as the `n` raw points it stands for
    for key in keys:
        raw += [func.sum(values[key]).label(f"s_{key}"), func.count(values[key]).label(f"n_{key}")]
        averaged += [
            func.sum(values[key] * weight).label(f"s_{key}"),
            func.sum(case((values[key].is_not(None), weight), else_=0.0)).label(f"n_{key}"),
        ]
    for size, lo, hi in stretches(conn, start, end, bin_s):
        if hi <= lo:
            continue
        rows = conn.execute(
            select(S.c.subject, bin_col, *(averaged if size else raw))
            .select_from(source)
            .where(S.c.kind == kind, S.c.subject.in_(list(subjects)), S.c.bucket_s == size)
            .where(S.c.at >= lo, S.c.at < hi)
            .group_by(S.c.subject, bin_col)
            .limit(MAX_SERIES_ROWS)
        )
        for row in rows:
            m = row._mapping
            for key in keys:
                if m[f"n_{key}"]:
                    slot = acc[row.subject][int(row.bin)].setdefault(key, [0.0, 0.0])
                    slot[0] += float(m[f"s_{key}"])
                    slot[1] += float(m[f"n_{key}"])
    out: dict[str, tuple[Point, ...]] = {}
    for subject, bins in acc.items():
        out[subject] = tuple(
            Point(
                datetime.fromtimestamp(bin_no * bin_s, UTC),
                {k: (bins[bin_no][k][0] / bins[bin_no][k][1]) if k in bins[bin_no] else None for k in keys},
            )
            for bin_no in sorted(bins)
        )
    return out
