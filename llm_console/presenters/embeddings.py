"""Embeddings page values."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_console.presenters.common import count, money, ms, request_rows
from llm_console.presenters.usage import bucket_label
from llm_console.services.embeddings import EmbeddingsData


@dataclass(slots=True)
class EmbeddingsView:
    cards: list[dict[str, str]] = field(default_factory=list)
    requests_chart: list[dict[str, int | str]] = field(default_factory=list)
    dims_chart: list[dict[str, int | str]] = field(default_factory=list)
    by_model: list[dict[str, str]] = field(default_factory=list)
    latest: list[dict[str, str]] = field(default_factory=list)
    as_of: str = ""


def embeddings_view(data: EmbeddingsData) -> EmbeddingsView:
    t = data.totals
    per_request = t.prompt_tokens / t.requests if t.requests else 0.0
    cards = [
        {"label": "Requests", "value": count(t.requests), "hint": f"{t.errors:,} errors"},
        {"label": "Tokens", "value": count(t.prompt_tokens), "hint": f"{per_request:,.0f} per request"},
        {"label": "Cost", "value": money(t.cost_usd), "hint": f"{money(t.cost_per_request)} per request"},
        {
            "label": "Latency P50 / P99",
            "value": f"{ms(t.latency_p(0.5))} / {ms(t.latency_p(0.99))}",
            "hint": f"{t.error_rate * 100:.1f}% errors",
        },
    ]
    by_model = [
        {
            "model": alias or "(none)",
            "requests": f"{m.requests:,}",
            "share": f"{m.requests / t.requests * 100:.1f}%" if t.requests else "0%",
            "tokens": count(m.prompt_tokens),
            "cost": money(m.cost_usd),
            "p50": ms(m.latency_p(0.5)),
            "errors": f"{m.error_rate * 100:.1f}%",
        }
        for alias, m in data.by_model
    ]
    return EmbeddingsView(
        cards=cards,
        requests_chart=[
            {
                "t": bucket_label(b.start, data.grain),
                "ok": b.totals.requests - b.totals.errors,
                "errors": b.totals.errors,
            }
            for b in data.series
        ],
        dims_chart=[{"dims": str(size), "requests": d.requests} for size, d in data.dims],
        by_model=by_model,
        latest=request_rows(data.latest, data.directory),
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )
