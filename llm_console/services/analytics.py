"""The Analytics page's figures: traffic over time, users, the weekday x hour heatmap, per-model economics,
errors and feedback, an A/B comparison, anomaly flags, forecasts and recommendations.

Everything but the A/B view reads `usage_rollups` and `feedback_scores`; the A/B view reads its two arms'
request rows, newest first and at most `max_rows` each, through the (deployment_id | alias, created_at)
indexes. `load_analytics` makes each read once and derives every panel from it, so the page costs one call.
Statistics (intervals, robust z, the forecast line) live in `analytics_stats`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Engine

from llm_console.db.models import Deployment, FeedbackScore, ModelAlias, Provider, RequestLog
from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory
from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import truncate, usage_rollups
from llm_console.presenters.common import count, money
from llm_console.services.analytics_stats import (
    OUTLIER_Z,
    linear_forecast,
    mean_ci,
    mean_ci_from_sums,
    newcombe_diff_ci,
    percentile,
    robust_z,
    welch_diff_ci,
    wilson,
)
from llm_console.services.analytics_types import (
    ABResult,
    Anomaly,
    AnomalyReport,
    Arm,
    ArmDifference,
    FeedbackSummary,
    Forecast,
    ForecastPoint,
    Heatmap,
    ModelEconomics,
    ModelErrors,
    ModelRow,
    ModelScore,
    Recommendation,
    ScorePoint,
    TracePoint,
    UsersPoint,
)

R = RequestLog.__table__  # type: ignore[attr-defined]
F = FeedbackScore.__table__  # type: ignore[attr-defined]
U = usage_rollups
D = Deployment.__table__  # type: ignore[attr-defined]
P = Provider.__table__  # type: ignore[attr-defined]
A = ModelAlias.__table__  # type: ignore[attr-defined]
MAX_MODELS = 200  # aliases (or deployments, tags) one panel lists; far more than any gateway serves
MIN_RATE_CALLS = 10  # an hour's error rate or mean latency from fewer calls is noise, not a signal
MIN_WINDOW = 6  # fewer earlier hours than this (after skipping quiet ones) and an hour is not judged
Z_SHOWN = 999.0  # |z| stored for an hour that departs from a constant window (z is infinite; JSON has no inf)
# error_hotspot: a model or deployment with >= 20 calls failing >= 5 % of them and >= 3x as often as all traffic
HOT_CALLS, HOT_RATE, HOT_FACTOR = 20, 0.05, 3.0
# cheaper_model, between models of one endpoint with >= 20 calls each: p95 latency at most +10 %, error rate at most
# 1 point higher, mean score at most 5 % of the score's observed range lower (judged when both have >= 5 scores),
# and cost per 1k tokens at most 80 % of the dearer model's
CHEAP_CALLS, CHEAP_P95, CHEAP_ERR, CHEAP_SCORE, CHEAP_COST, CHEAP_SCORES = 20, 1.10, 0.01, 0.05, 0.80, 5
# cache_prompts: a model sent >= 1M prompt tokens and under 10 % of them were read from the provider's cache
CACHE_PROMPT, CACHE_SHARE = 1_000_000, 0.10
KINDS = ("deployment", "alias")
AB_MAX_ROWS = 50_000  # request rows read per A/B arm, the newest: bounds the one read of `requests` here
# ... and on the page, which refreshes itself: 10,000 rows an arm read in ~20 ms on the 1M-request benchmark
# (SQLite), 50,000 in ~250-500 ms; 10,000 still give a 3 % error rate a 95 % interval of +/-0.3 point.
AB_PAGE_ROWS = 10_000


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} ms"


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


def _by_alias(engine: Engine, start: datetime, end: datetime, *, hist: bool = True) -> list[tuple[str, Totals]]:
    return usage.breakdown(engine, start, end, "alias", order_by="cost_usd", limit=MAX_MODELS, hist=hist)


def _economics(rows: Sequence[tuple[str, Totals]]) -> list[ModelEconomics]:
    out = [
        ModelEconomics(
            alias,
            t.requests,
            t.prompt_tokens,
            t.completion_tokens,
            t.cached_tokens,
            t.cost_usd,
            _ratio(t.cost_usd, t.requests),
            _ratio(t.cost_usd * 1000, t.tokens),
            _ratio(t.tokens, t.requests),
            _ratio(t.cached_tokens, t.prompt_tokens),
        )
        for alias, t in rows
    ]
    return sorted(out, key=lambda m: (-m.cost_usd, m.alias))


def token_economics(engine: Engine, start: datetime, end: datetime) -> list[ModelEconomics]:
    """Tokens, spend and unit costs per model, most spend first."""
    return _economics(_by_alias(engine, start, end, hist=False))


def _errors(rows: Sequence[tuple[str, Totals]]) -> list[ModelErrors]:
    out = []
    for alias, t in rows:
        low, high = wilson(t.errors, t.requests) or (None, None)
        out.append(ModelErrors(alias, t.requests, t.errors, _ratio(t.errors, t.requests), low, high))
    return sorted(out, key=lambda m: (-m.errors, -m.requests, m.alias))


def error_rates(engine: Engine, start: datetime, end: datetime) -> list[ModelErrors]:
    """Error rate per model with its 95 % Wilson interval, most errors first."""
    return _errors(_by_alias(engine, start, end, hist=False))


@dataclass(slots=True)
class _Score:
    """Scores of one (alias, name): all of them, and the numeric ones' count, sum and sum of squares."""

    n: int = 0
    k: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        return _ratio(self.total, self.k)


