"""Usage rollups: additive counters per time bucket and per dimension, the only thing dashboards aggregate.

One row per (grain, dimension, bucket, value): grain is a minute, an hour or a day; the dimension is one
way of slicing the traffic (all of it, by alias, by key, ...). Every counter is a plain sum, latency and
time-to-first-byte histograms included (one integer column per bucket), so a batch of log records becomes
one `INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c` per row on SQLite and PostgreSQL alike:
no read-modify-write, and concurrent writers never lose counts.

Minute rows cover the cheap dimensions only (a few values per minute); keys, users and teams are rolled
up per hour and per day, which keeps the table small on a million requests a month. So are keys and teams
per deployment (`deployment_key`, `deployment_team`: "<deployment id>|<key or team id>"), which share a
self-hosted deployment's GPU-hour cost; traffic logged before they existed has no such rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Float, Integer, String, Table, UniqueConstraint
from sqlmodel import SQLModel

from llm_console.db.records import LogRecord

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500, 750,
    1000, 1500, 2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
"""Upper bounds of the histogram buckets; one more bucket holds everything slower."""

N_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
LAT_COLS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(N_BUCKETS))
TTFB_COLS: tuple[str, ...] = tuple(f"ttfb_{i:02d}" for i in range(N_BUCKETS))

GRAIN_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MINUTE_DIMS: tuple[str, ...] = (
    "all", "alias", "deployment", "endpoint", "endpoint_alias", "stream", "throttle", "auth_fail_ip",
)  # fmt: skip
COARSE_DIMS: tuple[str, ...] = (
    *MINUTE_DIMS, "key", "user", "team", "embed_dims", "deployment_key", "deployment_team",
    "principal", "tag", "throttled_key", "prompt",
)  # fmt: skip
_MINUTE_SET = frozenset(MINUTE_DIMS)
DIMS_BY_GRAIN = {"m": MINUTE_DIMS, "h": COARSE_DIMS, "d": COARSE_DIMS}

SCALAR_COLS: tuple[str, ...] = (
    "requests",
    "errors",
    "stream_requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms_sum",
    "ttfb_ms_sum",
    "ttfb_count",
)
COUNTER_COLS: tuple[str, ...] = (*SCALAR_COLS, *LAT_COLS, *TTFB_COLS)
KEY_COLS: tuple[str, ...] = ("grain", "dim", "bucket", "value")

usage_rollups = Table(
    "usage_rollups",
    SQLModel.metadata,
    Column("grain", String(1), nullable=False),
    Column("dim", String(20), nullable=False),
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("value", String(400), nullable=False),
    *[Column(name, Float if name.endswith(("_usd", "_sum")) else Integer, nullable=False) for name in COUNTER_COLS],
    UniqueConstraint(*KEY_COLS, name="uq_usage_rollups_key"),
)


def bucket_index(ms: float) -> int:
    """Histogram slot for a duration: the first bound it does not exceed, or the overflow slot."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, ms)


def truncate(at: datetime, grain: str) -> datetime:
    """Start of the UTC minute, hour or day holding `at`."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    if grain == "m":
        return at.replace(second=0, microsecond=0)
    if grain == "h":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class Counters:
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
    lat: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)
    ttfb: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)

    def add(self, r: LogRecord, lat_i: int, ttfb_i: int) -> None:
        """Count one record whose latency and TTFB fall in histogram slots `lat_i` and `ttfb_i`."""
        self.requests += 1
        self.errors += r.status != "ok"
        self.stream_requests += r.stream
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        self.cached_tokens += r.cached_tokens
        self.cost_usd += r.cost_usd
        self.latency_ms_sum += r.latency_ms
        self.lat[lat_i] += 1
        if r.ttfb_ms is not None:
            self.ttfb_ms_sum += r.ttfb_ms
            self.ttfb_count += 1
            self.ttfb[ttfb_i] += 1

    def values(self) -> tuple[Any, ...]:
        return (
            self.requests,
            self.errors,
            self.stream_requests,
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.cost_usd,
            self.latency_ms_sum,
            self.ttfb_ms_sum,
            self.ttfb_count,
            *self.lat,
            *self.ttfb,
        )


RollupKey = tuple[str, str, datetime, str]


def _id(value: int | None) -> str:
    return "" if value is None else str(value)


def principal(r: LogRecord) -> str:
    """Who a call counts as for "unique users": the end user it names, else the key's owner, else the key."""
    if r.end_user:
        return f"e:{r.end_user}"
    if r.user_id is not None:
        return f"u:{r.user_id}"
    return f"k:{_id(r.key_id)}"


