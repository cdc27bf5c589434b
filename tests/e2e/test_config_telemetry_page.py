"""The Telemetry page: an admin points the OTLP and Langfuse exports at a real HTTP receiver on 127.0.0.1, tests
both, makes a gateway call with the openai SDK and watches the receiver get it and the cards turn Connected;
an operator sees the same status read-only, a viewer is refused; secrets never reach the browser; axe finds
nothing serious. The cards' own figures (status words, times, counts, sample rate) are checked by hand in
tests/services/test_telemetry_presenter.py.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine
from llm_console.services import telemetry_admin
from llm_console.settings import Settings
from llm_console.telemetry.convert import trace_id_for
from llm_console.telemetry.probe import TEST_SPAN
from tests.conftest import run_cli
from tests.e2e.conftest import MODEL, Console
from tests.e2e.test_accessibility import assert_accessible, open_settled
from tests.telemetry.receiver import PUBLIC_KEY, SECRET_KEY, Receiver, Running

OTLP_PATH, LANGFUSE_PATH = "/v1/traces", "/api/public/otel/v1/traces"
# Each process adds its counts to the shared status every 5 s and the page refreshes every 5 s; a busy machine.
LIVE_WAIT_MS = 45_000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The test stand-in for an OTLP collector and Langfuse (the key pair it accepts: PUBLIC_KEY, SECRET_KEY)."""
    found = Receiver()
    running = Running(found)
    try:
        yield found
    finally:
        running.stop()


@pytest.fixture
def console_db(console: Console) -> Iterator[tuple[Engine, SecretBox, Settings]]:
    settings = Settings(_env_file=None, data_dir=console.data_dir)  # type: ignore[call-arg]
    engine = make_engine(settings.database_url)
    try:
        yield engine, SecretBox(settings.resolved_secret_key()), settings
    finally:
        engine.dispose()


@pytest.fixture
def exports_off_afterwards(console_db: tuple[Engine, SecretBox, Settings], receiver: Receiver) -> Iterator[None]:
    """Whatever happens in the test, the console exports nowhere after it (the later tests share it)."""
    yield
    engine, box, settings = console_db
    common = {"enabled": False, "include_bodies": False, "sample_rate": 1.0}
    telemetry_admin.save_otlp(
        engine, box, settings, "telemetry-e2e", endpoint="", headers="", service_name="", **common
    )
    telemetry_admin.save_langfuse(
        engine, box, settings, "telemetry-e2e", host=receiver.url, public_key="", secret_key=None, **common
    )


def badge(page: Page, sink: str) -> Locator:
    return page.locator(f"#{sink}-card .sink-status")


def fact(page: Page, sink: str, name: str) -> Locator:
    return page.locator(f'#{sink}-card [data-fact="{name}"]')


def call_until_exported(console: Console, receiver: Receiver, paths: tuple[str, ...], timeout_s: float = 60) -> str:
    """One chat call; again every few seconds until one call's span reached every one of `paths` (each process
    reloads its exporters when it notices a saved change, within its route refresh interval of 5 s: a call
    made between the OTLP save being noticed and the Langfuse save being noticed goes to OTLP only).
    Returns the request id."""
    deadline = time.monotonic() + timeout_s
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0, timeout=30) as client:
        while True:
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "trace me"}], max_tokens=8
            )
            request_id = raw.headers["x-request-id"]
            raw.parse()
            wait_until = min(time.monotonic() + 6, deadline)
            while time.monotonic() < wait_until:
                trace_id = f"{trace_id_for(request_id):032x}"  # both sinks use the request id as the trace id
                if all(any(s.trace_id == trace_id for s in receiver.spans_at(path)) for path in paths):
                    return request_id
                time.sleep(0.2)
            assert time.monotonic() < deadline, f"no gateway call reached all of {paths} in {timeout_s} s"