@dataclass(slots=True)
class _Feedback:
    """The range's feedback, read once: per (alias, name), each numeric name's observed low and high, per day."""

    scores: dict[tuple[str, str], _Score] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    daily: list[ScorePoint] = field(default_factory=list)

    def main_name(self) -> str | None:
        """The numeric score given most often (ties: by name), the one tables compare models on."""
        given: dict[str, int] = defaultdict(int)
        for (_, name), s in self.scores.items():
            given[name] += s.k
        ranked = sorted((k for k in given.items() if k[1] > 0), key=lambda kv: (-kv[1], kv[0]))
        return ranked[0][0] if ranked else None


def _day_expr(engine: Engine) -> ColumnElement[Any]:
    """The UTC day of `created_at` as 'YYYY-MM-DD' (SQLite stores UTC text; PostgreSQL converts explicitly)."""
    if engine.dialect.name == "sqlite":
        return func.substr(F.c.created_at, 1, 10)
    return func.to_char(func.timezone("UTC", F.c.created_at), "YYYY-MM-DD")


def _read_feedback(engine: Engine, start: datetime, end: datetime, alias: str | None = None) -> _Feedback:
    """One grouped scan of the range's scores, by (alias, name, category, day): a few hundred rows that every
    feedback figure (per model, per category, per day) is summed from here."""
    where = [F.c.created_at >= utc(start), F.c.created_at < utc(end)]
    if alias:
        where.append(F.c.alias == alias)
    value, day = F.c.value, _day_expr(engine)
    keys = (F.c.alias, F.c.name, F.c.category, day)
    sums = (func.count(), func.count(value), func.sum(value), func.sum(value * value), func.min(value), func.max(value))
    out = _Feedback()
    daily: dict[tuple[str, str], list[float]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(*keys, *sums).where(*where).group_by(*keys)).all()
    for a, name, category, d, n, k, total, total_sq, low, high in rows:
        s = out.scores.get((a, name))
        if s is None:
            s = out.scores[(a, name)] = _Score()
        s.n, s.k, s.total, s.total_sq = s.n + n, s.k + k, s.total + (total or 0), s.total_sq + (total_sq or 0)
        if category is not None:
            s.categories[category] = s.categories.get(category, 0) + n
        if k:
            lo, hi = out.bounds.get(name, (low, high))
            out.bounds[name] = (min(lo, low), max(hi, high))
        per_day = daily.setdefault((d, name), [0, 0, 0.0])
        per_day[0] += n
        per_day[1] += k
        per_day[2] += total or 0
    out.daily = [
        ScorePoint(date.fromisoformat(d), name, int(n), total / k if k else None)
        for (d, name), (n, k, total) in sorted(daily.items())
    ]
    return out