def dimension_values(r: LogRecord) -> list[tuple[str, str]]:
    """(dimension, value) pairs a record counts under; those in MINUTE_DIMS also get minute rows.

    `throttle` ("<entity>:<id>|<limit>") and `throttled_key` count the limiter's refusals; `principal` the
    distinct users per hour and day; `tag` each tag the caller sent; `prompt` the prompt version a call was
    rendered from (its `prompt_versions.id`), for calls that referenced one. `auth_fail_ip` rows are not
    written from records: the gateway counts refused credentials per client address (gateway.authfail).
    """
    pairs = [
        ("all", ""),
        ("alias", r.alias),
        ("deployment", _id(r.deployment_id)),
        ("endpoint", r.endpoint),
        ("endpoint_alias", f"{r.endpoint}|{r.alias}"),
        ("stream", "1" if r.stream else "0"),
        ("key", _id(r.key_id)),
        ("user", _id(r.user_id)),
        ("team", _id(r.team_id)),
    ]
    if r.embedding_dims:
        pairs.append(("embed_dims", str(r.embedding_dims)))
    if r.deployment_id is not None:
        pairs.append(("deployment_key", f"{r.deployment_id}|{_id(r.key_id)}"))
        pairs.append(("deployment_team", f"{r.deployment_id}|{_id(r.team_id)}"))
    pairs.append(("principal", principal(r)))
    if r.tags:
        pairs.extend(("tag", tag) for tag in r.tags.split(","))
    if r.throttle:
        pairs.append(("throttle", r.throttle))
        pairs.append(("throttled_key", _id(r.key_id)))
    if r.prompt_version_id is not None:
        pairs.append(("prompt", str(r.prompt_version_id)))
    return pairs


def aggregate(records: Iterable[LogRecord]) -> dict[RollupKey, Counters]:
    """Counters per rollup row for a batch of records."""
    out: dict[RollupKey, Counters] = {}
    minute_dims = _MINUTE_SET
    for r in records:
        minute = truncate(r.created_at, "m")
        buckets = (("m", minute), ("h", minute.replace(minute=0)), ("d", minute.replace(minute=0, hour=0)))
        lat_i = bucket_index(r.latency_ms)
        ttfb_i = bucket_index(r.ttfb_ms) if r.ttfb_ms is not None else -1
        for dim, value in dimension_values(r):
            for grain, bucket in buckets if dim in minute_dims else buckets[1:]:
                key = (grain, dim, bucket, value)
                counters = out.get(key)
                if counters is None:
                    counters = out[key] = Counters()
                counters.add(r, lat_i, ttfb_i)
    return out


def upsert_sql(dialect: str) -> str:
    """One additive upsert for a rollup row, in the driver's own parameter style."""
    cols = (*KEY_COLS, *COUNTER_COLS)
    mark = "?" if dialect == "sqlite" else "%s"
    updates = ", ".join(f"{c} = usage_rollups.{c} + excluded.{c}" for c in COUNTER_COLS)
    return (
        f"INSERT INTO usage_rollups ({', '.join(cols)}) VALUES ({', '.join(mark for _ in cols)}) "
        f"ON CONFLICT ({', '.join(KEY_COLS)}) DO UPDATE SET {updates}"
    )


def sqlite_ts(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (always UTC here)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"


def upsert_rows(aggs: dict[RollupKey, Counters], sqlite_db: bool) -> list[tuple[Any, ...]]:
    """Driver-ready parameter rows, sorted by key so concurrent writers lock rows in the same order."""
    rows = []
    for (grain, dim, bucket, value), counters in sorted(aggs.items(), key=lambda kv: kv[0]):
        ts: Any = sqlite_ts(bucket) if sqlite_db else bucket
        rows.append((grain, dim, ts, value, *counters.values()))
    return rows


def percentile(hist: Sequence[int], q: float) -> float:
    """Percentile `q` (0..1) from bucket counts, interpolating linearly inside the bucket that holds it.

    The overflow bucket is taken to end at twice the last bound. The error is at most the width of the
    bucket holding the rank, which the bounds keep under half the value above 35 ms.
    """
    total = sum(hist)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
            upper = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1] * 2
            return float(lower + (upper - lower) * ((rank - seen) / count))
        seen += count
    return float(LATENCY_BOUNDS_MS[-1] * 2)
