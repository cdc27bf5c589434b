"""Limit tiers page values: the tiers table, the distribution chart and its table, upgrade suggestions with
their figures, the tier form's text (and read back), and the spend administration lists and forms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llm_console.presenters.common import money
from llm_console.presenters.keys import parse_budget, parse_limits
from llm_console.services.limits_admin import LIMIT_FIELDS, BudgetLimits, RateLimits
from llm_console.services.spend_admin import IncreaseView, SpendAdminError, SpendResetView
from llm_console.services.tier_admin import TierError, TierView
from llm_console.services.tier_insights import RULE, DistributionRow, Suggestion, TiersPage

NONE = "—"
NO_LIMIT = "no limit"
KIND_LABELS = {"user": "User", "team": "Team", "key": "Key"}
LIMIT_LABELS = {
    "rpm": "RPM",
    "tpm": "TPM",
    "rpd": "RPD",
    "tpd": "TPD",
    "daily_usd": "Daily budget",
    "monthly_usd": "Monthly budget",
}
PERIOD_LABELS = {"day": "Daily", "month": "Monthly"}
NO_TIER = "none"  # the assign dialog's choice for "take them off their tier"
TIER_FIELDS = ("name", "description", "rank", *LIMIT_FIELDS, "daily_usd", "monthly_usd")


@dataclass(slots=True)
class TiersView:
    tiers: list[dict[str, str]] = field(default_factory=list)
    chart: list[dict[str, str | int]] = field(default_factory=list)
    distribution: list[dict[str, str]] = field(default_factory=list)
    suggestions: list[dict[str, str]] = field(default_factory=list)
    tier_options: list[dict[str, str]] = field(default_factory=list)
    rule: str = RULE
    range_text: str = ""
    can_edit: bool = False
    as_of: str = ""


def limit_value(limit: str, value: float | None) -> str:
    """A limit as the page writes it: "1,000" requests or tokens, "$5.00" for a budget, "no limit"."""
    if value is None:
        return NO_LIMIT
    if limit in ("daily_usd", "monthly_usd"):
        return money(value)
    return f"{int(value):,}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def tier_row(t: TierView) -> dict[str, str]:
    values = {**t.limits.as_dict(), "daily_usd": t.budget.daily_usd, "monthly_usd": t.budget.monthly_usd}
    return {
        "id": str(t.id),
        "name": t.name,
        "description": t.description,
        "rank": str(t.rank),
        **{name: NONE if v is None else limit_value(name, v) for name, v in values.items()},
        "users": f"{t.holders.get('user', 0):,}",
        "teams": f"{t.holders.get('team', 0):,}",
        "keys": f"{t.holders.get('key', 0):,}",
        "held": "1" if any(t.holders.get(k, 0) for k in KIND_LABELS) else "",
        "updated": f"{_when(t.updated_at)} by {t.updated_by}" if t.updated_by else _when(t.updated_at),
    }


def distribution_chart(rows: list[DistributionRow]) -> list[dict[str, str | int]]:
    return [{"tier": r.name, "users": r.users, "teams": r.teams, "keys": r.keys} for r in rows]


def distribution_row(r: DistributionRow) -> dict[str, str]:
    return {
        "tier": r.name,
        "tier_id": "" if r.tier_id is None else str(r.tier_id),
        "users": f"{r.users:,}",
        "teams": f"{r.teams:,}",
        "keys": f"{r.keys:,}",
        "total": f"{r.total:,}",
    }


def advice(s: Suggestion) -> str:
    """What to do, in words: the tier to move to, or why only raising their own limit helps."""
    label = LIMIT_LABELS.get(s.limit, s.limit)
    if s.own_override:
        return f"Their own {label} overrides the tier: raise their own limit."
    if s.target_tier is None:
        return "No higher tier: raise their own limit."
    return f"Move to {s.target_tier}."


def suggestion_row(s: Suggestion) -> dict[str, str]:
    target = NONE if s.target_tier is None else f"{limit_value(s.limit, s.target_value)} ({s.target_tier})"
    return {
        "entity": f"{s.entity_type}:{s.entity_id}",
        "name": s.name,
        "kind": KIND_LABELS.get(s.entity_type, s.entity_type),
        "tier": s.tier,
        "limit": LIMIT_LABELS.get(s.limit, s.limit),
        "refused": f"{s.refused:,}",
        "calls": f"{s.calls:,}",
        "share": f"{s.share * 100:.1f}%",
        "days": str(s.days),
        "current": limit_value(s.limit, s.current),
        "target": target,
        "advice": advice(s),
    }


def tiers_view(data: TiersPage) -> TiersView:
    days = (data.end - data.start).total_seconds() / 86400
    span = f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"
    return TiersView(
        tiers=[tier_row(t) for t in data.tiers],
        chart=distribution_chart(data.distribution),
        distribution=[distribution_row(r) for r in data.distribution],
        suggestions=[suggestion_row(s) for s in data.suggestions],
        tier_options=[
            *({"value": str(t.id), "label": t.name} for t in data.tiers),
            {"value": NO_TIER, "label": "No tier"},
        ],
        range_text=f"the last {span} ({_when(data.start)} to {_when(data.end)})",
        can_edit=data.can_edit,
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:.12g}"


def tier_form_values(t: TierView | None) -> dict[str, str]:
    """The tier form's starting text: a tier's values (blank: no limit), or a blank form."""
    if t is None:
        return dict.fromkeys(TIER_FIELDS, "") | {"rank": "0"}
    out = {"name": t.name, "description": t.description, "rank": str(t.rank)}
    out |= {f: _text(v) for f, v in t.limits.as_dict().items()}
    return out | {"daily_usd": _text(t.budget.daily_usd), "monthly_usd": _text(t.budget.monthly_usd)}


@dataclass(frozen=True, slots=True)
class TierForm:
    name: str
    description: str
    rank: int
    limits: RateLimits
    budget: BudgetLimits


def parse_tier_form(form: dict[str, Any]) -> TierForm:
    """The form's text as typed values (the service checks them again); readable errors."""
    raw_rank = str(form.get("rank") or "").strip()
    try:
        rank = int(raw_rank) if raw_rank else 0
    except ValueError:
        raise TierError("The rank must be a whole number (higher ranks are bigger tiers).") from None
    return TierForm(
        str(form.get("name") or "").strip(),
        str(form.get("description") or "").strip(),
        rank,
        parse_limits(form),
        parse_budget(form),
    )


