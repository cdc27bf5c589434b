"""The Analytics page's A/B view: two deployments, or two models, compared on the calls each made in the range,
every difference with its 95 % interval.

The one panel that reads `requests`: each arm's rows, newest first and at most `max_rows` of them, through the
(deployment_id | alias, created_at) indexes, then the numeric scores given to the calls read. Statistics (Wilson,
Newcombe, Welch) live in `analytics_stats`.

An arm with more calls in the range than are read is not judged on its last few hours: its call count, errors,
mean latency, P95 and cost per call come from the rollups over the whole range, its scores from the whole range,
and only the spread of latency and cost (the variance the intervals need) from the calls read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore, RequestLog
from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory
from llm_console.db.queries.usage import Totals
from llm_console.services import analytics_reads as reads
from llm_console.services.analytics_stats import (
    Summary,
    mean_ci,
    newcombe_diff_ci,
    percentile,
    summarize,
    summary_ci,
    welch_diff_ci,
    welch_summary_ci,
    wilson,
)
from llm_console.services.analytics_types import ABResult, Arm, ArmDifference

R = RequestLog.__table__  # type: ignore[attr-defined]
F = FeedbackScore.__table__  # type: ignore[attr-defined]
KINDS = ("deployment", "alias")
AB_MAX_ROWS = 50_000  # request rows read per A/B arm, the newest: bounds the one read of `requests` here
# ... and on the page, which refreshes itself. On the 1M-request benchmark the page with an A/B of the two
# busiest deployments missed its 150 ms target on PostgreSQL reading 10,000 rows an arm (P95 182, then 155 ms);
# 5,000 meet it on both databases (P95 122 ms there) and still give a 3 % error rate a 95 % interval of about
# +/-0.5 point (10,000: +/-0.35). The price: there the newest 5,000 calls of a busy deployment span hours, not
# days, so the method text names each sampled arm's oldest call read (benchmarks/README.md, the Analytics page).
AB_PAGE_ROWS = 5_000


def arm_options(
    by_dep: Sequence[tuple[str, Totals]], by_alias: Sequence[tuple[str, Totals]], directory: Directory
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Deployments and models with calls, as (value, label) choices sorted by label, from totals already read."""
    deps = [(v, reads.deployment_label(directory, int(v))) for v, t in by_dep if v.isdigit() and t.requests]
    return sorted(deps, key=lambda d: d[1]), sorted((v, v) for v, t in by_alias if v and t.requests)


def ab_options(engine: Engine, start: datetime, end: datetime) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The arms the A/B view offers: deployments (id, "provider / name") and models (alias, alias) with calls
    in the range, each sorted by label."""
    by_dep, by_alias = reads.by_deployment(engine, start, end), reads.by_alias(engine, start, end, hist=False)
    return arm_options(by_dep, by_alias, reads.page_directory(engine))


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
    since: datetime  # from when the arm's scores are read: the oldest call read, or the range's start
    oldest: datetime  # the oldest call read (the range's start unless sampled)
    scores: list[float] = field(default_factory=list)
    full: Totals | None = None  # a sampled arm's rollup totals over the whole range


def _arm_label(kind: str, value: str, directory: Directory) -> str:
    if kind == "alias":
        return value
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValueError(f"Unknown deployment {value!r}: choose one from the list.")
    return reads.deployment_label(directory, int(value))


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


def _spread(values: Sequence[float], n: int, mean: float) -> Summary | None:
    """The whole range's size and mean with the variance of the values read."""
    read = summarize(values)
    return None if read is None else Summary(n, mean, read.var)


@dataclass(frozen=True, slots=True)
class _Judged:
    """One arm's figures, ready for the intervals."""

    n: int
    errors: int
    latency: Summary | None
    cost: Summary | None
    p95: float | None


def _judge(a: _ArmRead) -> _Judged:
    if a.full is None or a.full.requests <= a.n:
        return _Judged(a.n, a.errors, summarize(a.latencies), summarize(a.costs), percentile(a.latencies, 0.95))
    t = a.full
    return _Judged(
        t.requests,
        t.errors,
        _spread(a.latencies, t.requests, t.latency_ms_sum / t.requests),
        _spread(a.costs, t.requests, t.cost_usd / t.requests),
        t.latency_p(0.95),
    )


def _mean(s: Summary | None, values: Sequence[float]) -> float | None:
    if s is not None:
        return s.mean
    return reads.ratio(sum(values), len(values))


def _arm(a: _ArmRead, j: _Judged) -> Arm:
    score_n = len(a.scores)
    return Arm(
        a.label,
        a.value,
        j.n,
        j.errors,
        reads.ratio(j.errors, j.n),
        wilson(j.errors, j.n),
        _mean(j.latency, a.latencies),
        summary_ci(j.latency),
        j.p95,
        _mean(j.cost, a.costs),
        summary_ci(j.cost),
        score_n,
        reads.ratio(sum(a.scores), score_n),
        mean_ci(a.scores),
    )


def _difference(metric: str, a: float | None, b: float | None, ci: tuple[float, float, float] | None) -> ArmDifference:
    if ci is None:
        diff = None if a is None or b is None else b - a
        return ArmDifference(metric, a, b, diff, None, None, False)
    d, low, high = ci
    return ArmDifference(metric, a, b, d, low, high, low > 0 or high < 0)


def compare_arms(
    engine: Engine, start: datetime, end: datetime, kind: str, a: str, b: str, max_rows: int, directory: Directory
) -> ABResult:
    """`ab_test` with the deployment names already read (`load_analytics` reads them once for every panel)."""
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
    arm_reads = []
    for value in (a, b):
        label = _arm_label(kind, value, directory)
        arm = _read_arm(engine, kind, value, label, start, end, max_rows)
        known = int(value) in directory.deployments if kind == "deployment" else value in directory.aliases
        if arm.n == 0:
            if not known:
                raise ValueError(f"Unknown {thing} {label!r}: choose one from the list.")
            raise ValueError(f"The {thing} {label!r} had no calls in the range: choose another or widen the range.")
        arm_reads.append(arm)
    dim = "deployment" if kind == "deployment" else "alias"
    for arm in arm_reads:
        if arm.sampled:  # counts and means over the whole range from the rollups; scores too
            arm.full = usage.totals(engine, start, end, dim=dim, value=arm.value)
            arm.since = utc(start)
    name = _read_arm_scores(engine, kind, arm_reads, end, max_rows)
    ra, rb = arm_reads
    ja, jb = _judge(ra), _judge(rb)
    arm_a, arm_b = _arm(ra, ja), _arm(rb, jb)
    differences = [
        _difference(
            "error_rate", arm_a.error_rate, arm_b.error_rate, newcombe_diff_ci(ja.errors, ja.n, jb.errors, jb.n)
        ),
        _difference(
            "latency_ms", arm_a.mean_latency_ms, arm_b.mean_latency_ms, welch_summary_ci(ja.latency, jb.latency)
        ),
        _difference(
            "cost_per_request", arm_a.cost_per_request, arm_b.cost_per_request, welch_summary_ci(ja.cost, jb.cost)
        ),
        _difference("score", arm_a.score_mean, arm_b.score_mean, welch_diff_ci(ra.scores, rb.scores)),
    ]
    sampled = ra.sampled or rb.sampled
    # A sampled arm's counts, means and P95 cover the whole range (rollups); only the spread of latency and cost
    # comes from its newest calls: say how many, and from when.
    spans = "; ".join(
        f"{r.label}: {r.n:,} of {r.full.requests:,} calls, from {r.oldest:%Y-%m-%d %H:%M} UTC"
        for r in arm_reads
        if r.sampled and r.full is not None
    )
    method = (
        "95 % intervals; differences are B minus A, significant when their interval excludes 0. Error rate: Wilson "
        "interval per arm, Newcombe's hybrid score interval for the difference. Latency, cost per call and score: "
        "normal-approximation interval of each mean, Welch's t interval for the difference."
        + (f" Score: the mean of {name!r}, the numeric score given most often to these calls." if name else "")
        + (
            f" An arm with more than {max_rows:,} calls in the range: its counts, error rate, means and P95 cover "
            f"every call in the range (rollups), the spread of latency and cost its newest {max_rows:,} ({spans})."
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
    return compare_arms(engine, start, end, kind, a, b, max_rows, reads.page_directory(engine))