def _summary(fb: _Feedback) -> FeedbackSummary:
    by_model = []
    for (alias, name), s in sorted(fb.scores.items()):
        low, high = mean_ci_from_sums(s.k, s.total, s.total_sq) or (None, None)
        by_model.append(ModelScore(alias, name, s.n, s.mean, low, high, dict(s.categories)))
    names = sorted({name for _, name in fb.scores})
    return FeedbackSummary(names, by_model, fb.daily, sum(s.n for s in fb.scores.values()))


def feedback_summary(engine: Engine, start: datetime, end: datetime, *, alias: str | None = None) -> FeedbackSummary:
    """Scores given in the range (by when they were given), per model and name, and per day. Scores of a
    whole session carry no model: they appear under alias ""."""
    return _summary(_read_feedback(engine, start, end, alias))


def _comparison(rows: Sequence[tuple[str, Totals]], fb: _Feedback) -> list[ModelRow]:
    name = fb.main_name()
    out = []
    for alias, t in sorted(rows, key=lambda r: (-r[1].requests, r[0])):
        s = fb.scores.get((alias, name or ""), _Score())
        out.append(
            ModelRow(
                alias,
                t.requests,
                t.latency_p(0.5) if t.requests else None,
                t.latency_p(0.95) if t.requests else None,
                _ratio(t.latency_ms_sum, t.requests),
                _ratio(t.completion_tokens * 1000, t.latency_ms_sum),
                _ratio(t.cost_usd, t.requests),
                _ratio(t.errors, t.requests),
                name,
                s.mean,
                s.k,
            )
        )
    return out


def model_comparison(engine: Engine, start: datetime, end: datetime) -> list[ModelRow]:
    """Latency, speed, unit cost, errors and the most given numeric score per model, busiest first."""
    return _comparison(_by_alias(engine, start, end), _read_feedback(engine, start, end))


def _names(engine: Engine) -> Directory:
    """Deployment and provider names and the configured aliases: the part of `load_directory` this page needs
    (it skips the key and user tables, thousands of rows on a busy install, which no panel here names)."""
    with engine.connect() as conn:
        providers: dict[int, str] = {r.id: r.name for r in conn.execute(select(P.c.id, P.c.name))}
        deps = conn.execute(select(D.c.id, D.c.name, D.c.provider_id)).all()
        aliases = conn.execute(select(A.c.alias).order_by(A.c.alias)).scalars().all()
    return Directory(
        deployments={d.id: d.name for d in deps},
        deployment_provider={d.id: providers.get(d.provider_id, "?") for d in deps},
        aliases=tuple(aliases),
    )


def _deployment_label(directory: Directory, dep_id: int) -> str:
    name = directory.deployments.get(dep_id)
    if name is None:
        return f"#{dep_id} (deleted)"
    return f"{directory.deployment_provider.get(dep_id, '?')} / {name}"