def increase_row(i: IncreaseView) -> dict[str, str]:
    return {
        "id": str(i.id),
        "entity": f"{i.entity_type}:{i.entity_id}",
        "name": i.entity_name,
        "kind": KIND_LABELS.get(i.entity_type, i.entity_type),
        "period": PERIOD_LABELS.get(i.period, i.period),
        "amount": f"+{money(i.amount_usd)}",
        "created": _when(i.created_at),
        "expires": _when(i.expires_at),
        "actor": i.actor,
        "reason": i.reason,
    }


def reset_row(r: SpendResetView) -> dict[str, str]:
    return {
        "id": str(r.id),
        "entity": f"{r.entity_type}:{r.entity_id}",
        "name": r.entity_name,
        "kind": KIND_LABELS.get(r.entity_type, r.entity_type),
        "period": f"{PERIOD_LABELS.get(r.period, r.period)} ({r.period_id})",
        "when": _when(r.reset_at),
        "spent_before": money(r.spent_before_usd),
        "actor": r.actor,
        "reason": r.reason,
    }


def parse_entity(entity: str) -> tuple[str, int]:
    """A row's "type:id" as (type, id); SpendAdminError for anything else."""
    kind, _, raw = str(entity).partition(":")
    if kind not in KIND_LABELS or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise SpendAdminError("Choose a user, a team or a key from the table.")
    return kind, int(raw)


def parse_number(text: Any, label: str) -> float:
    """A positive amount or duration typed in a form, as a float; readable errors."""
    raw = str(text or "").strip().replace(",", "").lstrip("$")
    try:
        value = float(raw)
    except ValueError:
        raise SpendAdminError(f"{label} must be a number.") from None
    if not math.isfinite(value) or value <= 0:
        raise SpendAdminError(f"{label} must be above 0.")
    return value
