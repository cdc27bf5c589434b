"""Analytics page values: its URL filters parsed and written back, and every figure of `AnalyticsData` as the
text, chart rows and table rows the page shows.

The page's filters are its own (a 90-day range, a tag instead of a model, the two arms of an A/B split), so
they are parsed here instead of `services.filters`; like every dashboard, the URL is the state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from llm_console.db.queries.filters import RequestFilters, utc
from llm_console.db.rollups import truncate
from llm_console.presenters.common import count, money, ms
from llm_console.services.analytics import AnalyticsData
from llm_console.services.analytics_types import ABResult, Arm, TracePoint
from llm_console.services.filters import ParsedFilters, Problem

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DEFAULT_RANGE = "7d"
PARAMS = ("range", "model", "tag", "ab_kind", "a", "b")  # in the order links are written
AB_KINDS = ("deployment", "alias")
MAX_TEXT, MAX_TAG = 300, 50
BOTH_FILTERS = "Filter by a model or by a tag, not both: showing the model."
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_CHART_POINTS = 400
SCORE_SLOTS = 5  # score names drawn over time; the table lists every one
HEAT_LEVELS = 7  # shades 2..8 of the accent scale: each keeps the cell's text (shade 12) readable


def parse_analytics(raw: Mapping[str, str], now: datetime) -> ParsedFilters:
    """The page's URL parameters, checked; what cannot be used is dropped with a sentence saying why."""
    errors: list[Problem] = []
    p = {k: str(v).strip() for k, v in raw.items() if k in PARAMS and str(v).strip()}
    for name in [k for k, v in p.items() if not v.isprintable()]:
        errors.append(Problem.ignored(name, "it contains control characters."))
        del p[name]
    range_name = p.get("range", DEFAULT_RANGE)
    if range_name not in RANGES:
        errors.append(Problem(f"Unknown range {range_name[:20]!r}: use one of {', '.join(RANGES)}.", "range"))
        range_name = DEFAULT_RANGE
    accepted = {"range": range_name}
    model, tag = p.get("model", "")[:MAX_TEXT], p.get("tag", "")
    if len(tag) > MAX_TAG:
        errors.append(Problem.ignored("tag", f"a tag has at most {MAX_TAG} characters."))
        tag = ""
    if model and tag:
        errors.append(Problem(BOTH_FILTERS, "tag"))
        tag = ""
    accepted.update({k: v for k, v in (("model", model), ("tag", tag)) if v})
    kind = p.get("ab_kind", "")
    if kind and kind not in AB_KINDS:
        errors.append(Problem(f"Unknown comparison {kind[:20]!r}: compare deployments or models.", "ab_kind"))
        kind = ""
    for arm in ("a", "b"):
        if arm in p and not kind:
            errors.append(Problem.ignored(arm, "choose what to compare (deployments or models) first."))
        elif arm in p:
            accepted[arm] = p[arm][:MAX_TEXT]
    if kind:
        accepted["ab_kind"] = kind
    now = utc(now)
    filters = RequestFilters(start=now - RANGES[range_name], end=now, alias=model or None)
    return ParsedFilters(filters, range_name, "h", errors, accepted)


def query_string(params: Mapping[str, str], **changes: str | None) -> str:
    """`params` as a URL query with `changes` applied; a model and a tag exclude each other, a new kind of
    comparison forgets the arms chosen for the old one."""
    merged = dict(params)
    if changes.get("model"):
        changes["tag"] = None
    if changes.get("tag"):
        changes["model"] = None
    if "ab_kind" in changes:
        changes.update(a=None, b=None)
    for name, value in changes.items():
        if value:
            merged[name] = value
        else:
            merged.pop(name, None)
    return urlencode([(k, merged[k]) for k in PARAMS if k in merged])


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def interval(low: float | None, high: float | None, fmt: Callable[[float], str]) -> str:
    return "—" if low is None or high is None else f"{fmt(low)} to {fmt(high)}"


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def signed(value: float, fmt: Callable[[float], str]) -> str:
    return ("-" if value < 0 else "+") + fmt(abs(value))


METRICS: dict[str, tuple[str, Callable[[float], str]]] = {
    "error_rate": ("Error rate", lambda v: pct(v, 2)),
    "latency_ms": ("Mean latency", ms),
    "cost_per_request": ("Cost per request", money),
    "score": ("Feedback score", lambda v: f"{v:.2f}"),
    "spend": ("Spend per hour", money),
    "latency": ("Latency", ms),
    "requests": ("Requests", lambda v: count(round(v))),
    "tokens": ("Tokens", lambda v: count(round(v))),
    "cost_usd": ("Cost", money),
}


def _formatter(metric: str) -> Callable[[float], str]:
    return METRICS[metric][1] if metric in METRICS else number


