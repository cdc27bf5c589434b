"""Alert delivery to real receivers: an aiohttp server on 127.0.0.1 for the Slack-shaped webhook, aiosmtpd for
e-mail. Failures (connection refused, no STARTTLS, no SMTP host) are recorded on the event and retried, and
neither the webhook URL nor the SMTP password shows up in an outcome or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.crypto import SecretBox
from llm_console.db.alert_tables import AlertEvent
from llm_console.db.models import DeploymentHealth
from llm_console.services.alerts import alerts_loop, run_round, send_test
from llm_console.services.alerts_delivery import Notice, slack_payload
from llm_console.services.alerts_rules import AlertError, RuleInput, create_rule
from llm_console.settings import Settings
from tests.conftest import free_port
from tests.db.seeding import add_rows, at, directory_rows, rec, write
from tests.services.conftest import SECRET_KEY

NOW = at(10, 12, 30, 30)
SMTP_PASSWORD = "smtp-canary-password-7f3e"


@dataclass
class Hook:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def titles(self) -> list[str]:
        return [str(b["text"]).split("\n")[0] for b in self.bodies]


@contextlib.asynccontextmanager
async def webhook_receiver(port: int) -> AsyncIterator[Hook]:
    """A real HTTP server on 127.0.0.1:`port` that stores every JSON body POSTed under /services/."""
    hook = Hook(f"http://127.0.0.1:{port}/services/T0001/B0002/very-secret-token")

    async def receive(request: web.Request) -> web.Response:
        hook.bodies.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/{rest:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield hook
    finally:
        await runner.cleanup()


@dataclass
class Inbox:
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: object, session: object, envelope: object, mechanism: str, data: Any) -> AuthResult:
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password.decode() == SMTP_PASSWORD, handled=False)

    def message(self, i: int = 0) -> Message:
        return email.message_from_bytes(self.envelopes[i].original_content or b"")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free port, plain text, accepting AUTH LOGIN/PLAIN without TLS."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    add_rows(engine, *directory_rows())
    return engine


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, secret_key=SECRET_KEY, **kw)  # type: ignore[call-arg]


def down(engine: Engine, deployment_id: int = 1, status: str = "error") -> None:
    with Session(engine) as s:
        row = s.get(DeploymentHealth, deployment_id) or DeploymentHealth(deployment_id=deployment_id)
        row.status, row.checked_at, row.last_error = status, NOW, "connection refused"
        s.add(row)
        s.commit()


def only_event(engine: Engine) -> AlertEvent:
    with Session(engine) as s:
        [event] = s.exec(select(AlertEvent)).all()
        return event


def make_rule(engine: Engine, box: SecretBox, **kw: Any) -> int:
    fields = {"name": "deployments", "kind": "deployment_down", "window_minutes": 0, **kw}
    return create_rule(engine, box, RuleInput(**fields), actor="ops@example.com").id


async def test_webhook_reaches_a_real_receiver_once_per_cooldown(
    seeded: Engine, box: SecretBox, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    write(seeded, *[rec(NOW - timedelta(seconds=5), status="error") for _ in range(12)])
    async with webhook_receiver(free_port()) as hook:
        make_rule(
            seeded,
            box,
            name="errors",
            kind="error_rate",
            threshold=50.0,
            window_minutes=60,
            cooldown_minutes=15,
            webhook_url=hook.url,
        )
        for minute in (0, 1, 2):
            await run_round(seeded, settings, box, NOW + timedelta(minutes=minute))
        assert len(hook.bodies) == 1
        await run_round(seeded, settings, box, NOW + timedelta(minutes=15))
        assert len(hook.bodies) == 2
    body = hook.bodies[0]
    assert body["text"].startswith("[FIRING] Error-rate spike: all traffic\nError rate of all traffic is 100.0%")
    header, section, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[FIRING] Error-rate spike: all traffic"},
    }
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "12 of 12 requests failed" in section["text"]["text"]
    assert context["elements"][0]["text"].startswith("Rule: errors · since 2026-03-10 12:30 UTC")


async def test_resolved_notice_follows_when_the_condition_clears(
    seeded: Engine, box: SecretBox, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    down(seeded)
    async with webhook_receiver(free_port()) as hook:
        make_rule(seeded, box, webhook_url=hook.url)
        await run_round(seeded, settings, box, NOW)
        down(seeded, status="available")
        await run_round(seeded, settings, box, NOW + timedelta(minutes=1))
    assert hook.titles == ["[FIRING] Deployment down: deployment gpt-a", "[RESOLVED] Deployment down: deployment gpt-a"]
    assert only_event(seeded).state == "resolved"


async def test_email_arrives_at_a_real_smtp_server(
    seeded: Engine, box: SecretBox, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = settings_for(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="alerts@example.com",
        smtp_username="relay",
        smtp_password=SMTP_PASSWORD,
    )
    down(seeded)
    make_rule(seeded, box, email_to="oncall@example.com, lead@example.com")
    done = await run_round(seeded, settings, box, NOW)
    assert [(d.channel, d.ok, d.detail) for d in done.deliveries] == [("email", True, "sent to 2 recipient(s)")]
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    assert inbox.logins == [("relay", SMTP_PASSWORD)]
    msg = inbox.message()
    assert msg["Subject"] == "[FIRING] Deployment down: deployment gpt-a"
    assert msg["To"] == "oncall@example.com, lead@example.com" and msg["From"] == "alerts@example.com"
    body = msg.get_payload(decode=True).decode()
    assert "Deployment gpt-a is down" in body and "connection refused" in body
    assert "Rule: deployments" in body and "Since: 2026-03-10 12:30:30 UTC" in body
    assert only_event(seeded).deliveries["email"]["ok"] is True


async def test_smtp_failures_are_recorded_readably_and_retried(
    seeded: Engine, box: SecretBox, tmp_path: Path, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    down(seeded)
    make_rule(seeded, box, email_to="oncall@example.com")
    not_configured = settings_for(tmp_path)
    done = await run_round(seeded, not_configured, box, NOW)
    assert done.deliveries[0].detail == "SMTP is not configured (set LLMC_SMTP_HOST)"
    no_tls = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port)  # STARTTLS is on by default
    done = await run_round(seeded, no_tls, box, NOW + timedelta(minutes=1))
    assert "offers no STARTTLS" in done.deliveries[0].detail
    wrong = settings_for(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_username="relay",
        smtp_password="wrong-password-canary",
    )
    with caplog.at_level(logging.INFO, logger="llm_console.alerts"):
        done = await run_round(seeded, wrong, box, NOW + timedelta(minutes=2))
    assert not done.deliveries[0].ok and "SMTPAuthenticationError" in done.deliveries[0].detail
    assert "wrong-password-canary" not in caplog.text + str(only_event(seeded).deliveries)
    event = only_event(seeded)
    assert event.pending == ["email"] and event.deliveries["email"]["attempts"] == 3
    ok = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    await run_round(seeded, ok, box, NOW + timedelta(minutes=3))
    assert len(inbox.envelopes) == 1 and only_event(seeded).pending == []


async def test_connection_refused_is_recorded_then_retried_when_the_receiver_is_back(
    seeded: Engine, box: SecretBox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}/services/T0001/B0002/very-secret-token"
    down(seeded)
    make_rule(seeded, box, webhook_url=url)
    with caplog.at_level(logging.INFO):
        done = await run_round(seeded, settings, box, NOW)
    [failed] = done.deliveries
    assert not failed.ok and failed.detail.startswith("could not connect")
    event = only_event(seeded)
    assert event.pending == ["webhook"] and event.deliveries["webhook"]["ok"] is False
    assert "very-secret-token" not in caplog.text + failed.detail + str(event.deliveries)
    assert "webhook delivery failed" in caplog.text
    async with webhook_receiver(port) as hook:
        await run_round(seeded, settings, box, NOW + timedelta(minutes=1))
        await run_round(seeded, settings, box, NOW + timedelta(minutes=2))
    assert hook.titles == ["[FIRING] Deployment down: deployment gpt-a"]
    event = only_event(seeded)
    assert event.pending == [] and event.deliveries["webhook"]["attempts"] == 2


async def test_send_test_uses_every_channel_of_the_rule(
    seeded: Engine, box: SecretBox, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    async with webhook_receiver(free_port()) as hook:
        rule_id = make_rule(seeded, box, webhook_url=hook.url, email_to="oncall@example.com")
        results = await send_test(seeded, settings, box, rule_id)
    assert sorted((d.channel, d.ok) for d in results) == [("email", True), ("webhook", True)]
    assert hook.titles == ["[TEST] Deployment down: test message"]
    assert inbox.message()["Subject"] == "[TEST] Deployment down: test message"
    silent = make_rule(seeded, box, name="page only")
    with pytest.raises(AlertError, match="no webhook or e-mail"):
        await send_test(seeded, settings, box, silent)


def test_slack_text_is_escaped_so_names_cannot_ping_or_link() -> None:
    notice = Notice(
        1,
        1,
        "r",
        "firing",
        "budget_warning",
        "team <!channel> & co",
        "Team <!channel> & co spent",
        datetime(2026, 3, 1, tzinfo=UTC),
        ("webhook",),
        "https://x.example/hook",
    )
    payload = slack_payload(notice)
    assert "<!channel>" not in str(payload["text"]) and "&lt;!channel&gt; &amp; co" in str(payload["text"])
    assert "x.example" not in str(payload) and "x.example" not in repr(notice)


async def test_the_loop_delivers_on_its_own_and_survives_a_broken_round(
    seeded: Engine, box: SecretBox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llm_console.services.alerts as alerts

    settings = settings_for(tmp_path, alert_interval_s=0.05)
    calls: list[int] = []
    real = alerts.evaluate

    def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return real(*args)

    monkeypatch.setattr(alerts, "evaluate", flaky)
    down(seeded)
    async with webhook_receiver(free_port()) as hook:
        make_rule(seeded, box, webhook_url=hook.url)
        task = asyncio.create_task(alerts_loop(seeded, settings, box))
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                if hook.bodies:
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert len(calls) >= 2 and hook.titles == ["[FIRING] Deployment down: deployment gpt-a"]


async def test_the_loop_is_off_at_interval_zero(seeded: Engine, box: SecretBox, tmp_path: Path) -> None:
    await asyncio.wait_for(alerts_loop(seeded, settings_for(tmp_path, alert_interval_s=0), box), timeout=1)
