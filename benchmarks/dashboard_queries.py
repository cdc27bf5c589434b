"""Every dashboard page's queries on a seeded month of traffic, timed on SQLite and PostgreSQL.

Seeds `--count` requests over 30 days (`llm_console.demo.seed`, through the log writer's `write_batch`),
then times the repo's own query functions `--repeat` times each, beside the naive scans of `requests`
that LiteLLM-style dashboards run, and streams an export through `iter_requests` with its memory traced.
`.venv/bin/python benchmarks/dashboard_queries.py --count 100000`; benchmarks/README.md explains the output.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `llm_console` importable

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from benchmarks.fleet_seed import PRICED, seed_fleet
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.db.models import Deployment, RequestLog
from llm_console.db.queries import logs, usage
from llm_console.db.queries.filters import RequestFilters
from llm_console.db.queries.names import load_directory
from llm_console.db.queries.spend import spend_by_entity
from llm_console.demo.library import SUPPORT
from llm_console.demo.seed import seed
from llm_console.fleet.queries import deployment_fleet, fleet_overview, kv_cache, memory_trend, queue_depth
from llm_console.gateway.runtime import tune_gc
from llm_console.presenters.fleet import fleet_view
from llm_console.services import analytics, analytics_ab, analytics_signals, prompt_stats, tier_insights
from llm_console.services import usage as overview
from llm_console.services.costs import TOP, load_costs
from llm_console.services.effective_budgets import budget_use
from llm_console.services.embeddings import load_embeddings
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.services.gpu_cost import GpuCostOptions, gpu_cost
from llm_console.services.gpu_usage import UsageCache
from llm_console.services.logs_page import load_logs
from llm_console.services.performance import load_usage
from llm_console.services.spend import load_spend, parse_spend_query
from llm_console.settings import Settings

DASHBOARD_MS = 150.0  # the issue: Overview and Usage queries, P95
LOGS_MS = 100.0  # the issue: a logs page with one or two filters, P95
EXPORT_MARKS = (10_000, 50_000, 100_000)
DAYS = 30
HOUR = timedelta(hours=1)
SEED = 0
R = RequestLog.__table__  # type: ignore[attr-defined]


@dataclass
class Query:
    page: str
    name: str
    run: Callable[[], object]
    target_ms: float | None = None
    baseline: str = ""  # for a raw scan: the name of the query it stands in for


@dataclass
class Timing:
    page: str
    name: str
    db: str
    samples: list[float]
    target_ms: float | None
    baseline: str = ""

    def p(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def passed(self) -> bool | None:
        return None if self.target_ms is None else self.p(0.95) < self.target_ms


@dataclass
class DbRun:
    db: str
    count: int
    seed_s: float | None
    timings: list[Timing] = field(default_factory=list)
    export: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # one warm-up run, not counted: the page cache and the pool start warm, as on a running console
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pages(engine: Engine, now: datetime, repeat: int) -> list[Query]:
    """What each page asks, with the arguments its service passes (ids picked from the seeded data)."""
    day, week, month = now - timedelta(hours=24), now - timedelta(days=7), now - timedelta(days=DAYS)
    end = overview.truncate(now, "m") + timedelta(minutes=1)
    directory = load_directory(engine)
    users = [v for v, _ in usage.breakdown(engine, week, now, "user", order_by="requests", limit=1000) if v]

    def parsed_filters(**params: str) -> ParsedFilters:
        parsed = parse_filters({"range": "24h", **params}, now)
        assert not parsed.errors, parsed.errors
        return parsed

    def filters(**params: str) -> RequestFilters:
        return parsed_filters(**params).filters

    def alias_percentiles() -> object:
        rows = usage.breakdown(engine, week, now, "alias", order_by="requests")
        return [(v, t.latency_p(0.5), t.latency_p(0.95), t.latency_p(0.99), t.ttfb_p(0.5)) for v, t in rows]

    def page_after(f: RequestFilters, pages_deep: int) -> Callable[[], object]:
        cursor = None
        for _ in range(pages_deep):
            cursor = logs.list_requests(engine, f, cursor=cursor).next_cursor
        return lambda: logs.list_requests(engine, f, cursor=cursor)

    first = logs.list_requests(engine, filters()).rows
    request_id = first[len(first) // 2].id
    cost_grain = usage.choose_grain(month, now, "user")
    gpu_cache = UsageCache()  # the console process's, kept between refreshes (ConsoleContext.gpu_usage)
    embed_grain = usage.choose_grain(week, now, "embed_dims")
    o, u, lg, c = "Overview", "Usage", "Logs", "Costs"
    pages = [
        Query(
            u, "load_usage 24h (whole page, hourly)", lambda: load_usage(engine, parsed_filters(), now), DASHBOARD_MS
        ),
        Query(
            u,
            "load_usage 24h per minute (whole page)",
            lambda: load_usage(engine, parsed_filters(res="minute"), now),
            DASHBOARD_MS,
        ),
        Query(
            u, "load_usage 7d (whole page)", lambda: load_usage(engine, parsed_filters(range="7d"), now), DASHBOARD_MS
        ),
        Query(
            lg,
            "load_logs model + status (whole page)",
            lambda: load_logs(
                engine, parsed_filters(model="gpt-4o", status="error"), cursor=None, request_id=request_id
            ),
            LOGS_MS,
        ),
        Query(
            c,
            "load_costs 30d (whole page)",
            lambda: load_costs(engine, parsed_filters(range="30d"), 1000.0, now, gpu_cache=gpu_cache),
            DASHBOARD_MS,
        ),
        Query(
            "Embeddings",
            "load_embeddings 7d (whole page)",
            lambda: load_embeddings(engine, parsed_filters(range="7d"), now),
            DASHBOARD_MS,
        ),
        Query("Spend", "load_spend (whole page)", lambda: load_spend(engine, parse_spend_query({}), now), DASHBOARD_MS),
    ]
    qs = [
        Query(o, "load_overview (whole page)", lambda: overview.load_overview(engine, now), DASHBOARD_MS),
        Query(o, "load_directory", lambda: load_directory(engine), DASHBOARD_MS),
        Query(o, "totals 24h (minute rows)", lambda: usage.totals(engine, end - timedelta(hours=24), end),
              DASHBOARD_MS),
        Query(o, "totals 7d (hour rows)", lambda: usage.totals(engine, end - timedelta(days=7), end, grain="h"),
              DASHBOARD_MS),
        Query(o, "providers 24h", lambda: overview.providers(engine, day, end, directory), DASHBOARD_MS),
        Query(o, "top users today", lambda: overview.top(engine, "user", overview.truncate(now, "d"), end, directory),
              DASHBOARD_MS),
        Query(o, "top keys today", lambda: overview.top(engine, "key", overview.truncate(now, "d"), end, directory),
              DASHBOARD_MS),
        Query(o, "per_minute 60 min", lambda: overview.per_minute(engine, now), DASHBOARD_MS),
        Query(o, "latest 15", lambda: logs.latest(engine, limit=15), DASHBOARD_MS),
        Query(u, "totals 24h", lambda: usage.totals(engine, day, now), DASHBOARD_MS),
        Query(u, "totals 7d", lambda: usage.totals(engine, week, now), DASHBOARD_MS),
        Query(u, "minute counts 24h by alias (chart)",
            lambda: usage.counter_by_value(engine, day, now, "m", "alias"),
            DASHBOARD_MS),
        Query(u, "series per hour 7d", lambda: usage.series(engine, week, now, "h"), DASHBOARD_MS),
        Query(u, "breakdown by alias 7d + percentiles", alias_percentiles, DASHBOARD_MS),
        Query(u, "slow_requests 24h", lambda: logs.slow_requests(engine, filters()), DASHBOARD_MS),
        Query(u, "slow_requests 7d", lambda: logs.slow_requests(engine, filters(range="7d")), DASHBOARD_MS),
        Query(lg, "first page, no filter", lambda: logs.list_requests(engine, filters()), LOGS_MS),
        Query(lg, "model", lambda: logs.list_requests(engine, filters(model="gpt-4o")), LOGS_MS),
        Query(lg, "model + status", lambda: logs.list_requests(engine, filters(model="gpt-4o", status="error")),
              LOGS_MS),
        Query(lg, "model + status, 7d", lambda: logs.list_requests(engine, filters(model="gpt-4o", status="error",
              range="7d")), LOGS_MS),
        Query(lg, "user (busiest)", lambda: logs.list_requests(engine, filters(user=users[0])), LOGS_MS),
        Query(lg, "user (median)", lambda: logs.list_requests(engine, filters(user=users[len(users) // 2])), LOGS_MS),
        Query(lg, "page 21 (after 20 cursors)", page_after(filters(), 20), LOGS_MS),
        Query(lg, "get_request (detail + spans)", lambda: logs.get_request(engine, request_id), LOGS_MS),
        *[
            Query(c, f"breakdown by {dim} 30d", lambda dim=dim: usage.breakdown(engine, month, now, dim,  # type: ignore[misc]
                  order_by="cost_usd", limit=10, grain=cost_grain, hist=False), DASHBOARD_MS)
            for dim in ("key", "user", "team", "endpoint")
        ],
        Query(c, "daily series 30d", lambda: usage.daily_cost(engine, month, now), DASHBOARD_MS),
        Query("Spend", "spend_by_entity user", lambda: spend_by_entity(engine, "user", now), DASHBOARD_MS),
        Query("Embeddings", "breakdown embed_dims 7d", lambda: usage.breakdown(engine, week, now, "embed_dims",
              order_by="requests", limit=100, grain=embed_grain), DASHBOARD_MS),
        Query("Embeddings", "breakdown endpoint_alias 7d", lambda: usage.breakdown(engine, week, now,
              "endpoint_alias", order_by="requests", limit=200, grain=embed_grain), DASHBOARD_MS),
    ]  # fmt: skip
    return (
        qs
        + pages
        + fleet_pages(engine, now, repeat)
        + analytics_pages(engine, now)
        + prompt_and_tier_pages(engine, now)
        + raw_scans(engine, now)
    )


def fleet_pages(engine: Engine, now: datetime, repeat: int) -> list[Query]:
    """The Fleet pages as their states ask (the last hour unless the URL says otherwise), the engines' queues
    the Usage page reads (its range: 24 h by default), and the Costs page's
    GPU-hour cost over 30 days as `load_costs` computes it on every refresh."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # the defaults, as a fresh install runs
    stale_s, gpu = settings.fleet_engine_stale_s, GpuCostOptions.from_settings(settings)
    with engine.connect() as conn:
        dep_id = conn.execute(select(Deployment.id).where(Deployment.name == next(iter(PRICED)))).scalar_one()  # type: ignore[call-overload,arg-type]

    def span(name: str) -> tuple[datetime, datetime]:
        f = parse_filters({"range": name}, now).filters
        assert f.start is not None and f.end is not None
        return f.start, f.end

    h1, d1, w1, m1 = span("1h"), span("24h"), span("7d"), span("30d")
    cache = UsageCache()

    def primed() -> UsageCache:
        """A cache as the previous hour's refreshes left it: the whole days are in it, the hours are not."""
        kept = UsageCache()
        gpu_cost(engine, m1[0] - HOUR, m1[1] - HOUR, options=gpu, now=now - HOUR, cache=kept, limit=TOP)
        return kept

    an_hour_ago: list[UsageCache] = []

    def first_in_an_hour() -> object:
        if not an_hour_ago:  # made in the warm-up run, which is not timed
            an_hour_ago.extend(primed() for _ in range(repeat + 1))
        return gpu_cost(engine, *m1, options=gpu, now=now, cache=an_hour_ago.pop(), limit=TOP)

    fl, dp, kv = "Fleet", "Deployment", "KV cache"
    return [
        Query(fl, "fleet page 1h (overview+trend+view)", lambda: fleet_view(
              fleet_overview(engine, now, stale_s=stale_s), memory_trend(engine, *h1)), DASHBOARD_MS),
        Query(fl, "fleet_overview", lambda: fleet_overview(engine, now, stale_s=stale_s), DASHBOARD_MS),
        *[Query(fl, f"memory_trend {n}", lambda r=r: memory_trend(engine, *r), DASHBOARD_MS)  # type: ignore[misc]
          for n, r in (("1h", h1), ("24h", d1), ("7d", w1))],
        *[Query(dp, f"deployment_fleet {n}", lambda r=r: deployment_fleet(engine, dep_id, *r, now=now,  # type: ignore[misc]
                stale_s=stale_s), DASHBOARD_MS) for n, r in (("1h", h1), ("24h", d1))],
        *[Query(kv, f"kv_cache {n}", lambda r=r: kv_cache(engine, *r, now=now, stale_s=stale_s),  # type: ignore[misc]
                DASHBOARD_MS) for n, r in (("1h", h1), ("24h", d1))],
        *[Query("Usage", f"queue_depth {n} (engines' queues)", lambda r=r: queue_depth(engine, *r, now=now,  # type: ignore[misc]
                stale_s=stale_s), DASHBOARD_MS) for n, r in (("24h", d1), ("7d", w1))],
        Query("Costs", "gpu_cost 30d (a refresh)", lambda: gpu_cost(engine, *m1, options=gpu, now=now, cache=cache,
              limit=TOP),
              DASHBOARD_MS),
        Query("Costs", "gpu_cost 30d (first in an hour)", first_in_an_hour, DASHBOARD_MS),
        Query("Costs", "gpu_cost 30d (first in a day)", lambda: gpu_cost(engine, *m1, options=gpu, now=now, limit=TOP),
              DASHBOARD_MS),
    ]  # fmt: skip