def _options(
    by_dep: Sequence[tuple[str, Totals]], by_alias: Sequence[tuple[str, Totals]], directory: Directory
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    deps = [(v, _deployment_label(directory, int(v))) for v, t in by_dep if v.isdigit() and t.requests]
    return sorted(deps, key=lambda d: d[1]), sorted((v, v) for v, t in by_alias if v and t.requests)


def ab_options(engine: Engine, start: datetime, end: datetime) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The arms the A/B view offers: deployments (id, "provider / name") and models (alias, alias) with calls
    in the range, each sorted by label."""
    by_dep = usage.breakdown(engine, start, end, "deployment", order_by="requests", limit=MAX_MODELS, hist=False)
    return _options(by_dep, _by_alias(engine, start, end, hist=False), _names(engine))


@dataclass(slots=True)
class _ArmRead:
    """What was read for one arm: its calls' figures (newest first) and the scores they were given."""

    value: str
    label: str
    n: int
    errors: int
    latencies: list[float]
    costs: list[float]
    sampled: bool
    since: datetime  # the oldest call read (the range's start unless sampled)
    scores: list[float] = field(default_factory=list)


def _arm_label(kind: str, value: str, directory: Directory) -> str:
    if kind == "alias":
        return value
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValueError(f"Unknown deployment {value!r}: choose one from the list.")
    return _deployment_label(directory, int(value))


def _read_arm(
    engine: Engine, kind: str, value: str, label: str, start: datetime, end: datetime, max_rows: int
) -> _ArmRead:
    where = [
        R.c.deployment_id == int(value) if kind == "deployment" else R.c.alias == value,
        R.c.created_at >= utc(start),
        R.c.created_at < utc(end),
    ]
    newest = R.c.created_at.desc()
    # One more row than kept tells whether the arm had more calls than are read. No timestamps in the bulk
    # read (parsing 50,000 of them costs more than the rest); the oldest call read is looked up on its own.
    stmt = select(R.c.status, R.c.latency_ms, R.c.cost_usd).where(*where).order_by(newest).limit(max_rows + 1)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
        sampled = len(rows) > max_rows
        since = utc(start)
        if sampled:
            oldest = select(R.c.created_at).where(*where).order_by(newest).offset(max_rows - 1).limit(1)
            since = utc(conn.execute(oldest).scalar_one())
    rows = rows[:max_rows]
    return _ArmRead(
        value,
        label,
        len(rows),
        sum(r[0] != "ok" for r in rows),
        [float(r[1]) for r in rows],
        [float(r[2]) for r in rows],
        sampled,
        since,
    )


def _read_arm_scores(engine: Engine, kind: str, arms: Sequence[_ArmRead], end: datetime, limit: int) -> str | None:
    """Fill each arm's numeric scores of the name given most often to either arm's calls (scored calls made
    in what was read of the arm, the newest `limit` scores of each); returns that name."""
    col = F.c.deployment_id if kind == "deployment" else F.c.alias
    given: dict[str, int] = defaultdict(int)
    read: list[list[tuple[str, float]]] = []
    with engine.connect() as conn:
        for arm in arms:
            stmt = (
                select(F.c.name, F.c.value)
                .where(
                    col == (int(arm.value) if kind == "deployment" else arm.value),
                    F.c.value.is_not(None),
                    F.c.request_at >= utc(arm.since),
                    F.c.request_at < utc(end),
                )
                .order_by(F.c.request_at.desc())
                .limit(limit)
            )
            read.append([(str(n), float(v)) for n, v in conn.execute(stmt)])
    for rows in read:
        for n, _ in rows:
            given[n] += 1
    if not given:
        return None
    name = min(given, key=lambda k: (-given[k], k))
    for arm, rows in zip(arms, read, strict=True):
        arm.scores = [v for n, v in rows if n == name]
    return name


def _arm(a: _ArmRead) -> Arm:
    score_n = len(a.scores)
    return Arm(
        a.label,
        a.value,
        a.n,
        a.errors,
        _ratio(a.errors, a.n),
        wilson(a.errors, a.n),
        _ratio(sum(a.latencies), a.n),
        mean_ci(a.latencies),
        percentile(a.latencies, 0.95),
        _ratio(sum(a.costs), a.n),
        mean_ci(a.costs),
        score_n,
        _ratio(sum(a.scores), score_n),
        mean_ci(a.scores),
    )


def _difference(metric: str, a: float | None, b: float | None, ci: tuple[float, float, float] | None) -> ArmDifference:
    if ci is None:
        diff = None if a is None or b is None else b - a
        return ArmDifference(metric, a, b, diff, None, None, False)
    d, low, high = ci
    return ArmDifference(metric, a, b, d, low, high, low > 0 or high < 0)


def _ab_test(
    engine: Engine, start: datetime, end: datetime, kind: str, a: str, b: str, max_rows: int, directory: Directory
) -> ABResult:
    if kind not in KINDS:
        raise ValueError(f"Unknown comparison {kind!r}: compare by 'deployment' or by 'alias' (model).")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}.")
    thing = "deployment" if kind == "deployment" else "model"
    a, b = a.strip(), b.strip()
    if not a or not b:
        raise ValueError(f"Choose two {thing}s to compare.")
    if a == b:
        raise ValueError(f"Choose two different {thing}s: A and B are both {_arm_label(kind, a, directory)!r}.")
    reads = []
    for value in (a, b):
        label = _arm_label(kind, value, directory)
        arm = _read_arm(engine, kind, value, label, start, end, max_rows)
        known = int(value) in directory.deployments if kind == "deployment" else value in directory.aliases
        if arm.n == 0:
            if not known:
                raise ValueError(f"Unknown {thing} {label!r}: choose one from the list.")
            raise ValueError(f"The {thing} {label!r} had no calls in the range: choose another or widen the range.")
        reads.append(arm)
    name = _read_arm_scores(engine, kind, reads, end, max_rows)
    ra, rb = reads
    arm_a, arm_b = _arm(ra), _arm(rb)
    differences = [
        _difference(
            "error_rate", arm_a.error_rate, arm_b.error_rate, newcombe_diff_ci(ra.errors, ra.n, rb.errors, rb.n)
        ),
        _difference(
            "latency_ms", arm_a.mean_latency_ms, arm_b.mean_latency_ms, welch_diff_ci(ra.latencies, rb.latencies)
        ),
        _difference(
            "cost_per_request", arm_a.cost_per_request, arm_b.cost_per_request, welch_diff_ci(ra.costs, rb.costs)
        ),
        _difference("score", arm_a.score_mean, arm_b.score_mean, welch_diff_ci(ra.scores, rb.scores)),
    ]
    sampled = ra.sampled or rb.sampled
    method = (
        "95 % intervals; differences are B minus A, significant when their interval excludes 0. Error rate: Wilson "
        "interval per arm, Newcombe's hybrid score interval for the difference. Latency, cost per call and score: "
        "normal-approximation interval of each mean, Welch's t interval for the difference."
        + (f" Score: the mean of {name!r}, the numeric score given most often to these calls." if name else "")
        + (
            f" An arm with more than {max_rows:,} calls in the range is judged on its newest {max_rows:,}."
            if sampled
            else ""
        )
    )
    return ABResult(kind, arm_a, arm_b, differences, method, sampled)


