"""Alert evaluation: each round turns the database at `now` into open, updated and resolved events, and the
notices they owe; delivery outcomes are written back, and failed channels are retried next round.

De-duplication: one open event per (rule, subject fingerprint), enforced by a unique key, and at most one
"firing" notice per cool-down while it stays open. A subject that clears and comes back within the
cool-down of its last notice opens a new event but waits out that cool-down (flapping sends no storm);
a "resolved" notice goes out only for an event that was announced. Deployment-down rules hold an event
as "pending" until the deployment has been down for the rule's window.

Time is always passed in (`now`): tests evaluate the same condition at chosen instants, never wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.crypto import SecretBox
from llm_console.db.alert_tables import AlertEvent, AlertRule
from llm_console.db.engine import session
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import load_directory
from llm_console.services.alerts_conditions import Observation, observe
from llm_console.services.alerts_delivery import WEBHOOK_TIMEOUT_S, Delivery, Notice, deliver
from llm_console.services.alerts_rules import AlertError
from llm_console.settings import Settings

log = logging.getLogger("llm_console.alerts")
MAX_ATTEMPTS = 10
FIRST_ROUND_DELAY_S = 5.0
PAGE_SIZE = 25


def channels(rule: AlertRule) -> list[str]:
    return [c for c, on in (("webhook", bool(rule.webhook_url_encrypted)), ("email", bool(rule.email_to))) if on]


def _schedule(e: AlertEvent, rule: AlertRule, notice: str, now: datetime) -> None:
    """Owe `notice` on the rule's channels; a firing notice starts the cool-down."""
    owed = channels(rule)
    e.notifications += 1
    if notice == "firing":
        e.last_notified_at = now
    e.notice, e.pending = (notice, owed) if owed else ("", [])
    e.deliveries = {
        **e.deliveries,
        **{c: {"notice": notice, "ok": None, "detail": "queued", "attempts": 0} for c in owed},
    }


def _carried_cooldown(s: Session, rule: AlertRule, fingerprint: str, now: datetime) -> datetime | None:
    """The last firing notice for this subject if it is still inside the cool-down (a flapping condition)."""
    last = s.exec(
        select(AlertEvent.last_notified_at)
        .where(AlertEvent.rule_id == rule.id, AlertEvent.fingerprint == fingerprint)
        .where(col(AlertEvent.last_notified_at).is_not(None))
        .order_by(col(AlertEvent.id).desc())
        .limit(1)
    ).first()
    if last is None or now - utc(last) >= timedelta(minutes=rule.cooldown_minutes):
        return None
    return utc(last)


def _observed(s: Session, rule: AlertRule, e: AlertEvent | None, o: Observation, now: datetime) -> AlertEvent:
    if e is None:
        e = AlertEvent(
            rule_id=rule.id or 0,
            fingerprint=o.fingerprint,
            open_key=o.fingerprint,
            first_seen_at=now,
            last_notified_at=_carried_cooldown(s, rule, o.fingerprint, now),
            pending=[],
            deliveries={},
        )
        s.add(e)
    e.subject, e.value, e.threshold, e.message, e.last_seen_at = o.subject[:300], o.value, o.threshold, o.message, now
    hold = timedelta(minutes=rule.window_minutes if rule.kind == "deployment_down" else 0)
    e.state = "firing" if now - utc(e.first_seen_at) >= hold else "pending"
    last = e.last_notified_at
    if e.state == "firing" and (last is None or now - utc(last) >= timedelta(minutes=rule.cooldown_minutes)):
        _schedule(e, rule, "firing", now)
    return e


def _resolve(rule: AlertRule, e: AlertEvent, now: datetime, *, quietly: bool) -> None:
    announced = e.notifications > 0
    e.state, e.resolved_at, e.open_key = "resolved", now, None
    if not quietly and announced and rule.notify_resolved:
        _schedule(e, rule, "resolved", now)
    else:
        e.notice, e.pending = "", []