def _fmt(metric: str, value: float | None) -> str:
    return "—" if value is None else _formatter(metric)(value)


def _label(metric: str) -> str:
    return METRICS.get(metric, (metric.replace("_", " ").capitalize(), str))[0]


def traces_chart(points: list[TracePoint]) -> list[dict[str, Any]]:
    """OK and failed calls per bucket; a range with more than MAX_CHART_POINTS buckets is drawn a grain
    coarser (minutes as hours, hours as days), since a chart cannot show more than that legibly."""
    step = points[1].bucket - points[0].bucket if len(points) > 1 else timedelta(days=1)
    grain = "m" if step < timedelta(hours=1) else "h" if step < timedelta(days=1) else "d"
    if len(points) > MAX_CHART_POINTS and grain != "d":
        grain = "h" if grain == "m" else "d"
    merged: dict[datetime, dict[str, Any]] = {}
    fmt = {"m": "%H:%M", "h": "%m-%d %H:00", "d": "%Y-%m-%d"}[grain]
    for p in points:
        at = truncate(p.bucket, grain)
        row = merged.setdefault(at, {"t": at.strftime(fmt), "ok": 0, "errors": 0, "tokens": 0, "cost_usd": 0.0})
        row["ok"] += p.requests - p.errors
        row["errors"] += p.errors
        row["tokens"] += p.tokens
        row["cost_usd"] = round(row["cost_usd"] + p.cost_usd, 6)
    return list(merged.values())


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def heatmap_rows(cells: list[list[int]], peak: int) -> list[list[dict[str, str]]]:
    """Seven rows of 24 cells: the count, a sentence for a tooltip, and a shade growing with the count."""
    out: list[list[dict[str, str]]] = []
    for day, row in zip(WEEKDAYS, cells, strict=True):
        out.append([])
        for hour, n in enumerate(row):
            shade = 0 if n <= 0 or peak <= 0 else 1 + math.ceil(HEAT_LEVELS * n / peak)
            out[-1].append(
                {
                    "n": count(n),
                    "requests": str(n),
                    "hour": str(hour),
                    "title": f"{day} {hour:02d}:00 UTC: {plural(n, 'request')}",
                    "bg": f"var(--accent-{shade})" if shade else "transparent",
                }
            )
    return out


def heatmap_peak(data: AnalyticsData) -> str:
    h = data.heatmap
    if h.peak_weekday is None or h.peak_hour is None or h.total <= 0:
        return "No traffic in range."
    share = h.peak_requests / h.total * 100
    return (
        f"Busiest hour: {WEEKDAYS[h.peak_weekday]}s {h.peak_hour:02d}:00 to {(h.peak_hour + 1) % 24:02d}:00 UTC, "
        f"{plural(h.peak_requests, 'request')} ({share:.1f}% of {h.total:,} in range)."
    )


def arm_rows(a: Arm, b: Arm) -> list[dict[str, str]]:
    def both(label: str, get: Callable[[Arm], str]) -> dict[str, str]:
        return {"metric": label, "a": get(a), "b": get(b)}

    return [
        both("Calls", lambda x: f"{x.n:,}"),
        both("Errors", lambda x: f"{x.errors:,}"),
        both("Error rate (95% CI)", lambda x: _with_ci(pct(x.error_rate, 2), x.error_ci, lambda v: pct(v, 2))),
        both("Mean latency (95% CI)", lambda x: _with_ci(_fmt("latency_ms", x.mean_latency_ms), x.latency_ci, ms)),
        both("P95 latency", lambda x: _fmt("latency_ms", x.p95_latency_ms)),
        both("Cost per request (95% CI)", lambda x: _with_ci(_fmt("cost_usd", x.cost_per_request), x.cost_ci, money)),
        both("Feedback score (95% CI)", lambda x: _with_ci(_fmt("score", x.score_mean), x.score_ci, "{:.2f}".format)),
        both("Scores given", lambda x: f"{x.score_n:,}"),
    ]


def _with_ci(value: str, ci: tuple[float, float] | None, fmt: Callable[[float], str]) -> str:
    return value if ci is None else f"{value} ({interval(ci[0], ci[1], fmt)})"


def ab_differences(ab: ABResult) -> list[dict[str, str]]:
    rows = []
    for d in ab.differences:
        fmt = _formatter(d.metric)
        rows.append(
            {
                "metric": _label(d.metric),
                "a": _fmt(d.metric, d.a),
                "b": _fmt(d.metric, d.b),
                "diff": "—" if d.diff is None else signed(d.diff, fmt),
                "interval": interval(d.ci_low, d.ci_high, partial(signed, fmt=fmt)),
                "verdict": "significant" if d.significant else "not significant",
            }
        )
    return rows


