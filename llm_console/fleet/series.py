"""Fleet series: samples averaged into bins of whole seconds aligned to the epoch, so every subject's bins line up.

Raw points (`bucket_s` 0) are summed per bin in SQL, with a per-dialect epoch; folded 5-minute averages are
weighted by the number of raw points they stand for (`n`), so a bin's value is the mean of every raw reading
that fell into it, whether or not it has been folded yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, Table, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection

from llm_console.db.fleet_tables import FleetSample
from llm_console.db.queries.filters import utc

MAX_SERIES_ROWS = 50_000
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
    """Whole seconds per bin such that bins aligned to its multiples cover [start, end) in <= max_points."""
    span = max((end - start).total_seconds(), 1.0)
    return max(1, math.ceil(span / max(1, max_points - 1)))


def _epoch(conn: Connection, column: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        return sql_cast(func.strftime("%s", column), Integer)
    return sql_cast(func.floor(func.extract("epoch", column)), BigInteger)


def series(
    conn: Connection,
    kind: str,
    subjects: Sequence[str],
    keys: Sequence[str],
    start: datetime,
    end: datetime,
    bin_s: int,
) -> dict[str, tuple[Point, ...]]:
    """Per subject, the mean of each key per bin of `bin_s` seconds (two queries, both bounded)."""
    if not subjects:
        return {}
    acc: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(dict))

    def add(subject: str, bin_no: int, key: str, total: float, weight: float) -> None:
        slot = acc[subject][bin_no].setdefault(key, [0.0, 0.0])
        slot[0] += total
        slot[1] += weight

    in_range = (S.c.kind == kind, S.c.subject.in_(list(subjects)), S.c.at >= start, S.c.at < end)
    folded = conn.execute(
        select(S.c.subject, S.c.at, S.c["values"])
        .where(*in_range, S.c.bucket_s > 0)
        .order_by(S.c.at.desc())
        .limit(MAX_SERIES_ROWS)
    )
    for subject, at, values in folded:
        values = values if isinstance(values, Mapping) else {}
        weight = number_or_none(values.get("n")) or 1.0
        bin_no = int(utc(at).timestamp()) // bin_s
        for key in keys:
            v = number_or_none(values.get(key))
            if v is not None:
                add(subject, bin_no, key, v * weight, weight)
    bin_col = (_epoch(conn, S.c.at) // bin_s).label("bin")
    measures = []
    for key in keys:
        expr = S.c["values"][key].as_float()
        measures += [func.sum(expr).label(f"s_{key}"), func.count(expr).label(f"n_{key}")]
    raw = conn.execute(
        select(S.c.subject, bin_col, *measures)
        .where(*in_range, S.c.bucket_s == 0)
        .group_by(S.c.subject, bin_col)
        .limit(MAX_SERIES_ROWS)
    )
    for row in raw:
        m = row._mapping
        for key in keys:
            if m[f"n_{key}"]:
                add(row.subject, int(row.bin), key, float(m[f"s_{key}"]), float(m[f"n_{key}"]))
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