def analytics_pages(engine: Engine, now: datetime) -> list[Query]:
    """The Analytics page as its state asks: one `load_analytics` over the URL's range (30 d, 7 d), with and
    without an A/B comparison of the two busiest deployments (the page reads `AB_PAGE_ROWS` request rows an arm), then
    each panel alone to show where the time goes, and `ab_test` at its own default of 50,000 rows an arm."""

    def span(name: str) -> tuple[datetime, datetime]:
        f = parse_filters({"range": name}, now).filters
        assert f.start is not None and f.end is not None
        return f.start, f.end

    m1, w1 = span("30d"), span("7d")
    busiest = usage.breakdown(engine, *m1, "deployment", order_by="requests", limit=3, hist=False)
    a, b = [v for v, _ in busiest if v][:2]
    ab = ("deployment", a, b)
    an, page_k = "Analytics", analytics_ab.AB_PAGE_ROWS // 1000
    return [
        Query(an, "load_analytics 30d (whole page)", lambda: analytics.load_analytics(engine, *m1, now), DASHBOARD_MS),
        Query(an, "load_analytics 7d (whole page)", lambda: analytics.load_analytics(engine, *w1, now), DASHBOARD_MS),
        Query(an, "load_analytics 30d + A/B (whole page)", lambda: analytics.load_analytics(engine, *m1, now, ab=ab),
              DASHBOARD_MS),
        Query(an, "traces_over_time 30d", lambda: analytics.traces_over_time(engine, *m1), DASHBOARD_MS),
        Query(an, "unique_users 30d", lambda: analytics.unique_users(engine, *m1), DASHBOARD_MS),
        Query(an, "heatmap 30d", lambda: analytics.heatmap(engine, *m1), DASHBOARD_MS),
        Query(an, "model_comparison 30d", lambda: analytics.model_comparison(engine, *m1), DASHBOARD_MS),
        Query(an, "recommendations 30d", lambda: analytics_signals.recommendations(engine, *m1), DASHBOARD_MS),
        Query(an, "anomalies 168 h (24 h windows)", lambda: analytics_signals.anomalies(engine, now), DASHBOARD_MS),
        Query(an, "forecasts (28 days)", lambda: analytics_signals.forecasts(engine, now), DASHBOARD_MS),
        Query(an, f"ab_test 30d, {page_k}k rows an arm (page)", lambda: analytics_ab.ab_test(engine, *m1,
              kind="deployment", a=a, b=b, max_rows=analytics_ab.AB_PAGE_ROWS), DASHBOARD_MS),
        Query(an, "ab_test 30d, 50k rows an arm (API)", lambda: analytics_ab.ab_test(engine, *m1, kind="deployment",
              a=a, b=b)),
    ]  # fmt: skip


