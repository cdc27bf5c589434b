"""What each alert kind observes at an instant: the subjects whose condition holds, from rollups, budgets and
health checks (never a scan of the request log).

A rule yields one `Observation` per subject it fires for, keyed by a stable fingerprint ("team:3",
"alias:gpt", "deployment:7"): the same subject seen again belongs to the same open event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.alert_tables import AlertRule
from llm_console.db.engine import session
from llm_console.db.models import Deployment, DeploymentHealth, Provider
from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory
from llm_console.db.queries.spend import WARNING_SHARE
from llm_console.db.rollups import truncate
from llm_console.services.alerts_rules import SCOPE_LABELS
from llm_console.services.effective_budgets import budget_use
from llm_console.settings import Settings

MAX_SUBJECTS = 500


@dataclass(frozen=True, slots=True)
class Observation:
    fingerprint: str
    subject: str  # "team research", "alias gpt", "all traffic"
    value: float | None
    threshold: float | None
    message: str


def subject_name(directory: Directory, scope_type: str, value: str) -> str:
    """ "team research", "alias gpt", "deployment gpu-1", or "all traffic"."""
    if not scope_type:
        return "all traffic"
    return f"{SCOPE_LABELS[scope_type]} {directory.name(scope_type, value)}"


def window(now: datetime, minutes: int) -> tuple[datetime, datetime]:
    """The last `minutes` minute buckets, the current (partial) one included."""
    end = utc(now)
    return truncate(end, "m") - timedelta(minutes=max(minutes, 1) - 1), end


def budgets(engine: Engine, settings: Settings, rule: AlertRule, now: datetime, d: Directory) -> list[Observation]:
    """Entities at or over 80% (warning) or 100% (exceeded) of a daily or monthly budget."""
    level = 1.0 if rule.kind == "budget_exceeded" else WARNING_SHARE
    wanted = ("exceeded",) if rule.kind == "budget_exceeded" else ("warning", "exceeded")
    out = []
    for use in budget_use(engine, rule.scope_type, now, tz=settings.budget_timezone):  # as the gateway enforces
        spend = use.spend
        if (rule.scope_value and str(spend.entity_id) != rule.scope_value) or spend.status not in wanted:
            continue
        periods = [
            (share, label, spent, budget)
            for share, label, spent, budget in (
                (spend.day_share, "daily", spend.day_usd, spend.daily_budget_usd),
                (spend.month_share, "monthly", spend.month_usd, spend.monthly_budget_usd),
            )
            if share is not None
        ]
        share, label, spent, budget = max(periods, key=lambda p: p[0])
        subject = subject_name(d, rule.scope_type, str(spend.entity_id))
        verb = "exceeded" if rule.kind == "budget_exceeded" else "reached"
        message = (
            f"{subject[0].upper()}{subject[1:]} has {verb} {level:.0%} of its {label} budget: "
            f"${spent:,.2f} of ${budget:,.2f} ({share:.0%}; days reset at midnight {settings.budget_timezone})."
        )
        out.append(Observation(f"{rule.scope_type}:{spend.entity_id}", subject, share * 100, level * 100, message))
    return out


def _traffic(engine: Engine, rule: AlertRule, now: datetime) -> list[tuple[str, usage.Totals]]:
    """(value, totals) over the rule's window: one pair for all traffic or a named subject, else one per subject."""
    start, end = window(now, rule.window_minutes)
    dim = rule.scope_type or "all"
    if rule.scope_value or dim == "all":
        return [
            (rule.scope_value, usage.totals(engine, start, end, dim=dim, value=rule.scope_value or None, grain="m"))
        ]
    return usage.breakdown(engine, start, end, dim, order_by="requests", limit=MAX_SUBJECTS, grain="m")


def error_rate(engine: Engine, rule: AlertRule, now: datetime, d: Directory) -> list[Observation]:
    """Subjects whose share of failed requests over the window is at or above the threshold (in %)."""
    out = []
    threshold = rule.threshold or 0.0
    for value, t in _traffic(engine, rule, now):
        rate = t.error_rate * 100
        if t.requests < rule.min_requests or round(rate, 9) < threshold:
            continue
        subject = subject_name(d, rule.scope_type, value)
        message = (
            f"Error rate of {subject} is {rate:.1f}% over the last {rule.window_minutes} min "
            f"({t.errors:,} of {t.requests:,} requests failed; threshold {threshold:g}%)."
        )
        out.append(Observation(f"{rule.scope_type or 'all'}:{value}", subject, rate, threshold, message))
    return out


def latency(engine: Engine, rule: AlertRule, now: datetime, d: Directory) -> list[Observation]:
    """Subjects whose latency percentile over the window is at or above the threshold (ms)."""
    out = []
    threshold, q = rule.threshold or 0.0, rule.percentile or 95
    for value, t in _traffic(engine, rule, now):
        p = t.latency_p(q / 100)
        if t.requests < rule.min_requests or round(p, 6) < threshold:
            continue
        subject = subject_name(d, rule.scope_type, value)
        message = (
            f"P{q} latency of {subject} is {p:,.0f} ms over the last {rule.window_minutes} min "
            f"({t.requests:,} requests; threshold {threshold:,.0f} ms)."
        )
        out.append(Observation(f"{rule.scope_type or 'all'}:{value}", subject, p, threshold, message))
    return out


def deployments_down(engine: Engine, rule: AlertRule) -> list[Observation]:
    """Enabled deployments (of enabled providers) whose last health check failed."""
    stmt = (
        select(Deployment.id, Deployment.name, DeploymentHealth.last_error, DeploymentHealth.checked_at)
        .join(DeploymentHealth, DeploymentHealth.deployment_id == Deployment.id)  # type: ignore[arg-type]
        .join(Provider, Provider.id == Deployment.provider_id)  # type: ignore[arg-type]
        .where(Deployment.enabled, Provider.enabled, DeploymentHealth.status == "error")
    )
    if rule.scope_value:
        stmt = stmt.where(Deployment.id == int(rule.scope_value))
    with session(engine) as s:
        rows = s.exec(stmt.limit(MAX_SUBJECTS)).all()
    out = []
    for dep_id, name, error, checked in rows:
        when = f" at {utc(checked):%Y-%m-%d %H:%M} UTC" if checked is not None else ""
        message = f"Deployment {name} is down: its last health check{when} failed ({(error or 'no detail')[:300]})."
        out.append(Observation(f"deployment:{dep_id}", f"deployment {name}", None, None, message))
    return out


def observe(engine: Engine, settings: Settings, rule: AlertRule, now: datetime, d: Directory) -> list[Observation]:
    """Every subject `rule`'s condition holds for at `now`."""
    if rule.kind in ("budget_warning", "budget_exceeded"):
        return budgets(engine, settings, rule, now, d)
    if rule.kind == "error_rate":
        return error_rate(engine, rule, now, d)
    if rule.kind == "latency":
        return latency(engine, rule, now, d)
    if rule.kind == "deployment_down":
        return deployments_down(engine, rule)
    raise ValueError(f"unknown alert kind {rule.kind!r}")
