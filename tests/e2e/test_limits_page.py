"""Limits & budgets in the browser: an admin sets a small daily budget on a user through the page's form, the
test spends against it through the gateway with the official `openai` SDK and a key of that user, and the
spend bar and status move OK → Warning → Exceeded without a reload, on the admin's table and on the user's
own "My usage". The dialog and the page pass axe; a member sees no organization table.

Each call costs about the same (the same prompt, max_tokens=8), so the budget is set
to 2.4 calls from one measured call: one call is 42% (OK), two are 83% (Warning), three 125% (Exceeded).
The gateway may refuse calls once the budget is exceeded (429): that is tolerated after Exceeded only.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.models import RequestLog
from llm_console.services import deployments, keys, providers, users
from llm_console.services.deployment_admin import DeploymentFields, create_deployment
from llm_console.settings import Settings
from tests.e2e.conftest import Console
from tests.e2e.test_accessibility import assert_accessible, open_settled
from tests.e2e.test_config_journey import simulator_url

pytestmark = pytest.mark.browser

BUDGET_CALLS = 2.4  # the daily budget, in calls: 1 call 42% (ok), 2 calls 83% (warning), 3 calls 125% (exceeded)
PROMPT = [{"role": "user", "content": "How much does this cost?"}]
ACTOR = "limits-e2e"


@dataclass(frozen=True)
class Holder:
    """A member with a key of their own, and an alias whose every call costs the same."""

    user_id: int
    email: str
    password: str
    secret: str
    alias: str


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def holder(console: Console, engine: Engine) -> Holder:
    tag = secrets.token_hex(3)
    alias = f"limits-{tag}"
    box = SecretBox(Settings(data_dir=console.data_dir).resolved_secret_key())
    provider = providers.create_provider(
        engine, box, name=alias, kind="openai", base_url=simulator_url(console), allow_private=True, actor=ACTOR
    )
    create_deployment(engine, provider.id, DeploymentFields("llama-3.1-8b-instruct", alias, alias), actor=ACTOR)
    deployments.set_price(engine, model=alias, input_per_mtok=5_000, output_per_mtok=0, actor=ACTOR)
    email, password = f"limits-{tag}@localhost", f"limits-{tag}-password"
    user = users.create_user(engine, email=email, password=password, role="member", actor=ACTOR)
    assert user.id is not None
    minted = keys.create_key(engine, name=f"limits-{tag}", actor=ACTOR, user_id=user.id)
    return Holder(user.id, email, password, minted.secret, alias)


def call(console: Console, secret: str, alias: str, timeout_s: float = 30) -> str:
    """One chat call; waits for the gateway's next route refresh to learn a new alias. Returns the request id."""
    deadline = time.monotonic() + timeout_s
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=secret, max_retries=0) as client:
        while True:
            try:
                raw = client.chat.completions.with_raw_response.create(model=alias, messages=PROMPT, max_tokens=8)
                return raw.headers["x-request-id"]
            except openai.NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


# The live refresh runs every 5 s (LLMC_DASHBOARD_LIVE_INTERVAL_S) and then queries: a 5 s wait can miss it.
LIVE_WAIT_MS = 20_000


def logged_cost(engine: Engine, request_id: str, timeout_s: float = 15) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        with session(engine) as s:
            row = s.get(RequestLog, request_id)
        if row is not None:
            return row.cost_usd
        assert time.monotonic() < deadline, f"request {request_id} was never logged"
        time.sleep(0.2)


def status_of(row: Locator) -> Locator:
    return row.locator("[data-cell=status] [data-status]")


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


@pytest.fixture
def member_page(browser: Browser, console: Console, holder: Holder) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    p = context.new_page()
    p.goto(f"{console.url}{routes.LOGIN}")
    p.fill("#email", holder.email)
    p.fill("#password", holder.password)
    p.click("button[type=submit]")
    p.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
    p.goto(f"{console.url}{routes.LIMITS}")
    expect(p.get_by_role("heading", name="Limits & budgets")).to_be_visible()
    yield p
    context.close()


