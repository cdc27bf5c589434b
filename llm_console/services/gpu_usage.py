"""What the GPU-hour cost is shared by: each priced deployment's traffic in a period, and its keys' and teams'
part of it, from the hour and day rollups (`deployment`, `deployment_key`, `deployment_team`).

A month of these is tens of thousands of rollup rows (one per deployment, key and day), too many to sum on
every refresh of the Costs page. `UsageCache` keeps the sums of past hours, in three pieces: the whole days,
and the hours before and after them, so a new hour re-reads only hour rows and the day rows are summed once a
day. A cached piece is used only while the deployments' own rows over it still count the same requests: the
log writer updates those in the same transaction as the key and team rows, so any late write, and any
retention run, makes it stale. The current hour is always read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.engine import Connection

from llm_console.db.queries.filters import utc
from llm_console.db.queries.usage import aligned
from llm_console.db.rollups import truncate, usage_rollups

DAY = timedelta(days=1)
DIMS = ("deployment", "deployment_key", "deployment_team")


@dataclass(frozen=True, slots=True)
class Used:
    """One deployment's traffic in the period: requests, their total usage, and usage per key and per team
    (None: requests without a key, or by keys in no team)."""

    requests: int = 0
    total: float = 0.0
    keys: dict[int | None, float] = field(default_factory=dict)
    teams: dict[int | None, float] = field(default_factory=dict)


Sums = dict[int, Used]
_Key = tuple[str, str, tuple[int, ...], datetime, datetime]


class UsageCache:
    """The sums of past whole hours and days, per database, allocation rule, priced deployments and span;
    one per console process (the Costs page refreshes every few seconds, for every viewer)."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._entries: OrderedDict[_Key, tuple[tuple[Any, ...], Sums]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _Key, check: tuple[Any, ...]) -> Sums | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != check:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: _Key, check: tuple[Any, ...], sums: Sums) -> None:
        with self._lock:
            self._entries[key] = (check, sums)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def rollup_range(lo: datetime, hi: datetime) -> ColumnElement[bool]:
    """Hour rows of [lo, hi), with the whole days inside it read from the day rows (the same sums, fewer rows)."""
    t = usage_rollups
    day_lo = truncate(lo, "d")
    day_lo += DAY if day_lo < lo else timedelta(0)
    day_hi = truncate(hi, "d")
    if day_hi - day_lo < DAY:
        return and_(t.c.grain == "h", t.c.bucket >= lo, t.c.bucket < hi)
    return or_(
        and_(t.c.grain == "h", t.c.bucket >= lo, t.c.bucket < day_lo),
        and_(t.c.grain == "d", t.c.bucket >= day_lo, t.c.bucket < day_hi),
        and_(t.c.grain == "h", t.c.bucket >= day_hi, t.c.bucket < hi),
    )


def _sum(conn: Connection, ids: Sequence[int], lo: datetime, hi: datetime, allocation: str, into: Sums) -> None:
    """Add the rollups of [lo, hi) (whole hours) to `into`. Every deployment's rows are read and the unpriced
    ones skipped here: a filter on the value cannot narrow the index range, and costs more than it saves."""
    t = usage_rollups
    amount = (
        func.sum(t.c.latency_ms_sum)
        if allocation == "busy_time"
        else func.sum(t.c.prompt_tokens) + func.sum(t.c.completion_tokens)
    )
    rows = conn.execute(
        select(t.c.dim, t.c.value, func.sum(t.c.requests), amount)
        .where(t.c.dim.in_(DIMS), rollup_range(lo, hi))
        .group_by(t.c.dim, t.c.value)
    )
    priced = {str(i) for i in ids}
    for dim, value, requests, used in rows:
        dep, _, rest = str(value).partition("|")
        if dep not in priced:
            continue
        entry = into.get(int(dep)) or Used()
        if dim == "deployment":
            entry = Used(entry.requests + int(requests or 0), entry.total + float(used or 0.0), entry.keys, entry.teams)
        else:
            parts = entry.keys if dim == "deployment_key" else entry.teams
            entity = int(rest) if rest.isdigit() else None
            parts[entity] = parts.get(entity, 0.0) + float(used or 0.0)
        into[int(dep)] = entry


def _checks(conn: Connection, parts: Sequence[tuple[datetime, datetime]]) -> list[tuple[Any, ...]]:
    """Per piece: how many requests the deployments' rows count (every logged request adds one, in the same
    transaction as its key and team rows), and how many rows there are (retention removes some). One query."""
    t = usage_rollups
    sums: list[list[Any]] = [[0, 0] for _ in parts]
    rows = conn.execute(
        select(t.c.grain, t.c.bucket, func.count(), func.sum(t.c.requests))
        .where(t.c.dim == "deployment", or_(*[rollup_range(a, b) for a, b in parts]))
        .group_by(t.c.grain, t.c.bucket)
    )
    for grain, bucket, n, requests in rows:
        at = utc(bucket)
        for i, (a, b) in enumerate(parts):  # the pieces' rows do not overlap: days are whole, hours are not
            if a <= at < b and (grain == "d") == (b - a >= DAY and truncate(a, "d") == a):
                sums[i][0] += n
                sums[i][1] += int(requests or 0)
                break
    return [tuple(x) for x in sums]


def _add(into: Sums, sums: Sums) -> None:
    """Add `sums` to `into` without changing `sums` (a cached piece stays as it was read)."""
    for dep, u in sums.items():
        mine = into.get(dep)
        if mine is None:
            into[dep] = Used(u.requests, u.total, dict(u.keys), dict(u.teams))
            continue
        for part, more in ((mine.keys, u.keys), (mine.teams, u.teams)):
            for entity, used in more.items():
                part[entity] = part.get(entity, 0.0) + used
        into[dep] = Used(mine.requests + u.requests, mine.total + u.total, mine.keys, mine.teams)


def pieces(lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """[lo, hi) (whole hours) as the hours before its first whole day, the whole days, and the hours after."""
    day_lo = truncate(lo, "d")
    day_lo += DAY if day_lo < lo else timedelta(0)
    day_hi = truncate(hi, "d")
    if day_hi - day_lo < DAY:
        return [(lo, hi)] if hi > lo else []
    return [(a, b) for a, b in ((lo, day_lo), (day_lo, day_hi), (day_hi, hi)) if b > a]


def usage(
    conn: Connection,
    ids: Sequence[int],
    start: datetime,
    end: datetime,
    allocation: str,
    *,
    now: datetime,
    cache: UsageCache | None = None,
) -> Sums:
    """Per priced deployment (`ids`): its traffic in the whole UTC hours around [start, end), and its keys' and
    teams' usage (tokens, or busy milliseconds by `allocation`). Hours before the one of `now` come from
    `cache` while they still count the same requests."""
    lo, hi = aligned(start, end, "h")
    split = min(max(lo, truncate(now, "h")), hi)
    out: Sums = {}
    if cache is None:
        _sum(conn, ids, lo, hi, allocation, out)
        return out
    url = conn.engine.url.render_as_string(hide_password=True)
    parts = pieces(lo, split)
    for (a, b), check in zip(parts, _checks(conn, parts) if parts else [], strict=True):
        key = (url, allocation, tuple(sorted(ids)), a, b)
        past = cache.get(key, check)
        if past is None:
            past = {}
            _sum(conn, ids, a, b, allocation, past)
            cache.put(key, check, past)
        _add(out, past)
    if hi > split:
        _sum(conn, ids, split, hi, allocation, out)
    return out
