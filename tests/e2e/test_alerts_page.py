"""The operator's alerting journey in a browser: define a rule on /alerts, send its test message to a real HTTP
receiver, make its condition true with failing calls, evaluate, and see the fired event and its delivery on
the page; axe finds nothing serious on the page or the rule dialog.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.services import providers
from llm_console.services.alerts import run_round
from llm_console.services.deployment_admin import DeploymentFields, create_deployment
from llm_console.settings import Settings
from tests.conftest import free_port
from tests.e2e.conftest import Console, choose
from tests.e2e.test_accessibility import assert_accessible, open_settled

pytestmark = pytest.mark.browser


class Receiver(ThreadingHTTPServer):
    bodies: list[dict[str, Any]]

    @property
    def titles(self) -> list[str]:
        return [str(b.get("text", "")).split("\n")[0] for b in self.bodies]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 (free port) collecting the JSON bodies POSTed to it."""
    server = Receiver(("127.0.0.1", 0), Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def evaluate_now(console: Console) -> None:
    """One alert round against the console's database, as the console's own loop would run it."""
    settings = Settings(_env_file=None, data_dir=console.data_dir)  # type: ignore[call-arg]
    engine = make_engine(settings.database_url)
    box = SecretBox(settings.resolved_secret_key())
    try:  # in a thread of its own: sync Playwright keeps an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run_round(engine, settings, box, datetime.now(UTC))).result(timeout=60)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def down_alias(console: Console) -> str:
    """An alias of this test's own on a closed port: its failures stay out of the other tests' request log."""
    alias = f"alerts-down-{secrets.token_hex(3)}"
    settings = Settings(_env_file=None, data_dir=console.data_dir)  # type: ignore[call-arg]
    engine = make_engine(settings.database_url)
    try:
        box = SecretBox(settings.resolved_secret_key())
        url = f"http://127.0.0.1:{free_port()}/v1"
        provider = providers.create_provider(
            engine, box, name=alias, kind="openai", base_url=url, allow_private=True, actor="alerts-e2e"
        )
        assert provider.id is not None
        create_deployment(
            engine, provider.id, DeploymentFields("llama-3.1-8b-instruct", alias, alias), actor="alerts-e2e"
        )
    finally:
        engine.dispose()
    return alias


def fail_calls(console: Console, alias: str, n: int, timeout_s: float = 30) -> None:
    """`n` calls that reach the alias's dead deployment (after the gateway's next route refresh knows it)."""
    deadline = time.monotonic() + timeout_s
    failed = 0
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0, timeout=30) as client:
        while failed < n:
            try:
                client.chat.completions.create(model=alias, messages=[{"role": "user", "content": "hi"}])
            except openai.NotFoundError:
                assert time.monotonic() < deadline, f"the gateway never learned the alias {alias}"
                time.sleep(0.5)
            except openai.APIError:
                failed += 1
            else:
                pytest.fail("a call to a closed port succeeded")


def add_rule(page: Page, name: str, hook: str, alias: str) -> None:
    page.click("#add-rule")
    dialog = page.locator("#rule-dialog")
    expect(dialog).to_be_visible()
    page.fill("#rule-name", name)
    choose(page, "#rule-kind", "Latency spike")
    expect(dialog.locator("#rule-percentile")).to_be_visible()  # the form follows the kind
    choose(page, "#rule-kind", "Error-rate spike")
    expect(dialog.locator("#rule-percentile")).to_have_count(0)
    page.fill("#rule-threshold", "50")
    page.fill("#rule-min-requests", "2")
    choose(page, "#rule-scope-type", "Model alias")
    page.fill("#rule-scope-value", alias)
    page.fill("#rule-webhook", hook)
    page.fill("#rule-email", "oncall@example.com")
    page.click("#rule-save")
    expect(dialog).to_have_count(0)


def test_an_operator_defines_a_rule_tests_it_and_sees_what_fired(
    admin: BrowserContext, console: Console, receiver: Receiver, down_alias: str
) -> None:
    name = f"down-model-{secrets.token_hex(3)}"
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/services/T1/B2/e2e-secret-token"
    page = admin.new_page()
    open_settled(page, f"{console.url}/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()

    page.click("#add-rule")
    page.click("#rule-save")  # empty name: the browser's own check keeps the dialog open
    expect(page.locator("#rule-dialog")).to_be_visible()
    assert_accessible(page, "/alerts rule dialog", within="#rule-dialog")
    page.fill("#rule-name", name)
    page.fill("#rule-email", "oncall@example.com, not-an-address")
    page.click("#rule-save")
    expect(page.locator("#rule-dialog [role=alert]")).to_contain_text("'not-an-address' is not an e-mail address")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#rule-dialog")).to_have_count(0)

    add_rule(page, name, hook, down_alias)
    row = page.locator(f'tr[data-rule="{name}"]')
    expect(row).to_contain_text("Error-rate spike")
    expect(row).to_contain_text(f"model alias {down_alias}")
    expect(row).to_contain_text(f"webhook http://127.0.0.1:{receiver.server_address[1]}/***")
    assert "e2e-secret-token" not in page.content()

    row.get_by_role("button", name=f"Send test {name}", exact=True).click()
    expect(page.locator("#alerts-notice")).to_contain_text("webhook ok (HTTP 200)", timeout=20_000)
    expect(page.locator("#alerts-notice")).to_contain_text("email failed (SMTP is not configured")
    assert receiver.titles.count("[TEST] Error-rate spike: test message") == 1

    fail_calls(console, down_alias, 3)
    page.wait_for_timeout(1000)  # the log writer flushes every 0.2 s in this session
    evaluate_now(console)
    assert f"[FIRING] Error-rate spike: model alias {down_alias}" in receiver.titles

    open_settled(page, f"{console.url}/alerts")
    fired = page.locator("#alert-events-table tbody tr").filter(has_text=name).first
    expect(fired).to_contain_text("firing")
    expect(fired).to_contain_text(f"model alias {down_alias}")
    expect(fired).to_contain_text("webhook ok (HTTP 200)")
    assert_accessible(page, "/alerts with a rule and a fired event")
    page.close()