def test_spend_moves_the_bars_from_ok_to_warning_to_exceeded(
    page: Page, member_page: Page, console: Console, engine: Engine, holder: Holder
) -> None:
    one_call = logged_cost(engine, call(console, console.key, holder.alias))  # the organization's key: not counted
    assert one_call > 0, "the alias should be priced"
    budget = float(f"{one_call * BUDGET_CALLS:.12f}")  # not rounded to cents: a call may cost far less

    open_settled(page, f"{console.url}{routes.LIMITS}")
    page.click("#limits-new")
    dialog = page.locator("#limits-dialog")
    expect(dialog).to_be_visible()
    assert_accessible(page, f"{routes.LIMITS} edit dialog", within="#limits-dialog")
    dialog.locator("#limits-name").fill("nobody-here@localhost")
    dialog.locator("#limits-daily-usd").fill("1e99")
    page.click("#limits-save")
    expect(dialog.get_by_role("alert")).to_contain_text("daily budget must be between")  # readable, stays open
    dialog.locator("#limits-daily-usd").fill(f"{budget:.12f}")
    page.click("#limits-save")
    expect(dialog.get_by_role("alert")).to_contain_text("No user has the email")
    dialog.locator("#limits-name").fill(holder.email)
    page.click("#limits-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#limits-notice")).to_contain_text(f"Saved the limits of {holder.email}")

    entity = f'[data-entity="user:{holder.user_id}"]'
    row = page.locator(f"#all-limits {entity}")
    mine = member_page.locator(f"#my-usage {entity}")
    member_page.reload()  # the member's page opened before the budget existed; from here on, live updates only
    expect(row).to_contain_text("$0.00 of")
    expect(status_of(row)).to_have_attribute("data-status", "ok")
    expect(member_page.locator("#my-usage")).to_contain_text("Today (UTC)")
    expect(member_page.get_by_role("heading", name="All limits & budgets")).to_have_count(0)

    spent = 0.0
    for calls, status in ((1, "ok"), (2, "warning"), (3, "exceeded")):
        try:
            spent += logged_cost(engine, call(console, holder.secret, holder.alias))
        except openai.RateLimitError as exc:
            pytest.fail(f"call {calls} was refused before the budget was exceeded: {exc}")
        share = f"({spent / budget * 100:.0f}%)"  # about 42%, 83%, 125%: the real costs decide
        for view in (row, mine):  # no reload: the pages refresh themselves
            expect(status_of(view)).to_have_attribute("data-status", status, timeout=LIVE_WAIT_MS)
            expect(view).to_contain_text(share, timeout=LIVE_WAIT_MS)
    try:  # past the budget the gateway may refuse; the page must keep saying Exceeded either way
        call(console, holder.secret, holder.alias)
    except openai.RateLimitError:
        pass
    expect(status_of(mine)).to_have_attribute("data-status", "exceeded", timeout=LIVE_WAIT_MS)


def test_the_admin_clears_a_budget_and_sets_the_global_default(page: Page, console: Console, holder: Holder) -> None:
    open_settled(page, f"{console.url}{routes.LIMITS}?q={holder.email}")
    row = page.locator(f'#all-limits [data-entity="user:{holder.user_id}"]')
    row.get_by_role("button", name=re.compile("^Edit limits of")).click()
    dialog = page.locator("#limits-dialog")
    expect(dialog.locator("#limits-editing")).to_have_text(holder.email)
    expect(dialog.locator("#limits-daily-usd")).not_to_have_value("")
    dialog.locator("#limits-clear").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#limits-notice")).to_contain_text(f"Cleared the limits of {holder.email}")
    expect(row).to_have_count(0)

    page.click("#default-edit")
    expect(dialog.locator("#limits-daily-usd")).to_have_count(0)  # the default holds rate limits only
    dialog.locator("#limits-rpm").fill("1e13")
    page.click("#limits-save")
    expect(dialog.get_by_role("alert")).to_contain_text("RPM must be a whole number")
    dialog.locator("#limits-rpm").fill("100000")
    page.click("#limits-save")
    expect(page.locator("#default-limits")).to_have_text("100k RPM")
    page.click("#default-edit")
    page.locator("#limits-dialog #limits-clear").click()  # leave the session's other tests unlimited
    expect(page.locator("#default-limits")).to_contain_text("No global default")
