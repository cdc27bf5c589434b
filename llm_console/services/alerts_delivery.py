"""Sending alert notices: Slack-compatible JSON to a webhook (httpx), plain-text e-mail over SMTP (smtplib).

Every outcome comes back as a `Delivery`, success or not: nothing here raises for a failed send, and no
outcome text ever holds the webhook URL (Slack's carries its token) or the SMTP password.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from llm_console.services.alerts_rules import KINDS
from llm_console.settings import Settings

WEBHOOK_TIMEOUT_S = 10.0
SMTP_TIMEOUT_S = 15.0
MAX_DETAIL = 300
MAX_CONCURRENT = 8  # sends at once (SMTP ones each hold a thread)
CHANNELS = ("webhook", "email")
LABEL = {"firing": "FIRING", "resolved": "RESOLVED", "test": "TEST"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message owed for an alert event (or a rule's test message, `event_id` None) on some channels."""

    event_id: int | None
    rule_id: int
    rule_name: str
    kind: str  # firing | resolved | test
    alert_kind: str  # the rule's kind: budget_warning, error_rate, ...
    subject: str
    message: str
    since: datetime
    channels: tuple[str, ...]
    webhook_url: str | None = field(default=None, repr=False)
    email_to: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """ "[FIRING] Error-rate spike: alias gpt" (one line: it becomes an e-mail subject)."""
        text = (
            f"[{LABEL.get(self.kind, self.kind.upper())}] {KINDS.get(self.alert_kind, self.alert_kind)}: {self.subject}"
        )
        return " ".join(text.split())[:200]

    @property
    def body(self) -> str:
        state = {"firing": "The condition holds.", "resolved": "The condition no longer holds.", "test": ""}
        lines = [
            self.message,
            "",
            state.get(self.kind, ""),
            f"Rule: {self.rule_name}",
            f"Since: {self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        ]
        return "\n".join(line for line in lines if line is not None).strip() + "\n"


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: int | None
    channel: str
    ok: bool
    detail: str
    at: datetime


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped, so a team name cannot ping @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: Notice) -> dict[str, object]:
    """Slack incoming-webhook JSON: `text` for every client (and Mattermost, Teams' Slack mode), plus blocks."""
    since = f"{notice.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return {
        "text": _slack_escape(f"{notice.title}\n{notice.message}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(notice.message)[:3000]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _slack_escape(f"Rule: {notice.rule_name} · since {since}")}],
            },
        ],
    }


def _clean(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def _why(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {WEBHOOK_TIMEOUT_S:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {exc or 'connection failed'}"
    return f"{type(exc).__name__}: {exc}"


async def post_webhook(client: httpx.AsyncClient, notice: Notice) -> Delivery:
    """POST the Slack JSON; a 2xx answer is a success, anything else (or no answer) a recorded failure."""
    url = notice.webhook_url or ""
    try:
        resp = await client.post(url, json=slack_payload(notice), timeout=WEBHOOK_TIMEOUT_S)
    except Exception as exc:  # every failure becomes a recorded outcome, retried next round
        return Delivery(notice.event_id, "webhook", False, _clean(_why(exc), url), datetime.now(UTC))
    ok = 200 <= resp.status_code < 300
    body = resp.text[:200] if not ok else ""
    detail = _clean(f"HTTP {resp.status_code}" + (f": {body}" if body.strip() else ""), url)
    return Delivery(notice.event_id, "webhook", ok, detail, datetime.now(UTC))


def build_email(settings: Settings, notice: Notice) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = notice.title
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(notice.email_to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(notice.body)
    return msg


def send_email(settings: Settings, notice: Notice) -> Delivery:
    """Send the notice by SMTP (blocking: run it in a thread); STARTTLS and login as configured."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    now = datetime.now(UTC)
    if not settings.smtp_host:
        return Delivery(notice.event_id, "email", False, "SMTP is not configured (set LLMC_SMTP_HOST)", now)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, password or "")
            refused = smtp.send_message(build_email(settings, notice))
    except smtplib.SMTPNotSupportedError:
        detail = "the SMTP server offers no STARTTLS (LLMC_SMTP_STARTTLS=false only for a trusted local relay)"
        return Delivery(notice.event_id, "email", False, detail, datetime.now(UTC))
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        return Delivery(
            notice.event_id, "email", False, _clean(f"SMTP: {type(exc).__name__}: {exc}", password), datetime.now(UTC)
        )
    sent = len(notice.email_to) - len(refused)
    detail = f"sent to {sent} recipient(s)" + (f"; refused: {', '.join(sorted(refused))}" if refused else "")
    return Delivery(notice.event_id, "email", True, _clean(detail), datetime.now(UTC))


async def _send(client: httpx.AsyncClient, settings: Settings, notice: Notice, channel: str) -> Delivery:
    if channel == "webhook" and notice.webhook_url:
        return await post_webhook(client, notice)
    if channel == "email" and notice.email_to:
        return await asyncio.to_thread(send_email, settings, notice)
    why = (
        "no e-mail recipients"
        if channel == "email"
        else "no webhook URL, or it cannot be decrypted (secret key changed?)"
    )
    return Delivery(notice.event_id, channel, False, f"not sent: {why}", datetime.now(UTC))


async def deliver(
    settings: Settings, notices: list[Notice], *, client: httpx.AsyncClient | None = None
) -> list[Delivery]:
    """Send every notice on each of its channels, concurrently; one outcome per (notice, channel)."""
    if not notices:
        return []
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=WEBHOOK_TIMEOUT_S)
    try:
        limit = asyncio.Semaphore(MAX_CONCURRENT)

        async def one(notice: Notice, channel: str) -> Delivery:
            async with limit:
                return await _send(http, settings, notice, channel)

        return list(await asyncio.gather(*(one(n, c) for n in notices for c in n.channels)))
    finally:
        if own:
            await http.aclose()