def ab_test(
    engine: Engine, start: datetime, end: datetime, *, kind: str, a: str, b: str, max_rows: int = AB_MAX_ROWS
) -> ABResult:
    """Arm A against arm B (two deployments, or two models) on the calls each made in the range, with every
    difference's 95 % interval. Reads at most `max_rows` calls per arm, the newest (`sampled` says so).
    Raises ValueError, with a message for the page, for a bad kind, A == B, an unknown arm or a silent one."""
    return _ab_test(engine, start, end, kind, a, b, max_rows, _names(engine))


def anomalies(
    engine: Engine, now: datetime, *, hours: int = 168, window: int = 24, threshold: float = OUTLIER_Z
) -> AnomalyReport:
    """Unusual hours among the last `hours` full UTC hours: spend, error rate and mean latency of all traffic,
    each hour against the `window` hours before it by robust (median/MAD) z-score, flagged above `threshold`.

    Error rate and mean latency are judged only for hours with at least MIN_RATE_CALLS calls, against the
    earlier hours that also had that many (an hour's rate from three calls is noise); spend counts every hour,
    quiet ones as 0. An hour is judged only when at least MIN_WINDOW (or `window`, if fewer) earlier hours
    qualify."""
    if hours < 1 or window < 1:
        raise ValueError(f"Check at least one hour against at least one earlier hour (got {hours} and {window}).")
    step = timedelta(hours=1)
    end = truncate(now, "h")
    lo = end - (hours + window) * step
    seen = {p.bucket: p.totals for p in usage.series(engine, lo, end, "h", hist=False)}
    empty = Totals()
    hourly = [(lo + i * step, seen.get(lo + i * step, empty)) for i in range(hours + window)]
    metrics: dict[str, list[float | None]] = {
        "spend": [t.cost_usd for _, t in hourly],
        "error_rate": [t.errors / t.requests if t.requests >= MIN_RATE_CALLS else None for _, t in hourly],
        "latency": [t.latency_ms_sum / t.requests if t.requests >= MIN_RATE_CALLS else None for _, t in hourly],
    }
    found = []
    for metric, values in metrics.items():
        for i in range(window, window + hours):
            x = values[i]
            past = [v for v in values[i - window : i] if v is not None]
            if x is None or len(past) < min(MIN_WINDOW, window):
                continue
            z, med, mad = robust_z(past, x)
            if abs(z) > threshold:
                shown = z if math.isfinite(z) else math.copysign(Z_SHOWN, z)
                found.append(Anomaly(metric, hourly[i][0], x, med, mad, shown, "up" if z > 0 else "down"))
    found.sort(key=lambda an: (an.at, an.metric), reverse=True)
    method = (
        f"Each of the last {hours} full UTC hours against the {window} hours before it: modified z = "
        f"0.6745 * (value - median) / MAD (Iglewicz & Hoaglin), flagged beyond +/-{threshold:g}; when MAD is 0, the "
        f"mean absolute deviation * 1.2533 stands in for it, and a change from a constant window shows as "
        f"+/-{Z_SHOWN:g}. Error rate and mean latency only for hours with at least {MIN_RATE_CALLS} calls."
    )
    return AnomalyReport(found, method, hours)


