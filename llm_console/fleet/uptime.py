"""Hours up per deployment, kept per UTC hour as the container collector sees them (the GPU-hour cost reads
these: a month is ~720 rows per deployment, where the container samples behind it would be ~250,000).

Each round credits every deployment that had a running container at the previous round with the time
since that round, at most twice the collection interval (a longer gap counts as down, as the collector may
have stopped). Several containers of one deployment count once: on one host they share the round, and
across hosts each hour's row keeps the end of the latest second counted (`up_to_s`), so a span that
overlaps what another host already counted adds only its new part. The upsert is one statement per row,
so concurrent hosts never lose each other's seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from llm_console.db.fleet_tables import FleetUptime
from llm_console.db.queries.filters import utc

HOUR = timedelta(hours=1)
U: Table = FleetUptime.__table__  # type: ignore[attr-defined]

Span = tuple[datetime, datetime]


def hour_of(at: datetime) -> datetime:
    return utc(at).replace(minute=0, second=0, microsecond=0)


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans joined; empty ones dropped."""
    out: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[1] > s[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def hour_pieces(lo: datetime, hi: datetime) -> list[tuple[datetime, float, float]]:
    """[lo, hi) cut at UTC hour boundaries: (hour, from, to) in seconds from the hour's start."""
    pieces = []
    hour = hour_of(lo)
    while hour < hi:
        a, b = max(lo, hour), min(hi, hour + HOUR)
        if b > a:
            pieces.append((hour, (a - hour).total_seconds(), (b - hour).total_seconds()))
        hour += HOUR
    return pieces


def up_spans(previous: Iterable[Any], at: datetime, interval_s: float) -> dict[int, list[Span]]:
    """Per deployment, what the previous round's running containers (rows with `deployment_id`, `status`,
    `seen_at`, `removed_at`) cover until `at`: from when they were seen, at most 2 x `interval_s`."""
    cap = timedelta(seconds=2.0 * interval_s)
    spans: dict[int, list[Span]] = defaultdict(list)
    for row in previous:
        if row.deployment_id is None or row.status != "running" or row.removed_at is not None:
            continue
        seen = utc(row.seen_at)
        spans[row.deployment_id].append((seen, min(utc(at), seen + cap)))
    return {dep: merge(items) for dep, items in spans.items()}


def _greatest(conn: Connection, a: Any, b: Any) -> ColumnElement[Any]:
    return func.max(a, b) if conn.dialect.name == "sqlite" else func.greatest(a, b)


def record(conn: Connection, spans: Mapping[int, Sequence[Span]], seen: Iterable[int], at: datetime) -> None:
    """Add each deployment's up spans, and mark the deployments whose containers were seen at `at` (a row
    for that hour, even with nothing up: the cost then knows the deployment was watched, not assumed on)."""
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    for dep, items in spans.items():
        for lo, hi in items:
            for hour, a, b in hour_pieces(lo, hi):
                row = rows.setdefault((dep, hour), {"deployment_id": dep, "hour": hour, "up_s": 0.0, "up_to_s": 0.0})
                # Spans of one deployment in one round are disjoint: their sum, ending at the last one's end.
                row["up_s"] += b - a
                row["up_to_s"] = max(row["up_to_s"], b)
    for dep in seen:
        rows.setdefault((dep, hour_of(at)), {"deployment_id": dep, "hour": hour_of(at), "up_s": 0.0, "up_to_s": 0.0})
    if not rows:
        return
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = insert(U)
    new = stmt.excluded
    # A new span [to - up, to) adds only what lies after the latest second already counted in that hour.
    added = _greatest(conn, 0.0, new.up_to_s - _greatest(conn, new.up_to_s - new.up_s, U.c.up_to_s))
    stmt = stmt.on_conflict_do_update(
        index_elements=[U.c.deployment_id, U.c.hour],
        set_={"up_s": U.c.up_s + added, "up_to_s": _greatest(conn, U.c.up_to_s, new.up_to_s)},
    )
    conn.execute(stmt, [rows[key] for key in sorted(rows)])  # sorted: concurrent hosts lock rows in one order