def prompt_and_tier_pages(engine: Engine, now: datetime) -> list[Query]:
    """The Prompts pages (per-version figures from the `prompt` rollups and the feedback table), the tiers page
    (distribution and upgrade suggestions from the `throttle` rollups) and budget use as enforced (the Spend
    page and budget alerts), each beside the same per-version figures scanned from `requests`."""
    m1 = (now - timedelta(days=30), now)
    w1 = (now - timedelta(days=7), now)
    sums = [func.count(), func.sum(R.c.cost_usd), func.avg(R.c.latency_ms), func.sum(R.c.prompt_tokens)]
    scan = (
        select(R.c.prompt_version_id, *sums)
        .where(R.c.created_at >= m1[0], R.c.created_at < now, R.c.prompt_version_id.is_not(None))
        .group_by(R.c.prompt_version_id)
    )

    def scanned() -> object:
        with engine.connect() as conn:
            return conn.execute(scan).all()

    p, t = "Prompts", "Limit tiers"
    return [
        Query(p, "load_prompt_page 30d (whole detail page)", lambda: prompt_stats.load_prompt_page(engine, SUPPORT,
              *m1, now), DASHBOARD_MS),
        Query(p, "load_prompt_page 7d", lambda: prompt_stats.load_prompt_page(engine, SUPPORT, *w1, now), DASHBOARD_MS),
        Query(p, "load_prompt_list (calls 7d)", lambda: prompt_stats.load_prompt_list(engine, now=now), DASHBOARD_MS),
        Query(p, "per-version figures 30d scanned from requests (baseline)", scanned),
        Query(t, "load_tiers_page 7d (whole page)", lambda: tier_insights.load_tiers_page(engine, role="admin",
              start=w1[0], end=now, now=now), DASHBOARD_MS),
        Query(t, "budget_use users (Spend page, alerts)", lambda: budget_use(engine, "user", now), DASHBOARD_MS),
        Query(t, "spend_by_entity users (before tiers)", lambda: spend_by_entity(engine, "user", now)),
    ]  # fmt: skip