def apply(engine: Engine, rule: AlertRule, observed: list[Observation] | None, now: datetime) -> list[AlertEvent]:
    """Open, update or resolve `rule`'s events for what was observed (None: the rule is disabled, so its open
    events close without a notice). Returns the events that changed state or now owe a notice."""
    changed: list[AlertEvent] = []
    with session(engine) as s:
        open_events = {
            e.fingerprint: e
            for e in s.exec(
                select(AlertEvent).where(AlertEvent.rule_id == rule.id, col(AlertEvent.open_key).is_not(None))
            )
        }
        seen = {o.fingerprint: o for o in observed or []}
        for fingerprint, o in seen.items():
            before = open_events.get(fingerprint)
            state, notices = (before.state, before.notifications) if before else ("", 0)
            e = _observed(s, rule, before, o, now)
            if e.state != state or e.notifications != notices:
                changed.append(e)
        for fingerprint, e in open_events.items():
            if fingerprint not in seen:
                _resolve(rule, e, now, quietly=observed is None)
                changed.append(e)
        s.commit()
    return changed


def _notice(rule: AlertRule, e: AlertEvent, box: SecretBox) -> Notice:
    url = None
    if "webhook" in e.pending and rule.webhook_url_encrypted:
        try:
            url = box.decrypt(rule.webhook_url_encrypted)
        except ValueError:
            log.warning("alert rule %s: the stored webhook URL cannot be decrypted (secret key changed?)", rule.id)
    return Notice(
        e.id,
        rule.id or 0,
        rule.name,
        e.notice,
        rule.kind,
        e.subject,
        e.message,
        utc(e.first_seen_at),
        tuple(e.pending),
        url,
        tuple(rule.email_to),
    )


def owed_notices(engine: Engine, box: SecretBox) -> list[Notice]:
    """Every notice still owed (new ones and failed channels to retry), on channels the rule still has;
    a disabled rule owes nothing."""
    out = []
    with session(engine) as s:
        rows = s.exec(
            select(AlertEvent, AlertRule)
            .join(AlertRule, col(AlertRule.id) == AlertEvent.rule_id)
            .where(AlertEvent.notice != "")
            .order_by(col(AlertEvent.id))
        ).all()
        for e, rule in rows:
            pending = [c for c in e.pending if c in channels(rule)] if rule.enabled else []
            if pending != e.pending:
                e.pending = pending
                e.notice = e.notice if pending else ""
            if pending:
                out.append(_notice(rule, e, box))
        s.commit()
    return out


def evaluate(engine: Engine, settings: Settings, box: SecretBox, now: datetime) -> list[Notice]:
    """One round's judgement at `now`: update every rule's events, and return the notices owed (new firing or
    resolved notices, and earlier ones whose delivery failed). A rule that cannot be evaluated is logged and
    skipped; the others go on."""
    now = utc(now)
    directory = load_directory(engine)
    with session(engine) as s:
        rules = list(s.exec(select(AlertRule).order_by(col(AlertRule.id))))
    for rule in rules:
        try:
            observed = observe(engine, settings, rule, now, directory) if rule.enabled else None
            apply(engine, rule, observed, now)
        except Exception as exc:  # one broken rule must not silence the rest
            log.warning(
                "alert rule %s (%s) could not be evaluated: %s: %s", rule.id, rule.kind, type(exc).__name__, exc
            )
    return owed_notices(engine, box)


