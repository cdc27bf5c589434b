"""Number formats and table rows shared by every page."""

from __future__ import annotations

from llm_console.db.queries.logs import RequestRow
from llm_console.db.queries.names import Directory


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


def request_rows(rows: list[RequestRow], directory: Directory) -> list[dict[str, str]]:
    return [
        {
            "id": r.id,
            "time": r.created_at.strftime("%m-%d %H:%M:%S"),
            "model": r.alias or "—",
            "deployment": directory.name("deployment", "" if r.deployment_id is None else str(r.deployment_id)),
            "endpoint": r.endpoint,
            "status": r.status,
            "code": str(r.status_code),
            "tokens": f"{r.tokens:,}",
            "cost": money(r.cost_usd),
            "latency": ms(r.latency_ms),
            "ttfb": ms(r.ttfb_ms) if r.ttfb_ms is not None else "—",
            "mode": "stream" if r.stream else "single",
            "key": directory.name("key", "" if r.key_id is None else str(r.key_id)),
            "user": directory.name("user", "" if r.user_id is None else str(r.user_id)),
        }
        for r in rows
    ]
