"""Overview page values."""

from __future__ import annotations

from dataclasses import dataclass

from llm_console.db.queries.usage import Totals
from llm_console.presenters.common import count, money, ms, request_rows
from llm_console.services.usage import Named, OverviewData


@dataclass(frozen=True, slots=True)
class OverviewView:
    cards: list[dict[str, str]]
    week_cards: list[dict[str, str]]
    chart: list[dict[str, int | str]]
    latest: list[dict[str, str]]
    providers: list[dict[str, str]]
    top_users: list[dict[str, str]]
    top_keys: list[dict[str, str]]
    as_of: str


def _cards(label: str, t: Totals) -> list[dict[str, str]]:
    return [
        {"label": f"Requests ({label})", "value": count(t.requests), "hint": f"{t.errors:,} errors"},
        {
            "label": f"Tokens ({label})",
            "value": count(t.tokens),
            "hint": f"{count(t.prompt_tokens)} in / {count(t.completion_tokens)} out",
        },
        {"label": f"Cost ({label})", "value": money(t.cost_usd), "hint": "priced per model"},
        {"label": f"Error rate ({label})", "value": f"{t.error_rate * 100:.1f}%", "hint": "of all requests"},
        {"label": f"Cost per request ({label})", "value": money(t.cost_per_request), "hint": "average"},
        {"label": f"P95 latency ({label})", "value": ms(t.latency_p(0.95)), "hint": "from histogram buckets"},
    ]


def named_rows(rows: list[Named]) -> list[dict[str, str]]:
    return [
        {
            "label": n.label,
            "requests": f"{n.totals.requests:,}",
            "cost": money(n.totals.cost_usd),
            "tokens": count(n.totals.tokens),
        }
        for n in rows
    ]


def overview_view(data: OverviewData) -> OverviewView:
    cards = _cards("24 h", data.day)
    week = _cards("7 d", data.week)
    chart: list[dict[str, int | str]] = [
        {"minute": p.minute.strftime("%H:%M"), "ok": p.requests - p.errors, "errors": p.errors} for p in data.per_minute
    ]
    return OverviewView(
        cards=cards,
        week_cards=week,
        chart=chart,
        latest=request_rows(data.latest, data.directory),
        providers=named_rows(data.providers),
        top_users=named_rows(data.top_users),
        top_keys=named_rows(data.top_keys),
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )
