"""The Analytics page's figures: traffic over time, users, the weekday x hour heatmap, per-model economics,
errors and feedback, and the model comparison; and `load_analytics`, the whole page in one call.

These panels read `usage_rollups` and `feedback_scores` only. `load_analytics` makes each read once (the shared
reads are in `analytics_reads`) and derives every panel from it, adding the A/B view (`analytics_ab`, the one
bounded read of `requests`) and the anomalies, forecasts and recommendations (`analytics_signals`).
Statistics (intervals, robust z, the forecast line) live in `analytics_stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import usage_rollups
from llm_console.services import analytics_reads as reads
from llm_console.services.analytics_ab import AB_PAGE_ROWS, arm_options, compare_arms
from llm_console.services.analytics_signals import anomalies, forecasts, recommend
from llm_console.services.analytics_stats import mean_ci_from_sums, wilson
from llm_console.services.analytics_types import (
    ABResult,
    AnomalyReport,
    FeedbackSummary,
    Forecast,
    Heatmap,
    ModelEconomics,
    ModelErrors,
    ModelRow,
    ModelScore,
    Recommendation,
    TracePoint,
    UsersPoint,
)

U = usage_rollups


Series = dict[datetime, Totals]


def _trace_dim(alias: str | None, tag: str | None) -> tuple[str, str | None]:
    if alias and tag:
        raise ValueError("Filter by a model or by a tag, not both.")
    return ("alias", alias) if alias else ("tag", tag) if tag else ("all", None)


def _series(engine: Engine, start: datetime, end: datetime, grain: str, dim: str, value: str | None) -> Series:
    return {p.bucket: p.totals for p in usage.series(engine, start, end, grain, dim=dim, value=value, hist=False)}


def _traces(seen: Series, start: datetime, end: datetime, grain: str) -> list[TracePoint]:
    empty = Totals()
    out = []
    for bucket in usage.bucket_starts(start, end, grain):
        t = seen.get(bucket, empty)
        out.append(TracePoint(bucket, t.requests, t.errors, t.tokens, t.cost_usd))
    return out


def traces_over_time(
    engine: Engine, start: datetime, end: datetime, *, alias: str | None = None, tag: str | None = None
) -> list[TracePoint]:
    """Calls per bucket, every bucket of the range present (zero when quiet). Minutes up to two days, hours up
    to a quarter, then days; tags are rolled up per hour at the finest, so a tag never gets minutes."""
    dim, value = _trace_dim(alias, tag)
    grain = usage.choose_grain(start, end, dim)
    return _traces(_series(engine, start, end, grain, dim, value), start, end, grain)


def unique_users(engine: Engine, start: datetime, end: datetime) -> list[UsersPoint]:
    """Distinct users per UTC day: the day rows of the `principal` dimension, one per user seen that day
    ("e:" end users the caller named, "u:" key owners, "k:" bare keys), counted, never the request log."""
    lo, hi = usage.aligned(start, end, "d")
    end_user = func.sum(case((U.c.value.startswith("e:"), 1), else_=0))
    stmt = (
        select(U.c.bucket, func.count(), end_user)
        .where(U.c.grain == "d", U.c.dim == "principal", U.c.bucket >= lo, U.c.bucket < hi, U.c.requests > 0)
        .group_by(U.c.bucket)
    )
    with engine.connect() as conn:
        seen = {utc(b).date(): (int(n), int(e or 0)) for b, n, e in conn.execute(stmt)}
    return [UsersPoint(d.date(), *seen.get(d.date(), (0, 0))) for d in usage.bucket_starts(start, end, "d")]


def _heatmap(hours: Series) -> Heatmap:
    cells = [[0] * 24 for _ in range(7)]
    for bucket, t in hours.items():
        cells[bucket.weekday()][bucket.hour] += t.requests
    total = sum(map(sum, cells))
    if total == 0:
        return Heatmap(cells, 0, None, None, 0)
    peak = max(((d, h) for d in range(7) for h in range(24)), key=lambda dh: cells[dh[0]][dh[1]])
    return Heatmap(cells, total, peak[0], peak[1], cells[peak[0]][peak[1]])


def heatmap(engine: Engine, start: datetime, end: datetime, *, alias: str | None = None) -> Heatmap:
    """Requests per (weekday, UTC hour) from hour rollups over the range (whole hours)."""
    return _heatmap(_series(engine, start, end, "h", *(("alias", alias) if alias else ("all", None))))


def _economics(rows: Sequence[tuple[str, Totals]]) -> list[ModelEconomics]:
    out = [
        ModelEconomics(
            alias,
            t.requests,
            t.prompt_tokens,
            t.completion_tokens,
            t.cached_tokens,
            t.cost_usd,
            reads.ratio(t.cost_usd, t.requests),
            reads.ratio(t.cost_usd * 1000, t.tokens),
            reads.ratio(t.tokens, t.requests),
            reads.ratio(t.cached_tokens, t.prompt_tokens),
        )
        for alias, t in rows
    ]
    return sorted(out, key=lambda m: (-m.cost_usd, m.alias))


def token_economics(engine: Engine, start: datetime, end: datetime) -> list[ModelEconomics]:
    """Tokens, spend and unit costs per model, most spend first."""
    return _economics(reads.by_alias(engine, start, end, hist=False))


def _errors(rows: Sequence[tuple[str, Totals]]) -> list[ModelErrors]:
    out = []
    for alias, t in rows:
        low, high = wilson(t.errors, t.requests) or (None, None)
        out.append(ModelErrors(alias, t.requests, t.errors, reads.ratio(t.errors, t.requests), low, high))
    return sorted(out, key=lambda m: (-m.errors, -m.requests, m.alias))


def error_rates(engine: Engine, start: datetime, end: datetime) -> list[ModelErrors]:
    """Error rate per model with its 95 % Wilson interval, most errors first."""
    return _errors(reads.by_alias(engine, start, end, hist=False))


def _summary(fb: reads.Feedback) -> FeedbackSummary:
    by_model = []
    for (alias, name), s in sorted(fb.scores.items()):
        low, high = mean_ci_from_sums(s.k, s.total, s.total_sq) or (None, None)
        by_model.append(ModelScore(alias, name, s.n, s.mean, low, high, dict(s.categories)))
    names = sorted({name for _, name in fb.scores})
    return FeedbackSummary(names, by_model, fb.daily, sum(s.n for s in fb.scores.values()))


def feedback_summary(engine: Engine, start: datetime, end: datetime, *, alias: str | None = None) -> FeedbackSummary:
    """Scores given in the range (by when they were given), per model and name, and per day. Scores of a
    whole session carry no model: they appear under alias ""."""
    return _summary(reads.read_feedback(engine, start, end, alias))


def _comparison(rows: Sequence[tuple[str, Totals]], fb: reads.Feedback) -> list[ModelRow]:
    name = fb.main_name()
    out = []
    for alias, t in sorted(rows, key=lambda r: (-r[1].requests, r[0])):
        s = fb.scores.get((alias, name or ""), reads.Score())
        out.append(
            ModelRow(
                alias,
                t.requests,
                t.latency_p(0.5) if t.requests else None,
                t.latency_p(0.95) if t.requests else None,
                reads.ratio(t.latency_ms_sum, t.requests),
                reads.ratio(t.completion_tokens * 1000, t.latency_ms_sum),
                reads.ratio(t.cost_usd, t.requests),
                reads.ratio(t.errors, t.requests),
                name,
                s.mean,
                s.k,
            )
        )
    return out


def model_comparison(engine: Engine, start: datetime, end: datetime) -> list[ModelRow]:
    """Latency, speed, unit cost, errors and the most given numeric score per model, busiest first."""
    return _comparison(reads.by_alias(engine, start, end), reads.read_feedback(engine, start, end))


def tag_options(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Tags callers sent in the range with their call counts, most first."""
    rows = usage.breakdown(engine, start, end, "tag", order_by="requests", limit=reads.MAX_MODELS, hist=False)
    return [(v, t.requests) for v, t in rows if t.requests]