def forecasts(engine: Engine, now: datetime, *, history_days: int = 28, horizon: int = 7) -> list[Forecast]:
    """Requests, tokens and spend per day projected `horizon` days from today by a least-squares line through
    the last `history_days` full UTC days (today excluded: it is not over; quiet days count as 0)."""
    if history_days < 3:
        raise ValueError(f"A forecast needs at least 3 days of history, got {history_days}.")
    if horizon < 1:
        raise ValueError(f"Forecast at least one day ahead, got {horizon}.")
    day = timedelta(days=1)
    today = truncate(now, "d")
    first = today - history_days * day
    seen = {p.bucket: p.totals for p in usage.series(engine, first, today, "d", hist=False)}
    empty = Totals()
    days = [first + i * day for i in range(history_days)]
    method = (
        f"Least-squares line through the last {history_days} full UTC days (days without traffic count as 0), "
        f"with a 95 % prediction interval (Student t, {history_days - 2} degrees of freedom); values below 0 "
        "are shown as 0."
    )
    out = []
    for metric in ("requests", "tokens", "cost_usd"):
        history = [float(getattr(seen.get(d, empty), metric)) for d in days]
        slope, _, points = linear_forecast(history, max(horizon, 7))
        shown = [
            ForecastPoint((today + i * day).date(), max(0.0, p), max(0.0, low), max(0.0, high))
            for i, (p, low, high) in enumerate(points[:horizon])
        ]
        week = sum(max(0.0, p) for p, _, _ in points[:7])
        out.append(
            Forecast(metric, [(d.date(), v) for d, v in zip(days, history, strict=True)], shown, slope, week, method)
        )
    return out


def _split_endpoint(
    rows: Sequence[tuple[str, Totals]],
) -> tuple[dict[str, list[tuple[str, Totals]]], list[tuple[str, Totals]]]:
    """`endpoint_alias` rows ("<endpoint>|<alias>") as models per endpoint, and summed per alias."""
    per_endpoint: dict[str, list[tuple[str, Totals]]] = defaultdict(list)
    per_alias: dict[str, Totals] = {}
    for value, t in rows:
        endpoint, _, alias = value.partition("|")
        per_endpoint[endpoint].append((alias, t))
        per_alias[alias] = per_alias[alias] + t if alias in per_alias else t
    return per_endpoint, list(per_alias.items())


