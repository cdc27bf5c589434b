"""The Usage & performance page's figures: one call, from rollups (plus the slowest rows of the log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from llm_console.db.queries import logs, usage
from llm_console.db.queries.logs import RequestRow
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.usage import Totals
from llm_console.services.filters import ParsedFilters

TOP_MODELS = 6


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    totals: Totals


@dataclass(frozen=True, slots=True)
class UsageData:
    totals: Totals
    series: list[Bucket]
    model_names: list[str]  # the top models, in series order; "other" sums the rest
    model_series: list[tuple[datetime, list[int]]]  # requests per top model (+ other) per bucket
    by_model: list[tuple[str, Totals]]
    stream_split: list[tuple[str, Totals]]
    slow: list[RequestRow]
    directory: Directory
    grain: str
    as_of: datetime


def load_usage(engine: Engine, parsed: ParsedFilters, now: datetime | None = None) -> UsageData:
    f, grain = parsed.filters, parsed.grain
    dim, value = ("alias", f.alias) if f.alias is not None else ("all", None)
    totals = usage.totals(engine, f.start, f.end, dim=dim, value=value, grain=usage.choose_grain(f.start, f.end))
    points = {p.bucket: p.totals for p in usage.series(engine, f.start, f.end, grain, dim=dim, value=value)}
    empty = Totals()
    series = [Bucket(b, points.get(b, empty)) for b in usage.bucket_starts(f.start, f.end, grain)]
    by_model = usage.breakdown(engine, f.start, f.end, "alias", order_by="requests", limit=50)
    if f.alias is not None:
        by_model = [(v, t) for v, t in by_model if v == f.alias]
    names = [v for v, _ in by_model[:TOP_MODELS]]
    per_value: dict[datetime, list[int]] = {}
    if f.alias is None:
        for bucket, alias, requests in usage.counter_by_value(engine, f.start, f.end, grain, "alias"):
            row = per_value.setdefault(bucket, [0] * (len(names) + 1))
            row[names.index(alias) if alias in names else len(names)] += int(requests)
    else:
        per_value = {b.start: [b.totals.requests, 0] for b in series}
    model_series = [(b.start, per_value.get(b.start, [0] * (len(names) + 1))) for b in series]
    stream_split = usage.breakdown(engine, f.start, f.end, "stream", order_by="requests", limit=2)
    slow = logs.slow_requests(engine, f, limit=15)
    return UsageData(
        totals=totals,
        series=series,
        model_names=names,
        model_series=model_series,
        by_model=by_model,
        stream_split=stream_split,
        slow=slow,
        directory=load_directory(engine),
        grain=grain,
        as_of=now or datetime.now(UTC),
    )
