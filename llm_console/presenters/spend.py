"""Spend by user page values: one row per user with a today bar and a month bar, and the CSV export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llm_console.presenters.common import money
from llm_console.presenters.costs import STATUS_LABEL
from llm_console.presenters.export import rows_csv, rows_json
from llm_console.services.spend import SpendPage, UserSpend, budget_status

EXPORT_COLUMNS = (
    "user_id",
    "email",
    "status",
    "day_usd",
    "daily_budget_usd",
    "day_share",
    "month_usd",
    "monthly_budget_usd",
    "month_share",
)


@dataclass(slots=True)
class SpendView:
    rows: list[dict[str, str | int]] = field(default_factory=list)
    summary: str = ""
    page: int = 1
    pages: int = 1
    status: str = ""
    search: str = ""
    as_of: str = ""
    timezone: str = "UTC"


def bar(prefix: str, period: str, spent: float, budget: float | None) -> dict[str, str | int]:
    """One budget bar's values, keys prefixed: text, aria label, level (none|ok|warning|exceeded), pct (int 0-100)."""
    if not budget:
        return {
            f"{prefix}_text": f"{money(spent)} · no limit",
            f"{prefix}_aria": f"{period}: {money(spent)}, no limit",
            f"{prefix}_level": "none",
            f"{prefix}_pct": 0,
        }
    ratio = spent / budget
    return {
        f"{prefix}_text": f"{money(spent)} of {money(budget)} ({ratio * 100:.0f}%)",
        f"{prefix}_aria": f"{period}: {money(spent)} of {money(budget)}, {ratio * 100:.0f}%",
        f"{prefix}_level": budget_status(ratio),
        f"{prefix}_pct": min(100, round(ratio * 100)),
    }


def budget_note(increase_usd: float, reset_at: datetime | None) -> str:
    """What changes a budget bar's figures: a spend reset this period ("since the reset at 14:05 UTC") and
    active temporary increases ("incl. +$5.00 temporary"); "" for neither."""
    parts = [] if reset_at is None else [f"since the reset at {reset_at:%H:%M} UTC"]
    if increase_usd:
        parts.append(f"incl. +{money(increase_usd)} temporary")
    return " · ".join(parts)


def spend_row(u: UserSpend) -> dict[str, str | int]:
    s = u.spend
    return {
        "id": str(u.user_id),
        "email": u.email,
        "status": u.status,
        "status_label": STATUS_LABEL[u.status],
        **bar("day", "Today", s.day_usd, s.daily_budget_usd),
        **bar("month", "This month", s.month_usd, s.monthly_budget_usd),
        "day_note": budget_note(u.use.day_increase_usd, u.use.day_reset_at) if u.use else "",
        "month_note": budget_note(u.use.month_increase_usd, u.use.month_reset_at) if u.use else "",
    }


def spend_view(data: SpendPage) -> SpendView:
    c = data.counts
    noun = "user" if c["all"] == 1 else "users"
    return SpendView(
        rows=[spend_row(u) for u in data.rows],
        summary=f"{c['all']:,} {noun} · {c['warning']:,} warning · {c['exceeded']:,} exceeded",
        page=data.page,
        pages=data.pages,
        status=data.query.status,
        search=data.query.q,
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
        timezone=data.timezone,
    )


def export_rows(users: Sequence[UserSpend]) -> list[dict[str, Any]]:
    return [
        {
            "user_id": u.user_id,
            "email": u.email,
            "status": u.status,
            "day_usd": round(u.spend.day_usd, 6),
            "daily_budget_usd": u.spend.daily_budget_usd or "",
            "day_share": "" if u.spend.day_share is None else round(u.spend.day_share, 4),
            "month_usd": round(u.spend.month_usd, 6),
            "monthly_budget_usd": u.spend.monthly_budget_usd or "",
            "month_share": "" if u.spend.month_share is None else round(u.spend.month_share, 4),
        }
        for u in users
    ]


def spend_csv(users: Sequence[UserSpend]) -> str:
    return rows_csv(export_rows(users), EXPORT_COLUMNS)


def spend_json(users: Sequence[UserSpend]) -> str:
    return rows_json(export_rows(users))