def record_deliveries(engine: Engine, deliveries: list[Delivery]) -> None:
    """Write each outcome on its event; a delivered channel (or one tried MAX_ATTEMPTS times) is no longer owed."""
    by_event: dict[int, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        if d.event_id is not None:
            by_event[d.event_id].append(d)
    if not by_event:
        return
    with session(engine) as s:
        for event_id, outcomes in by_event.items():
            e = s.get(AlertEvent, event_id)
            if e is None:  # its rule was deleted meanwhile
                continue
            results: dict[str, Any] = dict(e.deliveries)
            pending = list(e.pending)
            for d in outcomes:
                attempts = int(results.get(d.channel, {}).get("attempts", 0)) + 1
                results[d.channel] = {
                    "notice": e.notice,
                    "ok": d.ok,
                    "detail": d.detail,
                    "at": d.at.isoformat(),
                    "attempts": attempts,
                }
                if (d.ok or attempts >= MAX_ATTEMPTS) and d.channel in pending:
                    pending.remove(d.channel)
            e.deliveries, e.pending = results, pending
            if not pending:
                e.notice = ""
        s.commit()


@dataclass(frozen=True, slots=True)
class Round:
    notices: list[Notice]
    deliveries: list[Delivery]


async def run_round(
    engine: Engine, settings: Settings, box: SecretBox, now: datetime, *, client: httpx.AsyncClient | None = None
) -> Round:
    """Evaluate (in a thread), deliver what is owed, record the outcomes."""
    notices = await asyncio.to_thread(evaluate, engine, settings, box, now)
    deliveries = await deliver(settings, notices, client=client)
    await asyncio.to_thread(record_deliveries, engine, deliveries)
    names = {n.event_id: n.rule_name for n in notices}
    for d in deliveries:
        if not d.ok:
            log.warning("alert %r: %s delivery failed: %s", names.get(d.event_id, "?"), d.channel, d.detail)
    if notices:
        sent = sum(d.ok for d in deliveries)
        log.info("alerts: %d notice(s) owed, %d of %d deliveries succeeded", len(notices), sent, len(deliveries))
    return Round(notices, deliveries)


async def alerts_loop(engine: Engine, settings: Settings, box: SecretBox) -> None:
    """Evaluate and deliver every `LLMC_ALERT_INTERVAL_S` (0 disables alerting) until cancelled; a failed round
    is logged and the next one tries again. Run it in one place only (the caller holds a leader lock)."""
    interval = settings.alert_interval_s
    if interval <= 0:
        log.info("alerting is off (LLMC_ALERT_INTERVAL_S=0)")
        return
    await asyncio.sleep(min(FIRST_ROUND_DELAY_S, interval))
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=WEBHOOK_TIMEOUT_S) as client:
        while True:
            try:
                await run_round(engine, settings, box, datetime.now(UTC), client=client)
            except Exception as exc:  # the database may be away: the next round tries again
                log.warning("alert round failed: %s: %s", type(exc).__name__, str(exc)[:200])
            await asyncio.sleep(interval)


async def send_test(
    engine: Engine, settings: Settings, box: SecretBox, rule_id: int, *, client: httpx.AsyncClient | None = None
) -> list[Delivery]:
    """Send a test message on each of a rule's channels now; the outcomes are returned, not stored."""

    def load() -> Notice:
        with session(engine) as s:
            rule = s.get(AlertRule, rule_id)
            if rule is None:
                raise AlertError(f"alert rule {rule_id} does not exist (deleted meanwhile?)")
            owed = channels(rule)
            if not owed:
                raise AlertError(f"rule {rule.name!r} has no webhook or e-mail recipients to test; add one first")
            url = box.decrypt(rule.webhook_url_encrypted) if rule.webhook_url_encrypted else None
            message = f"A test message from LLM Console for the alert rule {rule.name!r}; nothing is wrong."
            return Notice(
                None,
                rule_id,
                rule.name,
                "test",
                rule.kind,
                "test message",
                message,
                datetime.now(UTC),
                tuple(owed),
                url,
                tuple(rule.email_to),
            )

    try:
        notice = await asyncio.to_thread(load)
    except ValueError as exc:
        if isinstance(exc, AlertError):
            raise
        raise AlertError(
            "the stored webhook URL cannot be decrypted (was LLMC_SECRET_KEY changed?); enter it again"
        ) from None
    return await deliver(settings, [notice], client=client)
