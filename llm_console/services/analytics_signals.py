"""The Analytics page's signals: unusual hours (anomalies), where traffic and spend are heading (forecasts),
and what to change (recommendations), each with the method and figures behind it so the page can show them.

Anomalies and forecasts read hour and day rollups of all traffic, looking back from now whatever the range;
recommendations read the range's totals per endpoint, model and deployment and its feedback. Statistics
(robust z, the forecast line, Wilson intervals) live in `analytics_stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.names import Directory
from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import truncate
from llm_console.presenters.common import count, money
from llm_console.services import analytics_reads as reads
from llm_console.services.analytics_stats import OUTLIER_Z, linear_forecast, robust_z, wilson
from llm_console.services.analytics_types import Anomaly, AnomalyReport, Forecast, ForecastPoint, Recommendation

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


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} ms"


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


def _liked_less(cheap: reads.Score, dear: reads.Score, scale: float) -> bool:
    """Whether the cheaper model's mean score is lower by more than 5 % of the score's observed range; only
    judged when both were scored at least CHEAP_SCORES times (fewer prove nothing either way)."""
    if min(cheap.k, dear.k) < CHEAP_SCORES or cheap.mean is None or dear.mean is None:
        return False
    return cheap.mean < dear.mean - CHEAP_SCORE * scale


def _cheaper(endpoint: str, models: Sequence[tuple[str, Totals]], fb: reads.Feedback) -> list[Recommendation]:
    """For each model of one endpoint, the cheapest other model there that is about as fast, as reliable and
    (when both were scored enough) as well liked, and at least 20 % cheaper per 1k tokens."""
    name = fb.main_name()
    low, high = fb.bounds.get(name or "", (0.0, 0.0))
    usable = [(m, t) for m, t in models if t.requests >= CHEAP_CALLS and t.tokens > 0 and t.cost_usd > 0]
    out = []
    for dear, d in usable:
        d_rate, d_p95 = d.cost_usd * 1000 / d.tokens, d.latency_p(0.95)
        d_score = fb.scores.get((dear, name or ""), reads.Score())
        best: tuple[float, str, Totals, reads.Score] | None = None
        for cheap, c in usable:
            c_rate, c_score = c.cost_usd * 1000 / c.tokens, fb.scores.get((cheap, name or ""), reads.Score())
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
    candidates += [("deployment", reads.deployment_label(directory, int(v)), t) for v, t in by_dep if v.isdigit()]
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
        share = reads.ratio(t.cached_tokens, t.prompt_tokens)
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


def recommend(
    by_endpoint: Sequence[tuple[str, Totals]],
    by_dep: Sequence[tuple[str, Totals]],
    fb: reads.Feedback,
    directory: Directory,
) -> list[Recommendation]:
    """`recommendations` from totals, feedback and names already read (`load_analytics` reads each once)."""
    per_endpoint, by_alias = reads.split_endpoint(by_endpoint)
    overall = sum((t for _, t in by_alias), Totals())
    cheaper = [r for endpoint, models in sorted(per_endpoint.items()) for r in _cheaper(endpoint, models, fb)]
    cheaper.sort(key=lambda r: -(r.saving_usd or 0))
    hot = sorted(_hotspots(by_alias, by_dep, overall, directory), key=lambda x: -x[0])
    cache = sorted(_caching(by_alias), key=lambda x: -x[0])
    return cheaper + [r for _, r in hot] + [r for _, r in cache]


def recommendations(engine: Engine, start: datetime, end: datetime) -> list[Recommendation]:
    """Suggestions with the figures behind them, those with a dollar saving first (largest first), then error
    hotspots (most errors first), then prompt caching (most prompt tokens first)."""
    return recommend(
        reads.by_endpoint(engine, start, end),
        reads.by_deployment(engine, start, end),
        reads.read_feedback(engine, start, end),
        reads.page_directory(engine),
    )