def _liked_less(cheap: _Score, dear: _Score, scale: float) -> bool:
    """Whether the cheaper model's mean score is lower by more than 5 % of the score's observed range; only
    judged when both were scored at least CHEAP_SCORES times (fewer prove nothing either way)."""
    if min(cheap.k, dear.k) < CHEAP_SCORES or cheap.mean is None or dear.mean is None:
        return False
    return cheap.mean < dear.mean - CHEAP_SCORE * scale


def _cheaper(endpoint: str, models: Sequence[tuple[str, Totals]], fb: _Feedback) -> list[Recommendation]:
    """For each model of one endpoint, the cheapest other model there that is about as fast, as reliable and
    (when both were scored enough) as well liked, and at least 20 % cheaper per 1k tokens."""
    name = fb.main_name()
    low, high = fb.bounds.get(name or "", (0.0, 0.0))
    usable = [(m, t) for m, t in models if t.requests >= CHEAP_CALLS and t.tokens > 0 and t.cost_usd > 0]
    out = []
    for dear, d in usable:
        d_rate, d_p95 = d.cost_usd * 1000 / d.tokens, d.latency_p(0.95)
        d_score = fb.scores.get((dear, name or ""), _Score())
        best: tuple[float, str, Totals, _Score] | None = None
        for cheap, c in usable:
            c_rate, c_score = c.cost_usd * 1000 / c.tokens, fb.scores.get((cheap, name or ""), _Score())
            if cheap == dear or c_rate > CHEAP_COST * d_rate or c.latency_p(0.95) > CHEAP_P95 * d_p95:
                continue
            if c.error_rate > d.error_rate + CHEAP_ERR:
                continue
            if _liked_less(c_score, d_score, high - low):
                continue
            saving = d.cost_usd - d.tokens * c_rate / 1000
            if best is None or saving > best[0]:
                best = (saving, cheap, c, c_score)
        if best is None:
            continue
        saving, cheap, c, c_score = best
        figures = {
            "Cost per 1k tokens": f"{money(d_rate)} → {money(c.cost_usd * 1000 / c.tokens)}",
            "Latency": f"p95 {_ms(d_p95)} → p95 {_ms(c.latency_p(0.95))}",
            "Error rate": f"{_pct(d.error_rate)} → {_pct(c.error_rate)}",
            "Tokens in range": count(d.tokens),
            "Saving in range": money(saving),
        }
        if min(d_score.k, c_score.k) >= CHEAP_SCORES and name:
            figures[f"Mean {name}"] = f"{d_score.mean:.2f} (n={d_score.k}) → {c_score.mean:.2f} (n={c_score.k})"
        out.append(
            Recommendation(
                "cheaper_model",
                f"Try {cheap} instead of {dear}",
                f"On {endpoint}, {cheap} answered about as fast and as reliably as {dear} at "
                f"{money(c.cost_usd * 1000 / c.tokens)} instead of {money(d_rate)} per 1k tokens: {dear}'s "
                f"{count(d.tokens)} tokens in the range would have cost {money(saving)} less.",
                figures,
                saving,
            )
        )
    return out


def _hotspots(
    by_alias: Sequence[tuple[str, Totals]], by_dep: Sequence[tuple[str, Totals]], overall: Totals, directory: Directory
) -> list[tuple[int, Recommendation]]:
    """Models and deployments failing often (>= 5 % of >= 20 calls) and far more than the traffic overall."""
    base = overall.error_rate
    candidates = [("model", a or "(no model)", t) for a, t in by_alias]
    candidates += [("deployment", _deployment_label(directory, int(v)), t) for v, t in by_dep if v.isdigit()]
    out = []
    for what, label, t in candidates:
        rate = t.error_rate
        if t.requests < HOT_CALLS or rate < HOT_RATE or rate < HOT_FACTOR * base:
            continue
        ci = wilson(t.errors, t.requests)
        assert ci is not None
        figures = {
            "Calls": count(t.requests),
            "Errors": count(t.errors),
            "Error rate": f"{_pct(rate)} (95 % CI {_pct(ci[0])} to {_pct(ci[1])})",
            "All traffic": _pct(base),
        }
        detail = (
            f"The {what} {label} failed {count(t.errors)} of {count(t.requests)} calls ({_pct(rate)}), against "
            f"{_pct(base)} for all traffic: check its provider's status, its limits and the Logs page's errors."
        )
        out.append((t.errors, Recommendation("error_hotspot", f"Errors concentrate on {label}", detail, figures)))
    return out


