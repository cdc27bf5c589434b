"""Alert rules: what each kind watches, the form's validation (readable errors), create/edit/toggle/delete, audited.

The webhook URL is write-only like a provider key: encrypted with the SecretBox when saved, shown only
as scheme and host (`https://hooks.slack.com/***`), and never written to the audit trail or a log line.
An empty webhook field on edit keeps the stored URL; only "clear" removes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from llm_console.crypto import SecretBox
from llm_console.db.alert_tables import AlertRule
from llm_console.db.engine import session
from llm_console.db.models import Deployment, ModelAlias, Team, User, VirtualKey
from llm_console.services.alerts_channels import MAX_URL, AlertError, check_webhook_url, mask_url, parse_emails
from llm_console.services.audit import record

KINDS: dict[str, str] = {
    "budget_warning": "Budget warning (80%)",
    "budget_exceeded": "Budget exceeded (100%)",
    "error_rate": "Error-rate spike",
    "latency": "Latency spike",
    "deployment_down": "Deployment down",
}
BUDGET_KINDS = ("budget_warning", "budget_exceeded")
TRAFFIC_KINDS = ("error_rate", "latency")
# What each kind may be narrowed to; the first is the default. "" means all traffic.
SCOPES: dict[str, tuple[str, ...]] = {
    "budget_warning": ("team", "user", "key"),
    "budget_exceeded": ("team", "user", "key"),
    "error_rate": ("", "alias", "deployment"),
    "latency": ("", "alias", "deployment"),
    "deployment_down": ("deployment",),
}
SCOPE_LABELS = {"": "all traffic", "alias": "model alias", "deployment": "deployment", "user": "user", "team": "team"}
SCOPE_LABELS["key"] = "virtual key"
PERCENTILES = (50, 90, 95, 99)
ALL_TRAFFIC = "all"  # the form's name for scope "" (select options cannot be empty)
MAX_NAME = 200
MAX_WINDOW = 1440
MAX_COOLDOWN = 7 * 24 * 60
MAX_MIN_REQUESTS = 1_000_000
MAX_LATENCY_MS = 3_600_000.0


@dataclass(frozen=True, slots=True)
class RuleInput:
    """What the rule form submits, parsed but not yet validated (None: the field was left empty)."""

    name: str
    kind: str
    threshold: float | None = None
    percentile: int | None = None
    window_minutes: int | None = None
    min_requests: int | None = None
    scope_type: str = ""
    scope_value: str = ""
    webhook_url: str = ""
    email_to: str = ""
    cooldown_minutes: int | None = None
    notify_resolved: bool = True
    enabled: bool | None = None  # None: a new rule starts enabled, an edited one keeps its state

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> RuleInput:
        """Read a submitted form (every value a string), refusing numbers that cannot be read."""

        def text(name: str, limit: int = 4096) -> str:
            return str(form.get(name) or "").strip()[:limit]

        def number(name: str, label: str, whole: bool) -> float | None:
            raw = text(name, 64)
            if not raw:
                return None
            try:
                value = float(int(raw)) if whole else float(raw)
            except ValueError:
                raise AlertError(f"{label} must be a {'whole ' if whole else ''}number, got {raw[:40]!r}") from None
            if not math.isfinite(value):
                raise AlertError(f"{label} must be a finite number")
            return value

        def whole(name: str, label: str) -> int | None:
            value = number(name, label, True)
            return None if value is None else int(value)

        def ticked(name: str) -> bool:
            return str(form.get(name) or "").lower() in ("on", "true", "1")

        return cls(
            name=text("name", 400),
            kind=text("kind", 40),
            threshold=number("threshold", "threshold", False),
            percentile=whole("percentile", "percentile"),
            window_minutes=whole("window_minutes", "window"),
            min_requests=whole("min_requests", "minimum requests"),
            scope_type="" if text("scope_type", 40) == ALL_TRAFFIC else text("scope_type", 40),
            scope_value=text("scope_value", 400),
            webhook_url=text("webhook_url", MAX_URL + 1),
            email_to=text("email_to", 8000),
            cooldown_minutes=whole("cooldown_minutes", "cool-down"),
            notify_resolved=ticked("notify_resolved"),
            enabled=ticked("enabled") if "enabled" in form else None,
        )


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule as the console shows it: the webhook only masked, never its URL."""

    id: int
    name: str
    kind: str
    enabled: bool
    threshold: float | None
    percentile: int | None
    window_minutes: int
    min_requests: int
    scope_type: str
    scope_value: str
    webhook_display: str
    email_to: tuple[str, ...]
    cooldown_minutes: int
    notify_resolved: bool
    updated_by: str
    updated_at: datetime


