"""Usage & performance page values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from llm_console.db.rollups import LATENCY_BOUNDS_MS
from llm_console.presenters.common import count, money, ms, request_rows
from llm_console.services.performance import UsageData

LABEL_FORMAT = {"m": "%H:%M", "h": "%m-%d %H:00", "d": "%Y-%m-%d"}


def bucket_label(at: datetime, grain: str) -> str:
    return at.strftime(LABEL_FORMAT[grain])


def histogram_labels() -> list[str]:
    labels: list[str] = []
    lower = 0.0
    for bound in LATENCY_BOUNDS_MS:
        labels.append(f"{lower:g}-{bound:g} ms" if bound < 1000 else f"{lower / 1000:g}-{bound / 1000:g} s")
        lower = bound
    labels.append(f"> {LATENCY_BOUNDS_MS[-1] / 1000:g} s")
    return labels


@dataclass(slots=True)
class UsageView:
    cards: list[dict[str, str]] = field(default_factory=list)
    requests_chart: list[dict[str, int | str]] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    model_chart: list[dict[str, int | str]] = field(default_factory=list)
    tokens_chart: list[dict[str, int | str]] = field(default_factory=list)
    latency_chart: list[dict[str, float | str]] = field(default_factory=list)
    histogram: list[dict[str, int | str]] = field(default_factory=list)
    by_model: list[dict[str, str]] = field(default_factory=list)
    stream_split: list[dict[str, str]] = field(default_factory=list)
    slow: list[dict[str, str]] = field(default_factory=list)
    as_of: str = ""


def usage_view(data: UsageData, slots: int) -> UsageView:
    t, g = data.totals, data.grain
    cards = [
        {"label": "Requests", "value": count(t.requests), "hint": f"{t.errors:,} errors"},
        {
            "label": "Success rate",
            "value": f"{(1 - t.error_rate) * 100:.1f}%",
            "hint": f"{t.error_rate * 100:.1f}% errors",
        },
        {
            "label": "Tokens in / out",
            "value": f"{count(t.prompt_tokens)} / {count(t.completion_tokens)}",
            "hint": f"{count(t.cached_tokens)} cached",
        },
        {"label": "Cost estimate", "value": money(t.cost_usd), "hint": f"{money(t.cost_per_request)} per request"},
        {
            "label": "Latency P50 / P99",
            "value": f"{ms(t.latency_p(0.5))} / {ms(t.latency_p(0.99))}",
            "hint": f"P90 {ms(t.latency_p(0.9))}",
        },
        {
            "label": "TTFB P50 / P99",
            "value": f"{ms(t.ttfb_p(0.5))} / {ms(t.ttfb_p(0.99))}",
            "hint": f"{t.ttfb_count:,} streamed answers",
        },
    ]
    requests_chart: list[dict[str, int | str]] = []
    tokens_chart: list[dict[str, int | str]] = []
    latency_chart: list[dict[str, float | str]] = []
    for b in data.series:
        label = bucket_label(b.start, g)
        bt = b.totals
        requests_chart.append({"t": label, "ok": bt.requests - bt.errors, "errors": bt.errors})
        tokens_chart.append({"t": label, "input": bt.prompt_tokens, "output": bt.completion_tokens})
        latency_chart.append(
            {
                "t": label,
                "p50": round(bt.latency_p(0.5), 1),
                "p90": round(bt.latency_p(0.9), 1),
                "p99": round(bt.latency_p(0.99), 1),
            }
        )
    names = [*data.model_names, "other"][:slots]
    names += [""] * (slots - len(names))
    model_chart: list[dict[str, int | str]] = []
    for at, values in data.model_series:
        row: dict[str, int | str] = {"t": bucket_label(at, g)}
        for i in range(slots):
            row[f"s{i}"] = values[i] if i < len(values) else 0
        model_chart.append(row)
    histogram: list[dict[str, int | str]] = [
        {"bucket": label, "requests": n} for label, n in zip(histogram_labels(), t.lat_hist, strict=True)
    ]
    while histogram and histogram[-1]["requests"] == 0 and len(histogram) > 8:
        histogram.pop()
    by_model = [
        {
            "model": v or "(none)",
            "requests": f"{m.requests:,}",
            "errors": f"{m.error_rate * 100:.1f}%",
            "tokens": f"{count(m.prompt_tokens)} / {count(m.completion_tokens)}",
            "cost": money(m.cost_usd),
            "p50": ms(m.latency_p(0.5)),
            "p90": ms(m.latency_p(0.9)),
            "p99": ms(m.latency_p(0.99)),
            "ttfb50": ms(m.ttfb_p(0.5)) if m.ttfb_count else "—",
            "ttfb99": ms(m.ttfb_p(0.99)) if m.ttfb_count else "—",
        }
        for v, m in data.by_model
    ]
    stream_split = [
        {
            "mode": "Streaming" if v == "1" else "Non-streaming",
            "requests": f"{s.requests:,}",
            "share": f"{s.requests / t.requests * 100:.1f}%" if t.requests else "0%",
            "p50": ms(s.latency_p(0.5)),
            "errors": f"{s.error_rate * 100:.1f}%",
        }
        for v, s in data.stream_split
    ]
    return UsageView(
        cards=cards,
        requests_chart=requests_chart,
        model_names=names,
        model_chart=model_chart,
        tokens_chart=tokens_chart,
        latency_chart=latency_chart,
        histogram=histogram,
        by_model=by_model,
        stream_split=stream_split,
        slow=request_rows(data.slow, data.directory),
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )
