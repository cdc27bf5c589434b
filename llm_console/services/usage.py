"""Overview figures for the console, from rollups and the newest log rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.queries import logs, usage
from llm_console.db.queries.logs import RequestRow
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import truncate


@dataclass(frozen=True, slots=True)
class Named:
    """One row of a breakdown: a label and its totals."""

    label: str
    value: str
    totals: Totals


@dataclass(frozen=True, slots=True)
class MinutePoint:
    minute: datetime
    requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class OverviewData:
    day: Totals
    week: Totals
    providers: list[Named]
    top_users: list[Named]
    top_keys: list[Named]
    per_minute: list[MinutePoint]
    latest: list[RequestRow]
    directory: Directory
    as_of: datetime


def per_minute(engine: Engine, now: datetime, minutes: int = 60) -> list[MinutePoint]:
    """Requests and errors per minute for the last `minutes`, zero-filled."""
    end = truncate(now, "m") + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    seen = {p.bucket: p.totals for p in usage.series(engine, start, end, "m")}
    empty = Totals()
    return [
        MinutePoint(b, seen.get(b, empty).requests, seen.get(b, empty).errors)
        for b in usage.bucket_starts(start, end, "m")
    ]


ALL_DEPLOYMENTS = 100_000  # a breakdown limit no installation reaches


def provider_totals(
    engine: Engine, start: datetime, end: datetime, directory: Directory, *, grain: str = ""
) -> dict[str, Totals]:
    """Totals per provider, summed over its deployments (providers are not a rollup dimension).

    Traffic that reached no deployment counts under "(none)"; that of since-deleted deployments under
    "(deleted)".
    """
    merged: dict[str, Totals] = {}
    for value, t in usage.breakdown(engine, start, end, "deployment", limit=ALL_DEPLOYMENTS, grain=grain):
        name = directory.deployment_provider.get(int(value), "(deleted)") if value.isdigit() else "(none)"
        merged[name] = merged[name] + t if name in merged else t
    return merged


def providers(engine: Engine, start: datetime, end: datetime, directory: Directory) -> list[Named]:
    """Requests and cost per provider, most cost first."""
    merged = provider_totals(engine, start, end, directory)
    return sorted((Named(k, k, v) for k, v in merged.items()), key=lambda n: -n.totals.cost_usd)


def top(engine: Engine, dim: str, start: datetime, end: datetime, directory: Directory, n: int = 5) -> list[Named]:
    rows = usage.breakdown(engine, start, end, dim, limit=n + 1)
    return [Named(directory.name(dim, v), v, t) for v, t in rows if v][:n]


def load_overview(engine: Engine, now: datetime | None = None) -> OverviewData:
    now = now or datetime.now(UTC)
    directory = load_directory(engine)
    end = truncate(now, "m") + timedelta(minutes=1)
    today = truncate(now, "d")
    return OverviewData(
        day=usage.totals(engine, end - timedelta(hours=24), end),
        week=usage.totals(engine, truncate(now, "h") - timedelta(days=7), end, grain="h"),
        providers=providers(engine, end - timedelta(hours=24), end, directory),
        top_users=top(engine, "user", today, end, directory),
        top_keys=top(engine, "key", today, end, directory),
        per_minute=per_minute(engine, now, 60),
        latest=logs.latest(engine, limit=15),
        directory=directory,
        as_of=now,
    )
