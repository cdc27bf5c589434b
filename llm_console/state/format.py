"""Turns service results into the plain, display-ready values the pages bind to."""

from __future__ import annotations

from dataclasses import dataclass

from llm_console.services.usage import OverviewData


@dataclass(frozen=True, slots=True)
class OverviewView:
    cards: list[dict[str, str]]
    chart: list[dict[str, int | str]]
    latest: list[dict[str, str]]
    as_of: str


def money(value: float) -> str:
    if value == 0:
        return "$0.00"
    if value < 0.01:
        return f"${value:.6f}"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,}"


def ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def overview_view(data: OverviewData) -> OverviewView:
    s = data.summary
    cards = [
        {"label": "Requests (24 h)", "value": count(s.requests), "hint": f"{s.errors:,} errors"},
        {
            "label": "Tokens (24 h)",
            "value": count(s.prompt_tokens + s.completion_tokens),
            "hint": f"{count(s.prompt_tokens)} in / {count(s.completion_tokens)} out",
        },
        {
            "label": "Cost (24 h)",
            "value": money(s.cost_usd),
            "hint": f"{money(s.cost_usd / s.requests) if s.requests else '$0.00'} per request",
        },
        {"label": "Error rate", "value": f"{s.error_rate * 100:.1f}%", "hint": "of all requests"},
        {"label": "Avg latency", "value": ms(s.avg_latency_ms), "hint": "end to end"},
        {"label": "P95 latency", "value": ms(s.p95_latency_ms), "hint": "from histogram buckets"},
    ]
    chart: list[dict[str, int | str]] = [
        {"minute": p.minute.strftime("%H:%M"), "ok": p.requests - p.errors, "errors": p.errors} for p in data.per_minute
    ]
    latest = [
        {
            "id": r.id,
            "time": r.created_at.strftime("%H:%M:%S"),
            "model": r.alias or "—",
            "status": r.status,
            "code": str(r.status_code),
            "tokens": f"{r.tokens:,}",
            "cost": money(r.cost_usd),
            "latency": ms(r.latency_ms),
            "mode": "stream" if r.stream else "single",
        }
        for r in data.latest
    ]
    return OverviewView(cards, chart, latest, data.as_of.strftime("%H:%M:%S UTC"))