def raw_scans(engine: Engine, now: datetime) -> list[Query]:
    """The same headline figures the way LiteLLM-style dashboards get them: aggregates over `requests`."""
    sums = [
        func.count(),
        func.sum(case((R.c.status != "ok", 1), else_=0)),
        func.sum(R.c.prompt_tokens),
        func.sum(R.c.completion_tokens),
        func.sum(R.c.cost_usd),
        func.avg(R.c.latency_ms),
    ]

    def scan(start: datetime, by_alias: bool = False) -> Callable[[], object]:
        stmt = select(*sums).where(R.c.created_at >= start, R.c.created_at < now)
        if by_alias:
            stmt = select(R.c.alias, *sums).where(R.c.created_at >= start, R.c.created_at < now)
            stmt = stmt.group_by(R.c.alias).order_by(func.sum(R.c.cost_usd).desc())

        def run() -> object:
            with engine.connect() as conn:
                return conn.execute(stmt).all()

        return run

    def offset_page(offset: int, **match: str) -> Callable[[], object]:
        """OFFSET paging plus the total the pager shows, as LiteLLM's request log does."""
        where = and_(R.c.created_at >= now - timedelta(hours=24), R.c.created_at < now,
                     *[R.c[k] == v for k, v in match.items()])  # fmt: skip
        cols = [R.c[name] for name in logs.LIST_COLUMNS]
        page = select(*cols).where(where).order_by(R.c.created_at.desc()).limit(50).offset(offset)

        def run() -> object:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).where(where)).scalar(), conn.execute(page).all()

        return run

    def per_day_users() -> object:
        """Distinct callers per day the way a log-only dashboard counts them."""
        day = func.date(R.c.created_at)
        who = func.coalesce(R.c.end_user, func.cast(R.c.user_id, R.c.end_user.type), func.cast(R.c.key_id,
                            R.c.end_user.type))  # fmt: skip
        stmt = select(day, func.count(func.distinct(who))).where(R.c.created_at >= now - timedelta(days=DAYS),
                                                                  R.c.created_at < now).group_by(day)  # fmt: skip
        with engine.connect() as conn:
            return conn.execute(stmt).all()

    def weekday_hour() -> object:
        if engine.dialect.name == "sqlite":
            dow, hour = func.strftime("%w", R.c.created_at), func.strftime("%H", R.c.created_at)
        else:
            utc_at = func.timezone("UTC", R.c.created_at)
            dow, hour = func.extract("dow", utc_at), func.extract("hour", utc_at)
        stmt = select(dow, hour, func.count()).where(R.c.created_at >= now - timedelta(days=DAYS),
                                                     R.c.created_at < now).group_by(dow, hour)  # fmt: skip
        with engine.connect() as conn:
            return conn.execute(stmt).all()

    raw = "raw requests"
    return [
        Query(raw, "30d users per day (COUNT DISTINCT)", per_day_users, baseline="unique_users 30d"),
        Query(raw, "30d weekday x hour (GROUP BY)", weekday_hour, baseline="heatmap 30d"),
        Query(raw, "24h totals (COUNT/SUM)", scan(now - timedelta(hours=24)), baseline="totals 24h"),
        Query(raw, "7d totals (COUNT/SUM)", scan(now - timedelta(days=7)), baseline="totals 7d"),
        Query(
            raw,
            "7d by model (GROUP BY alias)",
            scan(now - timedelta(days=7), True),
            baseline="breakdown by alias 7d + percentiles",
        ),
        Query(
            raw,
            "logs model + status (COUNT + OFFSET 0)",
            offset_page(0, alias="gpt-4o", status="error"),
            baseline="model + status",
        ),
        Query(raw, "logs page 21 (COUNT + OFFSET 1000)", offset_page(1000), baseline="page 21 (after 20 cursors)"),
    ]