@dataclass(slots=True)
class AnalyticsView:
    """The page's values, all text or chart rows; `tables` is keyed by TABLES, `texts` holds single sentences."""

    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    traces_chart: list[dict[str, Any]] = field(default_factory=list)
    traces_cards: list[dict[str, str]] = field(default_factory=list)
    users_chart: list[dict[str, Any]] = field(default_factory=list)
    users_cards: list[dict[str, str]] = field(default_factory=list)
    heat_cells: list[list[dict[str, str]]] = field(default_factory=list)
    heatmap_peak: str = ""
    score_chart: list[dict[str, Any]] = field(default_factory=list)
    score_names: list[str] = field(default_factory=list)
    forecast_cards: list[dict[str, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    ab_options: list[dict[str, str]] = field(default_factory=list)
    model_options: list[dict[str, str]] = field(default_factory=list)
    tag_options: list[dict[str, str]] = field(default_factory=list)
    recommendation_figures: list[list[dict[str, str]]] = field(default_factory=list)


def analytics_view(data: AnalyticsData, params: Mapping[str, str]) -> AnalyticsView:
    """Every panel of `data` formatted; `params` (the accepted filters) says which A/B choices to offer."""
    v = AnalyticsView()
    v.traces_chart = traces_chart(data.traces)
    requests, errors = sum(p.requests for p in data.traces), sum(p.errors for p in data.traces)
    v.traces_cards = [
        {
            "label": "Requests",
            "value": f"{requests:,}",
            "hint": f"{plural(errors, 'error')} ({pct(_ratio(errors, requests))})",
        },
        {"label": "Tokens", "value": f"{sum(p.tokens for p in data.traces):,}", "hint": "prompt and completion"},
        {"label": "Cost", "value": money(sum(p.cost_usd for p in data.traces)), "hint": "estimate"},
    ]
    v.users_chart = [{"t": u.day.isoformat(), "users": u.users, "end_users": u.end_users} for u in data.users]
    today = next((u for u in data.users if u.day == data.as_of.date()), None)
    peak = max(data.users, key=lambda u: u.users, default=None)
    v.users_cards = [
        {"label": "Unique users today", "value": f"{today.users if today else 0:,}",
         "hint": f"{today.end_users if today else 0:,} named by the caller"},
        {"label": "Busiest day", "value": f"{peak.users:,}" if peak else "0",
         "hint": peak.day.isoformat() if peak else "no traffic"},
        {"label": "Average per day", "value": number(sum(u.users for u in data.users) / len(data.users), 1)
         if data.users else "0", "hint": f"over {len(data.users)} days"},
    ]  # fmt: skip
    v.heat_cells, v.heatmap_peak = heatmap_rows(data.heatmap.cells, data.heatmap.peak_requests), heatmap_peak(data)
    v.tables["heatmap"] = [
        {"weekday": day, **{f"{h:02d}": str(n) for h, n in enumerate(row)}}
        for day, row in zip(WEEKDAYS, data.heatmap.cells, strict=True)
    ]
    v.tables["economics"] = [
        {"model": e.alias, "requests": f"{e.requests:,}", "prompt_tokens": f"{e.prompt_tokens:,}",
         "completion_tokens": f"{e.completion_tokens:,}", "cached_tokens": f"{e.cached_tokens:,}",
         "cached_share": pct(e.cached_share), "cost": money(e.cost_usd),
         "cost_per_request": _fmt("cost_usd", e.cost_per_request),
         "cost_per_1k_tokens": _fmt("cost_usd", e.cost_per_1k_tokens),
         "tokens_per_request": number(e.tokens_per_request, 1)}
        for e in data.economics
    ]  # fmt: skip
    v.tables["errors"] = [
        {"model": e.alias, "requests": f"{e.requests:,}", "errors": f"{e.errors:,}", "error_rate": pct(e.error_rate, 2),
         "interval": interval(e.ci_low, e.ci_high, lambda x: pct(x, 2))}
        for e in data.errors
    ]  # fmt: skip
    fb = data.feedback
    v.tables["feedback"] = [
        {"model": s.alias, "name": s.name, "n": f"{s.n:,}", "mean": number(s.mean),
         "interval": interval(s.ci_low, s.ci_high, "{:.2f}".format),
         "categories": " · ".join(f"{c} {n:,}" for c, n in sorted(s.categories.items())) or "—"}
        for s in fb.by_model
    ]  # fmt: skip
    numeric = sorted({sp.name for sp in fb.over_time if sp.mean is not None})  # categories have no mean to draw
    v.score_names = (numeric[:SCORE_SLOTS] + [""] * SCORE_SLOTS)[:SCORE_SLOTS]
    by_day: dict[str, dict[str, Any]] = {}
    for sp in fb.over_time:
        if sp.name in v.score_names and sp.mean is not None:
            by_day.setdefault(sp.day.isoformat(), {})[f"s{v.score_names.index(sp.name)}"] = round(sp.mean, 3)
    v.score_chart = [{"t": day, **values} for day, values in sorted(by_day.items())]
    v.tables["feedback_over_time"] = [
        {"day": sp.day.isoformat(), "name": sp.name, "n": str(sp.n), "mean": number(sp.mean, 3)} for sp in fb.over_time
    ]
    v.tables["comparison"] = [
        {"model": m.alias, "requests": f"{m.requests:,}", "p50": _fmt("latency", m.p50_ms),
         "p95": _fmt("latency", m.p95_ms), "mean": _fmt("latency", m.mean_ms),
         "tokens_per_s": number(m.output_tokens_per_s, 1), "cost_per_request": _fmt("cost_usd", m.cost_per_request),
         "error_rate": pct(m.error_rate, 2),
         "score": f"{m.score_name} {number(m.score_mean)} (n={m.score_n:,})" if m.score_name else "—"}
        for m in data.comparison
    ]  # fmt: skip
    _ab_view(v, data, params)
    an = data.anomalies
    v.tables["anomalies"] = [
        {"metric": _label(a.metric), "hour": a.at.strftime("%Y-%m-%d %H:00 UTC"), "value": _fmt(a.metric, a.value),
         "median": _fmt(a.metric, a.median), "z": f"{a.z:+.1f}", "direction": a.direction}
        for a in an.anomalies
    ]  # fmt: skip
    v.texts["anomaly_method"] = an.method
    v.texts["anomaly_summary"] = f"{len(an.anomalies)} flagged of {an.hours_checked:,} hours checked."
    _forecast_view(v, data)
    v.tables["recommendations"] = [
        {"kind": r.kind, "title": r.title, "detail": r.detail,
         "saving": f"saves about {money(r.saving_usd)}" if r.saving_usd else ""}
        for r in data.recommendations
    ]  # fmt: skip
    v.recommendation_figures = [[{"label": k, "value": x} for k, x in r.figures.items()] for r in data.recommendations]
    v.model_options = [{"value": a, "label": label} for a, label in data.ab_aliases]
    v.tag_options = [{"value": t, "label": f"{t} ({n:,})"} for t, n in data.tags]
    v.texts["as_of"] = data.as_of.strftime("%H:%M:%S UTC")
    return v


def _ab_view(v: AnalyticsView, data: AnalyticsData, params: Mapping[str, str]) -> None:
    kind = params.get("ab_kind", "")
    choices = data.ab_deployments if kind == "deployment" else data.ab_aliases if kind == "alias" else []
    v.ab_options = [{"value": value, "label": label} for value, label in choices]
    ab = data.ab
    v.tables["ab_arms"] = arm_rows(ab.a, ab.b) if ab else []
    v.tables["ab_differences"] = ab_differences(ab) if ab else []
    v.texts.update(
        ab_a=ab.a.label if ab else "",
        ab_b=ab.b.label if ab else "",
        ab_method=ab.method if ab else "",
        ab_sampled="Counts, error rates, means and P95 cover every call in the range; the spread of latency and "
        "cost is estimated from each busy arm's newest calls (see the method below)."
        if ab and ab.sampled
        else "",
        ab_error=data.ab_error,
        ab_hint="" if ab or data.ab_error or not kind else "Choose arm A and arm B to compare them.",
    )


def _forecast_view(v: AnalyticsView, data: AnalyticsData) -> None:
    days: dict[str, dict[str, str]] = {}
    for f in data.forecasts:
        v.forecast_cards.append(
            {"label": f"{_label(f.metric)}, next 7 days", "value": _fmt(f.metric, f.next_7_days_total),
             "hint": f"trend {signed(f.slope_per_day, money if f.metric == 'cost_usd' else number)} a day"}
        )  # fmt: skip
        for p in f.points:
            row = days.setdefault(p.day.isoformat(), {"day": p.day.isoformat()})
            row[f.metric] = _fmt(f.metric, p.value)
            row[f"{f.metric}_interval"] = interval(p.low, p.high, _formatter(f.metric))
    v.tables["forecast"] = [days[d] for d in sorted(days)]
    v.texts["forecast_method"] = data.forecasts[0].method if data.forecasts else ""


# The keys of `AnalyticsView.tables`: each is a state var of the same name and an export.
TABLES: tuple[str, ...] = ("economics", "heatmap", "errors", "feedback", "feedback_over_time", "comparison")
TABLES += ("ab_arms", "ab_differences", "anomalies", "forecast", "recommendations")