def view(rule: AlertRule) -> RuleView:
    assert rule.id is not None
    return RuleView(
        rule.id,
        rule.name,
        rule.kind,
        rule.enabled,
        rule.threshold,
        rule.percentile,
        rule.window_minutes,
        rule.min_requests,
        rule.scope_type,
        rule.scope_value,
        rule.webhook_display,
        tuple(rule.email_to),
        rule.cooldown_minutes,
        rule.notify_resolved,
        rule.updated_by or rule.created_by,
        rule.updated_at,
    )


def _bounded(value: int | None, default: int, low: int, high: int, label: str) -> int:
    value = default if value is None else value
    if not low <= value <= high:
        raise AlertError(f"{label} must be between {low} and {high}")
    return value


def _scope_value(s: Session, scope_type: str, raw: str) -> str:
    """The stored value for a scope: an id for users, teams, keys and deployments (given as id or name)."""
    if not raw:
        return ""
    if scope_type == "alias":
        if s.exec(select(ModelAlias.id).where(ModelAlias.alias == raw)).first() is None:
            raise AlertError(f"there is no model alias named {raw[:100]!r}")
        return raw
    table: Any = {"user": User, "team": Team, "key": VirtualKey, "deployment": Deployment}[scope_type]
    name_col = {"user": User.email, "team": Team.name, "key": VirtualKey.name, "deployment": Deployment.name}
    if raw.isdigit() and len(raw) <= 12:
        if s.get(table, int(raw)) is None:
            raise AlertError(f"there is no {SCOPE_LABELS[scope_type]} with id {raw}")
        return raw
    ids = list(s.exec(select(table.id).where(name_col[scope_type] == raw)).all())
    if len(ids) != 1:
        what = SCOPE_LABELS[scope_type]
        problem = "no" if not ids else "more than one"
        raise AlertError(f"there is {problem} {what} named {raw[:100]!r}; give its id instead")
    return str(ids[0])


def _validate(s: Session, inp: RuleInput) -> dict[str, Any]:
    """The columns a valid input sets (the webhook apart), or an AlertError saying what to fix."""
    name = inp.name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise AlertError(f"name must be 1-{MAX_NAME} printable characters")
    if inp.kind not in KINDS:
        raise AlertError(f"kind must be one of: {', '.join(KINDS)}")
    allowed, scope_type = SCOPES[inp.kind], inp.scope_type
    if scope_type not in allowed:
        if scope_type:
            names = ", ".join(SCOPE_LABELS[t] for t in allowed)
            raise AlertError(f"a {KINDS[inp.kind].lower()} rule watches one of: {names}")
        scope_type = allowed[0]
    if not scope_type and inp.scope_value:
        raise AlertError("choose what the value narrows to (a model alias or a deployment), or leave it empty")
    threshold: float | None = None
    percentile: int | None = None
    if inp.kind in TRAFFIC_KINDS:
        if inp.threshold is None:
            raise AlertError("a threshold is required: " + ("a percentage" if inp.kind == "error_rate" else "ms"))
        if inp.threshold <= 0:
            raise AlertError("the threshold must be more than 0")
        high = 100.0 if inp.kind == "error_rate" else MAX_LATENCY_MS
        if inp.threshold > high:
            raise AlertError(f"the threshold must be at most {high:g}" + ("%" if inp.kind == "error_rate" else " ms"))
        threshold = inp.threshold
        if inp.kind == "latency":
            percentile = 95 if inp.percentile is None else inp.percentile
            if percentile not in PERCENTILES:
                raise AlertError(f"percentile must be one of {', '.join(map(str, PERCENTILES))}")
    elif inp.threshold is not None and inp.threshold < 0:
        raise AlertError("the threshold must not be negative")
    low_window = 0 if inp.kind == "deployment_down" else 1
    return {
        "name": name,
        "kind": inp.kind,
        "threshold": threshold,
        "percentile": percentile,
        "window_minutes": _bounded(inp.window_minutes, 5, low_window, MAX_WINDOW, "the window (minutes)"),
        "min_requests": _bounded(inp.min_requests, 10, 1, MAX_MIN_REQUESTS, "the minimum number of requests"),
        "scope_type": scope_type,
        "scope_value": _scope_value(s, scope_type, inp.scope_value) if scope_type else "",
        "email_to": parse_emails(inp.email_to),
        "cooldown_minutes": _bounded(inp.cooldown_minutes, 60, 1, MAX_COOLDOWN, "the cool-down (minutes)"),
        "notify_resolved": inp.notify_resolved,
    } | ({} if inp.enabled is None else {"enabled": inp.enabled})


