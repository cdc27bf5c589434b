"""Limits & budgets page values: a row of strings per user, team or key (spend bars, status, rate limits), the
period labels naming the budget time zone, and the edit form's starting values."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_console.presenters.costs import STATUS_LABEL
from llm_console.presenters.keys import budget_text, limits_text
from llm_console.presenters.spend import SpendView, bar, budget_note
from llm_console.services.limits_admin import LIMIT_FIELDS, BudgetLimits, EntityRef, RateLimits
from llm_console.services.limits_view import EntityUsage, LimitsPage

TYPE_LABELS = {"user": "User", "team": "Team", "key": "Key", "default": "Global default"}
FORM_FIELDS = ("entity_type", "name", *LIMIT_FIELDS, "daily_usd", "monthly_usd")


@dataclass(slots=True)
class LimitsView(SpendView):
    """The Spend page's table values (here: the organization's rows), plus the caller's own and the default."""

    mine: list[dict[str, str | int]] = field(default_factory=list)
    day_label: str = "Today (UTC)"
    month_label: str = "This month (UTC)"
    default_text: str = ""
    org_wide: bool = False
    can_edit: bool = False


def period_labels(tz: str) -> tuple[str, str]:
    """The column headings, naming the zone whose midnight resets the budgets."""
    return f"Today ({tz})", f"This month ({tz})"


def usage_row(u: EntityUsage, day_label: str, month_label: str) -> dict[str, str | int]:
    s = u.spend
    return {
        "entity": u.entity,
        "type": u.entity_type,
        "type_label": TYPE_LABELS[u.entity_type],
        "name": u.name,
        "status": u.status,
        "status_label": STATUS_LABEL[u.status],
        **bar("day", day_label, s.day_usd, s.daily_budget_usd),
        **bar("month", month_label, s.month_usd, s.monthly_budget_usd),
        "budget": budget_text(BudgetLimits(s.daily_budget_usd, s.monthly_budget_usd)),
        "limits": limits_text(u.limits),
        "limits_source": "global default" if u.limits_from_default else "",
        "tier": u.tier or "",
        "budgeted": "1" if s.daily_budget_usd is not None or s.monthly_budget_usd is not None else "",
        "day_note": budget_note(u.day_increase_usd, u.day_reset_at),
        "month_note": budget_note(u.month_increase_usd, u.month_reset_at),
    }


def limits_view(data: LimitsPage) -> LimitsView:
    day_label, month_label = period_labels(data.timezone)
    c = data.counts
    noun = "entity" if c["all"] == 1 else "entities"
    return LimitsView(
        mine=[usage_row(u, day_label, month_label) for u in data.mine],
        rows=[usage_row(u, day_label, month_label) for u in data.rows],
        summary=f"{c['all']:,} {noun} · {c['warning']:,} warning · {c['exceeded']:,} exceeded",
        page=data.page,
        pages=data.pages,
        status=data.query.status,
        search=data.query.q,
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
        timezone=data.timezone,
        day_label=day_label,
        month_label=month_label,
        default_text="No global default: keys without limits of their own are not rate limited."
        if data.default.empty
        else limits_text(data.default),
        org_wide=data.org_wide,
        can_edit=data.can_edit,
    )


def _text(value: float | None) -> str:
    """A number as a person types it: 1000000, 2.5 (never 1e+06); blank for none."""
    return "" if value is None else f"{value:.12g}"


def form_values(ref: EntityRef | None, limits: RateLimits, budget: BudgetLimits) -> dict[str, str]:
    """The edit form's starting text: the entity's own limits and budget (blank: none), or a blank user form."""
    out = {"entity_type": ref.entity_type if ref else "user", "name": ref.label if ref else ""}
    out |= {f: _text(v) for f, v in limits.as_dict().items()}
    return out | {"daily_usd": _text(budget.daily_usd), "monthly_usd": _text(budget.monthly_usd)}