@dataclass(frozen=True, slots=True)
class AnalyticsData:
    """Everything the Analytics page shows for one range, from one `load_analytics` call."""

    traces: list[TracePoint]
    users: list[UsersPoint]
    heatmap: Heatmap
    economics: list[ModelEconomics]
    errors: list[ModelErrors]
    feedback: FeedbackSummary
    comparison: list[ModelRow]
    ab: ABResult | None
    ab_error: str
    ab_deployments: list[tuple[str, str]]
    ab_aliases: list[tuple[str, str]]
    anomalies: AnomalyReport
    forecasts: list[Forecast]
    recommendations: list[Recommendation]
    tags: list[tuple[str, int]]
    as_of: datetime


def load_analytics(
    engine: Engine,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    alias: str | None = None,
    tag: str | None = None,
    ab: tuple[str, str, str] | None = None,
    ab_rows: int = AB_PAGE_ROWS,
) -> AnalyticsData:
    """Every panel of the Analytics page for [start, end), each rollup read once. `alias` narrows the traffic
    chart, the heatmap and the feedback panel; `tag` the traffic chart (ValueError when both are given).
    Anomalies and forecasts look back from `now`, whatever the range. `ab` = (kind, a, b), judged on the
    newest `ab_rows` calls of each arm: a bad choice becomes `ab_error`, a message for the page."""
    if end <= start:
        raise ValueError("The range must end after it starts.")
    dim, value = _trace_dim(alias, tag)
    grain = usage.choose_grain(start, end, dim)
    seen = _series(engine, start, end, grain, dim, value)
    heat_dim = ("alias", alias) if alias else ("all", None)
    # Over more than two days the traffic chart reads the very hour rows the heatmap needs: read them once.
    hours = seen if grain == "h" and (dim, value) == heat_dim else _series(engine, start, end, "h", *heat_dim)
    directory = reads.page_directory(engine)
    by_endpoint, by_dep = reads.by_endpoint(engine, start, end), reads.by_deployment(engine, start, end)
    _, by_alias = reads.split_endpoint(by_endpoint)
    fb = reads.read_feedback(engine, start, end)
    result: ABResult | None = None
    ab_error = ""
    if ab is not None:
        try:
            result = compare_arms(engine, start, end, ab[0], ab[1], ab[2], ab_rows, directory)
        except ValueError as exc:
            ab_error = str(exc)
    deployments, aliases = arm_options(by_dep, by_alias, directory)
    return AnalyticsData(
        traces=_traces(seen, start, end, grain),
        users=unique_users(engine, start, end),
        heatmap=_heatmap(hours),
        economics=_economics(by_alias),
        errors=_errors(by_alias),
        feedback=_summary(fb) if not alias else feedback_summary(engine, start, end, alias=alias),
        comparison=_comparison(by_alias, fb),
        ab=result,
        ab_error=ab_error,
        ab_deployments=deployments,
        ab_aliases=aliases,
        anomalies=anomalies(engine, now),
        forecasts=forecasts(engine, now),
        recommendations=recommend(by_endpoint, by_dep, fb, directory),
        tags=tag_options(engine, start, end),
        as_of=now,
    )