def _audit_fields(rule: AlertRule) -> dict[str, Any]:
    """The rule for the audit trail: the webhook masked (audit masking knows nothing of webhook URLs)."""
    fields = view(rule)
    return {
        "name": fields.name,
        "kind": fields.kind,
        "enabled": fields.enabled,
        "threshold": fields.threshold,
        "percentile": fields.percentile,
        "window_minutes": fields.window_minutes,
        "min_requests": fields.min_requests,
        "scope": f"{fields.scope_type}:{fields.scope_value}".strip(":"),
        "webhook": fields.webhook_display,
        "email_to": list(fields.email_to),
        "cooldown_minutes": fields.cooldown_minutes,
        "notify_resolved": fields.notify_resolved,
    }


def _flush(s: Session, name: str) -> None:
    """Write the rule now, so a taken name is refused readably (the unique index decides, race-free)."""
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        raise AlertError(f"a rule named {name[:100]!r} already exists; choose another name") from None


def create_rule(engine: Engine, box: SecretBox, inp: RuleInput, *, actor: str) -> RuleView:
    with session(engine) as s:
        fields = _validate(s, inp)
        rule = AlertRule(**fields, created_by=actor, updated_by=actor)
        if inp.webhook_url:
            url = check_webhook_url(inp.webhook_url)
            rule.webhook_url_encrypted, rule.webhook_display = box.encrypt(url), mask_url(url)
        s.add(rule)
        _flush(s, fields["name"])
        record(
            s,
            actor=actor,
            action="alert_rule.create",
            target_type="alert_rule",
            target_id=str(rule.id),
            after=_audit_fields(rule),
        )
        s.commit()
        return view(rule)


def _get(s: Session, rule_id: int) -> AlertRule:
    rule = s.get(AlertRule, rule_id)
    if rule is None:
        raise AlertError(f"alert rule {rule_id} does not exist (deleted meanwhile?)")
    return rule


def update_rule(
    engine: Engine, box: SecretBox, rule_id: int, inp: RuleInput, *, actor: str, clear_webhook: bool = False
) -> RuleView:
    """Save an edit; an empty webhook field keeps the stored URL unless `clear_webhook`."""
    with session(engine) as s:
        rule = _get(s, rule_id)
        before = _audit_fields(rule)
        for name, value in _validate(s, inp).items():
            setattr(rule, name, value)
        if inp.webhook_url:
            url = check_webhook_url(inp.webhook_url)
            rule.webhook_url_encrypted, rule.webhook_display = box.encrypt(url), mask_url(url)
        elif clear_webhook:
            rule.webhook_url_encrypted, rule.webhook_display = None, ""
        rule.updated_by, rule.updated_at = actor, datetime.now(UTC)
        _flush(s, rule.name)
        record(
            s,
            actor=actor,
            action="alert_rule.update",
            target_type="alert_rule",
            target_id=str(rule_id),
            before=before,
            after=_audit_fields(rule),
        )
        s.commit()
        return view(rule)


def set_rule_enabled(engine: Engine, rule_id: int, enabled: bool, *, actor: str) -> RuleView:
    with session(engine) as s:
        rule = _get(s, rule_id)
        if rule.enabled != enabled:
            rule.enabled, rule.updated_by, rule.updated_at = enabled, actor, datetime.now(UTC)
            action = "alert_rule.enable" if enabled else "alert_rule.disable"
            record(
                s,
                actor=actor,
                action=action,
                target_type="alert_rule",
                target_id=str(rule_id),
                before={"enabled": not enabled},
                after={"enabled": enabled},
            )
            s.commit()
        return view(rule)


def delete_rule(engine: Engine, rule_id: int, *, actor: str) -> str:
    """Delete a rule and (cascade) its events; returns its name."""
    with session(engine) as s:
        rule = _get(s, rule_id)
        name, before = rule.name, _audit_fields(rule)
        s.delete(rule)
        record(
            s, actor=actor, action="alert_rule.delete", target_type="alert_rule", target_id=str(rule_id), before=before
        )
        s.commit()
        return name


def list_rules(engine: Engine) -> list[RuleView]:
    with session(engine) as s:
        return [view(r) for r in s.exec(select(AlertRule).order_by(AlertRule.name))]


def get_rule(engine: Engine, rule_id: int) -> RuleView:
    with session(engine) as s:
        return view(_get(s, rule_id))


def webhook_url(engine: Engine, box: SecretBox, rule_id: int) -> str | None:
    """The decrypted webhook URL of a rule, for delivery only (never for display)."""
    with session(engine) as s:
        token = _get(s, rule_id).webhook_url_encrypted
    return box.decrypt(token) if token else None