def _caching(by_alias: Sequence[tuple[str, Totals]]) -> list[tuple[int, Recommendation]]:
    """Models sending a lot of prompt tokens of which providers served few from their prompt cache."""
    out = []
    for alias, t in by_alias:
        share = _ratio(t.cached_tokens, t.prompt_tokens)
        if t.prompt_tokens < CACHE_PROMPT or share is None or share >= CACHE_SHARE:
            continue
        figures = {"Prompt tokens": count(t.prompt_tokens), "Cached share": _pct(share), "Spend": money(t.cost_usd)}
        detail = (
            f"{alias} sent {count(t.prompt_tokens)} prompt tokens and only {_pct(share)} were served from the "
            "provider's prompt cache. Put the stable part of each prompt (system prompt, tools, long context) "
            "first and keep it identical between calls so providers that cache prefixes bill it at their cached rate."
        )
        out.append((t.prompt_tokens, Recommendation("cache_prompts", f"Cache {alias}'s prompts", detail, figures)))
    return out


def _recommend(
    by_endpoint: Sequence[tuple[str, Totals]], by_dep: Sequence[tuple[str, Totals]], fb: _Feedback, directory: Directory
) -> list[Recommendation]:
    per_endpoint, by_alias = _split_endpoint(by_endpoint)
    overall = sum((t for _, t in by_alias), Totals())
    cheaper = [r for endpoint, models in sorted(per_endpoint.items()) for r in _cheaper(endpoint, models, fb)]
    cheaper.sort(key=lambda r: -(r.saving_usd or 0))
    hot = sorted(_hotspots(by_alias, by_dep, overall, directory), key=lambda x: -x[0])
    cache = sorted(_caching(by_alias), key=lambda x: -x[0])
    return cheaper + [r for _, r in hot] + [r for _, r in cache]


def _by_endpoint(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, Totals]]:
    return usage.breakdown(engine, start, end, "endpoint_alias", order_by="cost_usd", limit=5 * MAX_MODELS)


def _by_deployment(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, Totals]]:
    return usage.breakdown(engine, start, end, "deployment", order_by="requests", limit=MAX_MODELS, hist=False)


def recommendations(engine: Engine, start: datetime, end: datetime) -> list[Recommendation]:
    """Suggestions with the figures behind them, those with a dollar saving first (largest first), then error
    hotspots (most errors first), then prompt caching (most prompt tokens first)."""
    return _recommend(
        _by_endpoint(engine, start, end),
        _by_deployment(engine, start, end),
        _read_feedback(engine, start, end),
        _names(engine),
    )


def tag_options(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Tags callers sent in the range with their call counts, most first."""
    rows = usage.breakdown(engine, start, end, "tag", order_by="requests", limit=MAX_MODELS, hist=False)
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
    directory = _names(engine)
    by_endpoint, by_dep = _by_endpoint(engine, start, end), _by_deployment(engine, start, end)
    _, by_alias = _split_endpoint(by_endpoint)
    fb = _read_feedback(engine, start, end)
    result: ABResult | None = None
    ab_error = ""
    if ab is not None:
        try:
            result = _ab_test(engine, start, end, ab[0], ab[1], ab[2], ab_rows, directory)
        except ValueError as exc:
            ab_error = str(exc)
    deployments, aliases = _options(by_dep, by_alias, directory)
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
        recommendations=_recommend(by_endpoint, by_dep, fb, directory),
        tags=tag_options(engine, start, end),
        as_of=now,
    )
