"""The Alerts page's rows and form values, as text. The webhook only ever appears masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llm_console.db.queries.names import Directory
from llm_console.presenters.common import ms
from llm_console.services.alerts_events import EventView
from llm_console.services.alerts_rules import ALL_TRAFFIC, KINDS, PERCENTILES, SCOPE_LABELS, SCOPES, RuleView

KIND_OPTIONS = list(KINDS.items())
PERCENTILE_OPTIONS = [(str(p), f"P{p}") for p in PERCENTILES]


def scope_options(kind: str) -> list[dict[str, str]]:
    """What a rule of `kind` may watch, for the scope select ("all" stands for all traffic)."""
    return [
        {"value": t or ALL_TRAFFIC, "label": "All traffic" if not t else SCOPE_LABELS[t].capitalize()}
        for t in SCOPES.get(kind, ("",))
    ]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def condition(r: RuleView) -> str:
    if r.kind in ("budget_warning", "budget_exceeded"):
        level = "100%" if r.kind == "budget_exceeded" else "80%"
        return f"spend ≥ {level} of a daily or monthly budget"
    if r.kind == "error_rate":
        return f"error rate ≥ {r.threshold or 0:g}% over {r.window_minutes} min (≥ {r.min_requests:,} requests)"
    if r.kind == "latency":
        return f"P{r.percentile} ≥ {ms(r.threshold or 0)} over {r.window_minutes} min (≥ {r.min_requests:,} requests)"
    held = f" for {r.window_minutes} min" if r.window_minutes else ""
    return f"last health check failed{held}"


def scope(r: RuleView, d: Directory) -> str:
    if not r.scope_type:
        return "all traffic"
    label = SCOPE_LABELS[r.scope_type]
    return f"{label} {d.name(r.scope_type, r.scope_value)}" if r.scope_value else f"each {label}"


def channels(r: RuleView) -> str:
    parts = []
    if r.webhook_display:
        parts.append(f"webhook {r.webhook_display}")
    if r.email_to:
        parts.append("e-mail " + ", ".join(r.email_to))
    return " · ".join(parts) or "this page only"


def rule_rows(rules: list[RuleView], d: Directory) -> list[dict[str, str]]:
    return [
        {
            "id": str(r.id),
            "name": r.name,
            "kind": KINDS.get(r.kind, r.kind),
            "condition": condition(r),
            "scope": scope(r, d),
            "channels": channels(r),
            "cooldown": f"{r.cooldown_minutes} min",
            "enabled": "true" if r.enabled else "false",
            "updated": f"{when(r.updated_at)} by {r.updated_by or '—'}",
        }
        for r in rules
    ]


def _scope_text(r: RuleView, d: Directory) -> str:
    """The scope value as the form shows it: a name people know (keys by id: their names need not be unique)."""
    if not r.scope_value or r.scope_type in ("alias", "key"):
        return r.scope_value
    return d.name(r.scope_type, r.scope_value)


def rule_form(r: RuleView | None, d: Directory) -> dict[str, str]:
    """The rule dialog's starting values: a new rule's defaults, or an existing rule's fields."""
    if r is None:
        return {
            "id": "",
            "name": "",
            "kind": "error_rate",
            "threshold": "5",
            "percentile": "95",
            "window_minutes": "5",
            "min_requests": "10",
            "scope_type": ALL_TRAFFIC,
            "scope_value": "",
            "email_to": "",
            "cooldown_minutes": "60",
            "notify_resolved": "true",
            "has_webhook": "",
            "webhook": "",
        }
    return {
        "id": str(r.id),
        "name": r.name,
        "kind": r.kind,
        "threshold": "" if r.threshold is None else f"{r.threshold:g}",
        "percentile": str(r.percentile or 95),
        "window_minutes": str(r.window_minutes),
        "min_requests": str(r.min_requests),
        "scope_type": r.scope_type or ALL_TRAFFIC,
        "scope_value": _scope_text(r, d),
        "email_to": ", ".join(r.email_to),
        "cooldown_minutes": str(r.cooldown_minutes),
        "notify_resolved": "true" if r.notify_resolved else "",
        "has_webhook": "true" if r.webhook_display else "",
        "webhook": r.webhook_display,
    }


def _value(e: EventView) -> str:
    if e.value is None:
        return "—"
    if e.rule_kind == "latency":
        return ms(e.value)
    return f"{e.value:.1f}%"


def delivery(e: EventView) -> str:
    """Each channel's last outcome ("webhook ok (HTTP 200)", "e-mail failed, 3 tries: …"), or why none went out."""
    parts = []
    for channel, label in (("webhook", "webhook"), ("email", "e-mail")):
        result: dict[str, Any] = e.deliveries.get(channel) or {}
        if not result:
            continue
        tries = int(result.get("attempts") or 0)
        if result.get("ok") is None:
            parts.append(f"{label} queued")
            continue
        outcome = "ok" if result.get("ok") else f"failed{f', {tries} tries' if tries > 1 else ''}"
        retry = ", retrying" if channel in e.pending else ""
        parts.append(f"{label} {outcome}{retry} ({result.get('detail', '')})")
    if parts:
        return " · ".join(parts)
    if e.state == "pending":
        return "waiting: not down for the rule's window yet"
    return "shown here only" if e.notifications else "not sent (within the cool-down of an earlier notice)"


def event_rows(events: list[EventView]) -> list[dict[str, str]]:
    return [
        {
            "id": str(e.id),
            "first_seen": when(e.first_seen_at),
            "last_seen": when(e.last_seen_at),
            "resolved": when(e.resolved_at),
            "rule": e.rule_name,
            "kind": KINDS.get(e.rule_kind, e.rule_kind),
            "subject": e.subject,
            "state": e.state,
            "value": _value(e),
            "delivery": delivery(e),
            "message": e.message,
        }
        for e in events
    ]