class Sink:
    """A file-like object that keeps only the byte count (the export's destination)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text)
        return len(text)


def export(engine: Engine, now: datetime, rows: int) -> dict[str, Any]:
    """Stream `rows` requests to CSV through iter_requests: rows/s untraced, then memory per stretch, traced."""
    f = RequestFilters(start=now - timedelta(days=DAYS), end=now)

    def write(marks: tuple[int, ...]) -> tuple[int, list[tuple[int, float, float]]]:
        sink = Sink()
        out = csv.writer(sink)
        seen: list[tuple[int, float, float]] = []
        n = 0
        for row in logs.iter_requests(engine, f, limit=rows):
            out.writerow([getattr(row, name) for name in logs.LIST_COLUMNS])
            n += 1
            if n in marks:
                current, peak = tracemalloc.get_traced_memory()
                seen.append((n, current / 2**20, peak / 2**20))
                tracemalloc.reset_peak()
        return n, seen

    t0 = time.perf_counter()
    n, _ = write(())
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    try:
        _, marks = write(tuple(m for m in EXPORT_MARKS if m <= rows))
    finally:
        tracemalloc.stop()
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds if seconds else 0.0, "marks": marks}


def _progress(label: str) -> Callable[[int, int], None]:
    began = time.perf_counter()

    def report(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - began, 1e-9)
        print(f"\r  seeding {label}: {done:,} / {total:,} ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

    return report


def seeded_sqlite(data_dir: Path, count: int, reuse: bool) -> tuple[Engine, datetime, float | None]:
    db, meta = data_dir / f"dashboard-{count}.db", data_dir / f"dashboard-{count}.json"
    url = f"sqlite:///{db}"
    if reuse and db.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("count") == count and info.get("days") == DAYS and info.get("seed") == SEED and info.get("fleet"):
            print(f"  reusing {db} (seeded {info['end']})", file=sys.stderr)
            return make_engine(url), datetime.fromisoformat(info["end"]), None
    for path in data_dir.glob(f"dashboard-{count}.*"):
        path.unlink()
    upgrade(url)
    engine = make_engine(url)
    summary = seed(engine, count=count, days=DAYS, seed=SEED, progress=_progress("SQLite"))
    print(f"\n  {summary.line()}", file=sys.stderr)
    print(f"  {seed_fleet(engine, summary.end, SEED).line()}", file=sys.stderr)
    meta.write_text(
        json.dumps({"count": count, "days": DAYS, "seed": SEED, "fleet": 1, "end": summary.end.isoformat()})
    )
    return engine, summary.end, summary.seconds


@contextlib.contextmanager
def seeded_postgres(admin_url: str, count: int) -> Iterator[tuple[Engine, datetime, float] | None]:
    """A fresh database on the server, seeded and vacuumed; dropped on the way out. None when unreachable."""
    import psycopg

    name = f"llmc_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable at {admin_url} ({str(exc).strip().splitlines()[0]}): skipping that half.")
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine: Engine | None = None
    try:
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        engine = make_engine(url)
        summary = seed(engine, count=count, days=DAYS, seed=SEED, progress=_progress("PostgreSQL"))
        print(f"\n  {summary.line()}", file=sys.stderr)
        print(f"  {seed_fleet(engine, summary.end, SEED).line()}", file=sys.stderr)
        with psycopg.connect(url, autocommit=True) as conn:  # what autovacuum does as a month of rows arrives
            conn.execute("VACUUM ANALYZE")
        yield engine, summary.end, summary.seconds
    finally:
        if engine is not None:
            engine.dispose()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def console_gc(enabled: bool) -> Iterator[None]:
    """The garbage collector as the console process runs it (`LLMC_GC_FREEZE`, on by default): without it a
    page that builds a few thousand result objects pays for full collections in its tail (P95 ~2x P50)."""
    if not enabled:
        yield
        return
    threshold = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def measure(db: str, engine: Engine, now: datetime, count: int, seed_s: float | None, args: Any) -> DbRun:
    run = DbRun(db, count, seed_s)
    with console_gc(not args.default_gc):
        wanted = {p.strip().lower() for p in args.pages.split(",")} if args.pages else None
        for q in pages(engine, now, args.repeat):
            if wanted is not None and q.page.lower() not in wanted:
                continue
            print(f"\r  {db}: {q.page} / {q.name}".ljust(80), end="", file=sys.stderr, flush=True)
            run.timings.append(Timing(q.page, q.name, db, timed(q.run, args.repeat), q.target_ms, q.baseline))
    print(f"\r  {db}: export of {args.export_rows:,} rows".ljust(80), file=sys.stderr, flush=True)
    if not args.pages:
        run.export = export(engine, now, args.export_rows)
    engine.dispose()
    return run


def render(runs: list[DbRun], repeat: int) -> list[str]:
    lines = [f"{'page':<11} {'query':<38} {'db':<10} {'P50 ms':>8} {'P95 ms':>8} {'target':>7}  result"]
    for run in runs:
        lines.append(f"-- {run.db}: {run.count:,} requests" + (f", seeded in {run.seed_s:.0f} s" if run.seed_s else ""))
        for t in run.timings:
            if t.baseline:
                continue
            target = f"<{t.target_ms:.0f}" if t.target_ms else "-"
            verdict = "-" if t.passed is None else "PASS" if t.passed else "MISS"
            lines.append(
                f"{t.page:<11} {t.name:<38} {t.db:<10} {t.p(0.5):>8.2f} {t.p(0.95):>8.2f} {target:>7}  {verdict}"
            )
    pairs = [(run.db, t, {x.name: x for x in run.timings}[t.baseline]) for run in runs for t in run.timings
             if t.baseline in {x.name for x in run.timings if not x.baseline}]  # fmt: skip
    if pairs:
        lines += ["", f"Baseline, same run ({repeat} runs each): rollups and keyset pages vs. scans of `requests`"]
        lines.append(f"{'figure':<38} {'db':<10} {'ours P50':>9} {'raw P50':>9} {'raw P95':>9} {'speed-up':>9}")
    for db, t, mine in pairs:
        lines.append(
            f"{t.name:<38} {db:<10} {mine.p(0.5):>9.2f} {t.p(0.5):>9.2f} {t.p(0.95):>9.2f} "
            f"{t.p(0.5) / mine.p(0.5):>8.0f}x"
        )
    exported = [run for run in runs if run.export]
    if exported:
        lines += ["", "Export: iter_requests -> csv.writer -> a null sink (memory traced in a second pass)"]
    for run in exported:
        e = run.export
        marks = ", ".join(f"{n // 1000}k rows: peak {p:.1f} MiB (now {c:.1f})" for n, c, p in e["marks"])
        lines.append(
            f"{run.db:<10} {e['rows']:,} rows in {e['seconds']:.2f} s = {e['rows_per_s']:,.0f} rows/s; {marks}"
        )
    judged = [t for run in runs for t in run.timings if t.passed is not None]
    misses = [f"{t.db} {t.page} / {t.name} (P95 {t.p(0.95):.1f} ms)" for t in judged if not t.passed]
    lines += ["", f"Targets: {len(judged) - len(misses)} passed, {len(misses)} missed of {len(judged)}."]
    lines += [f"  MISS {m}" for m in misses]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="requests to seed (default 1,000,000)")
    parser.add_argument("--postgres-count", type=int, help="requests to seed on PostgreSQL (default: --count)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query, after one warm-up (20)")
    parser.add_argument("--data-dir", type=Path, help="where the SQLite file lives (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="reuse a SQLite file seeded earlier in --data-dir")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--pages", help="time only these pages, comma-separated (e.g. Fleet,Costs); no export")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument(
        "--default-gc", action="store_true", help="time with Python's default GC, not the console's (LLMC_GC_FREEZE)"
    )
    args = parser.parse_args()
    if args.count < 1000 or args.repeat < 1 or args.export_rows < 1:
        parser.error("--count must be at least 1000, --repeat and --export-rows at least 1")
    runs: list[DbRun] = []
    load_before = os.getloadavg()[0]
    if not args.no_sqlite:
        temp = args.data_dir is None
        data_dir = Path(tempfile.mkdtemp(prefix="llmc-dash-")) if temp else args.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            engine, now, seeded = seeded_sqlite(data_dir, args.count, args.reuse)
            runs.append(measure("sqlite", engine, now, args.count, seeded, args))
        finally:
            if temp:
                shutil.rmtree(data_dir, ignore_errors=True)
    if not args.no_postgres:
        pg_count = args.postgres_count or args.count
        with seeded_postgres(args.postgres_url, pg_count) as pg:
            if pg is not None:
                runs.append(measure("postgresql", pg[0], pg[1], pg_count, pg[2], args))
    print(f"\nDashboard queries: {args.repeat} runs each after one warm-up; {os.cpu_count()} CPUs, load average "
          f"{load_before:.2f} before and {os.getloadavg()[0]:.2f} after; {DAYS} days of traffic ending at the "
          "seed time, queried as of that time; garbage collector "
          f"{'as Python defaults it' if args.default_gc else 'tuned as in the console (LLMC_GC_FREEZE)'}.")  # fmt: skip
    print("\n".join(render(runs, args.repeat)))
    if args.json:
        args.json.write_text(json.dumps([{"db": r.db, "count": r.count, "seed_s": r.seed_s, "export": r.export,
            "timings": [t.__dict__ for t in r.timings]} for r in runs], default=str, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