@pytest.mark.browser
@pytest.mark.usefixtures("exports_off_afterwards")
def test_an_admin_points_both_exports_at_a_receiver_and_sees_them_connect(
    admin: BrowserContext, console: Console, receiver: Receiver
) -> None:
    token = f"e2e-otlp-{secrets.token_hex(8)}"
    page = admin.new_page()
    open_settled(page, f"{console.url}{routes.TELEMETRY}")
    expect(page.get_by_role("heading", name="Telemetry export", exact=True)).to_be_visible()
    expect(badge(page, "otlp")).to_have_text("Off")
    expect(badge(page, "langfuse")).to_have_text("Off")
    assert_accessible(page, routes.TELEMETRY)

    page.click("#otlp-edit")
    dialog = page.locator("#otlp-dialog")
    expect(dialog).to_be_visible()
    assert_accessible(page, f"{routes.TELEMETRY} OTLP dialog", within="#otlp-dialog")
    page.click("#otlp-enabled")
    page.fill("#otlp-endpoint", "http://169.254.169.254:4318")
    page.fill("#otlp-headers", f"Authorization=Bearer {token}")
    page.click("#otlp-save")
    expect(dialog.get_by_role("alert")).to_contain_text("link-local address")  # readable, and it stays open
    expect(page.locator("#otlp-endpoint")).to_have_value("http://169.254.169.254:4318")
    expect(page.locator("#otlp-headers")).to_have_value(f"Authorization=Bearer {token}")
    page.fill("#otlp-endpoint", receiver.url)
    page.click("#otlp-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#telemetry-notice")).to_contain_text("Saved the OpenTelemetry export (on).")
    expect(fact(page, "otlp", "target")).to_have_text(f"{receiver.url}{OTLP_PATH}")
    expect(fact(page, "otlp", "headers")).to_have_text("Authorization")
    expect(fact(page, "otlp", "source")).to_contain_text("set in the console")
    expect(badge(page, "otlp")).to_have_text("Waiting for data")

    page.click("#langfuse-edit")
    dialog = page.locator("#langfuse-dialog")
    expect(dialog).to_be_visible()
    page.click("#langfuse-enabled")
    page.fill("#langfuse-host", receiver.url)
    page.fill("#langfuse-public-key", PUBLIC_KEY)
    page.fill("#langfuse-secret-key", SECRET_KEY)
    page.click("#langfuse-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#telemetry-notice")).to_contain_text("Saved the Langfuse export (on).")
    expect(fact(page, "langfuse", "secret")).to_have_text("set")
    expect(fact(page, "langfuse", "public_key")).to_have_text(PUBLIC_KEY)
    page.click("#langfuse-edit")  # the stored secret is never sent back: an empty field that says so
    expect(page.locator("#langfuse-secret-key")).to_have_value("")
    expect(page.locator("#langfuse-secret-key")).to_have_attribute("placeholder", "set — leave empty to keep")
    page.locator("#langfuse-dialog").get_by_role("button", name="Cancel").click()
    expect(page.locator("#langfuse-dialog")).to_have_count(0)
    html = page.content()
    assert token not in html and SECRET_KEY not in html

    page.click("#otlp-test")
    expect(page.locator("#otlp-test-result")).to_contain_text("accepted a test span", timeout=30_000)
    assert any(s.name == TEST_SPAN for s in receiver.spans_at(OTLP_PATH))
    assert {h.get("authorization") for h in receiver.traces_posts(OTLP_PATH)} == {f"Bearer {token}"}
    page.click("#langfuse-test")
    expect(page.locator("#langfuse-test-result")).to_contain_text(
        "Keys valid for project 'test-project'", timeout=30_000
    )

    request_id = call_until_exported(console, receiver, (OTLP_PATH, LANGFUSE_PATH))
    span = next(s for s in receiver.spans_at(OTLP_PATH) if s.attributes.get("llm_console.request_id") == request_id)
    assert span.attributes["gen_ai.request.model"] == MODEL

    for sink in ("otlp", "langfuse"):  # no reload: the page refreshes itself
        expect(badge(page, sink)).to_have_text("Connected", timeout=LIVE_WAIT_MS)
        expect(fact(page, sink, "exported")).to_have_text(re.compile(r"^[1-9][\d,]*$"), timeout=LIVE_WAIT_MS)
        expect(fact(page, sink, "last_export")).to_contain_text("UTC")
    assert_accessible(page, f"{routes.TELEMETRY} with both sinks connected")

    page.click("#otlp-edit")
    page.click("#otlp-enabled")  # off again, through the form
    page.click("#otlp-save")
    expect(page.locator("#otlp-dialog")).to_be_hidden()
    expect(badge(page, "otlp")).to_have_text("Off")
    expect(fact(page, "otlp", "headers")).to_have_text("Authorization")  # the empty field kept them
    page.close()


def _signed_in(browser: Browser, console: Console, role: str) -> BrowserContext:
    email, password = f"telemetry-{role}@localhost", f"telemetry-{role}-password"
    done = run_cli(
        {**console.env, "TELEMETRY_PW": password},
        "create-admin",
        email,
        "--role",
        role,
        "--password-env",
        "TELEMETRY_PW",
    )
    assert done.returncode == 0 or "exists" in done.stderr, done.stderr
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{console.url}{routes.LOGIN}")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
    page.close()
    return context


@pytest.mark.browser
def test_an_operator_sees_the_status_read_only_and_a_viewer_is_refused(browser: Browser, console: Console) -> None:
    operator = _signed_in(browser, console, "operator")
    try:
        page = operator.new_page()
        open_settled(page, f"{console.url}{routes.TELEMETRY}")
        expect(page.locator("#otlp-card")).to_be_visible()
        expect(page.locator("#langfuse-card")).to_be_visible()
        expect(page.locator("#telemetry-ro")).to_contain_text("Read-only")
        for control in ("#otlp-edit", "#otlp-test", "#langfuse-edit", "#langfuse-test", "main input"):
            expect(page.locator(control)).to_have_count(0)
        expect(page.locator('nav[aria-label="Main"] a[aria-current="page"]')).to_have_attribute(
            "href", routes.TELEMETRY
        )
        assert_accessible(page, f"{routes.TELEMETRY} (operator)")
    finally:
        operator.close()

    viewer = _signed_in(browser, console, "viewer")
    try:
        page = viewer.new_page()
        open_settled(page, f"{console.url}{routes.TELEMETRY}")
        expect(page.locator("#telemetry-refused")).to_contain_text("Only operators and admins")
        expect(page.locator("#otlp-card")).to_have_count(0)
        expect(page.locator(f'nav[aria-label="Main"] a[href="{routes.TELEMETRY}"]')).to_have_count(0)
    finally:
        viewer.close()
