"""Display values for the keys page (one row of strings per key: a prefix, never a secret or hash), and the
key form's text read back as typed values (the services check them again)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from llm_console.services.key_admin import KeyBudget, KeyLimits, check_budget, check_limits
from llm_console.services.key_list import KeyChoices, KeyPage, KeyRow
from llm_console.services.keys import KeyAdminError
from llm_console.services.limits_admin import LIMIT_FIELDS

OWNER_LABELS = {"user": "User", "team": "Team", "service": "Service account", "org": "Organization", "": "Organization"}
SPARK_HEIGHT_PX = 22
NONE = "—"


def _count(n: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


def _usd(value: float) -> str:
    return f"${value:,.2f}".replace(".00", "")


def limits_text(limits: KeyLimits) -> str:
    parts = [f"{_count(v)} {k.upper()}" for k, v in limits.as_dict().items() if v is not None]
    return " · ".join(parts) or NONE


def budget_text(budget: KeyBudget) -> str:
    parts = []
    if budget.daily_usd is not None:
        parts.append(f"{_usd(budget.daily_usd)}/day")
    if budget.monthly_usd is not None:
        parts.append(f"{_usd(budget.monthly_usd)}/month")
    return " · ".join(parts) or NONE


def bars(counts: tuple[int, ...]) -> dict[str, str]:
    """Heights of the sparkline's bars, "bar0" (oldest day) to "barN" (today); an idle day is a 1 px stub."""
    peak = max(counts, default=0)
    return {f"bar{i}": f"{max(1, round(SPARK_HEIGHT_PX * c / peak)) if peak else 1}px" for i, c in enumerate(counts)}


def row(r: KeyRow, days: tuple[Any, ...]) -> dict[str, str]:
    per_day = ", ".join(f"{d:%b %d} {c}" for d, c in zip(days, r.daily_requests, strict=False))
    return {
        "id": str(r.id),
        "name": r.name,
        "prefix": f"{r.prefix}…",
        "owner": r.owner or NONE,
        "owner_type": OWNER_LABELS.get(r.owner_type, r.owner_type),
        "aliases": ", ".join(r.allowed_aliases) or "All models",
        "expires": f"{r.expires_at:%Y-%m-%d}" if r.expires_at else "Never",
        "status": r.status,
        "limits": limits_text(r.limits),
        "budget": budget_text(r.budget),
        "requests_7d": _count(sum(r.daily_requests)),
        "spark_label": f"Requests per day, last {len(days)} days: {per_day}",
        "manage": "1" if r.can_manage and r.status != "revoked" else "",
        "rotate": "1" if r.can_manage and r.status == "active" else "",
        **bars(r.daily_requests),
    }


def rows(page: KeyPage) -> list[dict[str, str]]:
    return [row(r, page.days) for r in page.rows]


def current_owner(r: KeyRow) -> tuple[str, str]:
    """The owner type and id the edit form starts with (a key naming a user and a team shows the user)."""
    kind = r.owner_type or "org"
    return kind, str({"team": r.team_id, "org": 0}.get(kind, r.user_id))


def choices(c: KeyChoices, current: KeyRow | None = None) -> dict[str, list[dict[str, str]]]:
    """Owner options per owner type, as select items; a key being edited keeps its own owner on offer."""
    out = {
        "user": [{"value": str(x.id), "label": x.label} for x in c.users],
        "team": [{"value": str(x.id), "label": x.label} for x in c.teams],
        "service": [{"value": str(x.id), "label": x.label} for x in c.services],
        "org": [{"value": "0", "label": "The organization (no owner)"}] if c.organization else [],
    }
    if current is not None:
        kind, owner_id = current_owner(current)
        if owner_id not in {o["value"] for o in out[kind]}:
            out[kind].append({"value": owner_id, "label": current.owner or OWNER_LABELS[kind]})
    return out


def blank_values() -> dict[str, str]:
    """The create form's starting values: every field empty."""
    return dict.fromkeys(("name", "expires", "daily_usd", "monthly_usd", *LIMIT_FIELDS), "")


def edit_values(r: KeyRow) -> dict[str, str]:
    """The edit form's starting values for one key."""
    out = {
        "name": r.name,
        "expires": f"{r.expires_at:%Y-%m-%d}" if r.expires_at else "",
        "daily_usd": "" if r.budget.daily_usd is None else f"{r.budget.daily_usd:g}",
        "monthly_usd": "" if r.budget.monthly_usd is None else f"{r.budget.monthly_usd:g}",
    }
    limits = r.limits.as_dict()
    return out | {f: "" if limits[f] is None else str(limits[f]) for f in LIMIT_FIELDS}


def parse_expiry(text: str) -> datetime | None:
    """A form's "YYYY-MM-DD" as the start of that UTC day (the key stops working on that date); "" is None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise KeyAdminError("The expiry must be a date (YYYY-MM-DD).") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _number(text: Any, label: str, kind: type[int] | type[float]) -> Any:
    text = str(text or "").strip().replace(",", "").lstrip("$")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "an amount of USD"
        raise KeyAdminError(f"{label} must be {what}, or empty for no limit.") from None


def parse_limits(form: dict[str, Any]) -> KeyLimits:
    """RPM/TPM/RPD/TPD from a form's text fields (empty: no limit)."""
    return check_limits(KeyLimits(**{f: _number(form.get(f), f.upper(), int) for f in LIMIT_FIELDS}))


def parse_budget(form: dict[str, Any]) -> KeyBudget:
    """The daily and monthly USD budget from a form's text fields (empty: no limit)."""
    daily = _number(form.get("daily_usd"), "The daily budget", float)
    monthly = _number(form.get("monthly_usd"), "The monthly budget", float)
    return check_budget(KeyBudget(daily, monthly))
