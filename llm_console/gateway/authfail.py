"""Refused credentials, counted per client address and minute (what "bursts of 401s" are read from).

A 401 is not a call worth a log row (a scanner would fill the request log), so the gateway only counts them:
`note()` adds one in memory, and the runtime writes the counts every few seconds as `auth_fail_ip` rollup rows
(minute, hour and day; `requests` and `errors` both hold the count), with the same additive upsert the log
writer uses. At most MAX_ADDRESSES addresses are kept per interval; the rest count under "other".
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from llm_console.db.rollups import GRAIN_SECONDS, Counters, RollupKey, truncate, upsert_rows, upsert_sql

MAX_ADDRESSES = 10_000
OTHER = "other"
DIM = "auth_fail_ip"


class AuthFailures:
    def __init__(self) -> None:
        self._counts: Counter[tuple[datetime, str]] = Counter()
        self.total = 0

    def note(self, address: str, at: datetime | None = None) -> None:
        minute = truncate(at or datetime.now(UTC), "m")
        key = (minute, address or "unknown")
        if key not in self._counts and len(self._counts) >= MAX_ADDRESSES:
            key = (minute, OTHER)
        self._counts[key] += 1
        self.total += 1

    def drain(self) -> Counter[tuple[datetime, str]]:
        counts, self._counts = self._counts, Counter()
        return counts

    def restore(self, counts: Counter[tuple[datetime, str]]) -> None:
        """Put back counts a failed write took (they are added to whatever arrived meanwhile)."""
        self._counts.update(counts)


def rollup_counters(counts: Counter[tuple[datetime, str]]) -> dict[RollupKey, Counters]:
    out: dict[RollupKey, Counters] = {}
    for (minute, address), n in counts.items():
        for grain in GRAIN_SECONDS:
            key = (grain, DIM, truncate(minute, grain), address)
            c = out.get(key)
            if c is None:
                c = out[key] = Counters()
            c.requests += n
            c.errors += n
    return out


def write_auth_failures(engine: Engine, counts: Counter[tuple[datetime, str]]) -> None:
    if not counts:
        return
    sqlite_db = engine.dialect.name == "sqlite"
    rows: list[tuple[Any, ...]] = upsert_rows(rollup_counters(counts), sqlite_db)
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(upsert_sql(engine.dialect.name), rows)
        finally:
            cursor.close()
