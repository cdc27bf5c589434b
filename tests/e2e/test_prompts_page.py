"""Prompts in the browser, on the session's console: an admin creates a prompt in the dialog, adds a version
prefilled from the first, sees the diff mark the changed lines, moves the production label to the new version,
then a real `openai` SDK call that names the prompt (no label: production) is rendered from that version and
the version's calls figure rises on the open page. A member may move other labels but is told why production
is refused; a viewer reads the page without any control that writes. axe checks the list, the detail page and
both dialogs.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console import routes
from llm_console.db.engine import make_engine, session
from llm_console.db.models import RequestLog
from llm_console.db.prompt_tables import Prompt, PromptVersion
from tests.conftest import run_cli
from tests.e2e.conftest import MODEL, Console
from tests.e2e.test_accessibility import assert_accessible, open_settled

pytestmark = pytest.mark.browser

LIVE_WAIT_MS = 30_000  # the log writer's flush plus a live refresh (every 5 s), with room for a busy machine
SYSTEM = "You help the customers of {{ product }}."
FIRST = "Say hello to {{ who }}."
SECOND = "Say hello to {{ who }}, warmly."


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def name() -> str:
    return f"e2e/greeting-{secrets.token_hex(3)}"


def detail_url(console: Console, name: str) -> str:
    return f"{console.url}{routes.PROMPT_DETAIL}?{urlencode({'name': name})}"


def signed_in(browser: Browser, console: Console, role: str) -> BrowserContext:
    """A fresh browser context signed in as a new user of `role`."""
    email, password = f"prompts-{role}-{secrets.token_hex(3)}@localhost", f"prompts-{role}-password"
    env = {**console.env, "PROMPTS_PW": password}
    done = run_cli(env, "create-admin", email, "--role", role, "--password-env", "PROMPTS_PW")
    assert done.returncode == 0, done.stderr
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{console.url}{routes.LOGIN}")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
    page.close()
    return context


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def version_id(engine: Engine, name: str, number: int) -> int:
    with session(engine) as s:
        prompt = s.exec(select(Prompt).where(Prompt.name == name)).one()
        row = s.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id, PromptVersion.version == number)
        ).one()
    assert row.id is not None
    return row.id


def logged(engine: Engine, request_id: str, timeout_s: float = 15) -> RequestLog:
    deadline = time.monotonic() + timeout_s
    while True:
        with session(engine) as s:
            row = s.get(RequestLog, request_id)
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"request {request_id} was never logged"
        time.sleep(0.2)


def test_write_diff_promote_and_call_a_prompt(page: Page, console: Console, engine: Engine, name: str) -> None:
    open_settled(page, f"{console.url}{routes.PROMPTS}")
    assert_accessible(page, routes.PROMPTS)
    page.click("#prompt-new")
    dialog = page.locator("#prompt-editor")
    expect(dialog).to_be_visible()
    assert_accessible(page, f"{routes.PROMPTS} new prompt dialog", within="#prompt-editor")
    dialog.locator("#prompt-name").fill(name)
    dialog.locator("#prompt-description").fill("Greets a customer <b>by name</b>")
    dialog.locator("#prompt-content-0").fill(SYSTEM)
    dialog.locator("#prompt-content-1").fill(FIRST)
    expect(dialog.locator("#prompt-variables")).to_contain_text("product, who")  # detected as typed
    dialog.locator("#prompt-config").fill("{temperature: 0.2}")
    page.click("#prompt-save")
    expect(dialog.get_by_role("alert")).to_contain_text("not valid JSON")  # readable, and the dialog stays open
    dialog.locator("#prompt-config").fill('{"temperature": 0.2}')
    dialog.locator("#prompt-commit").fill("first words")
    page.click("#prompt-save")

    page.wait_for_url(re.compile(re.escape(routes.PROMPT_DETAIL)))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_text("Greets a customer <b>by name</b>")).to_be_visible()  # inert text
    expect(page.locator("#prompt-versions [data-version='1']")).to_contain_text("first words")

    page.click("#prompt-new-version")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#prompt-content-0")).to_have_value(SYSTEM)  # prefilled from the version shown
    expect(dialog.locator("#prompt-config")).to_have_value('{\n  "temperature": 0.2\n}')
    dialog.locator("#prompt-content-1").fill(SECOND)
    dialog.locator("#prompt-commit").fill("warmer")
    page.click("#prompt-save")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Saved version 2")).to_be_visible()

    # the new version is shown and diffed against the one before it
    expect(page.locator("#prompt-version-view")).to_contain_text("Version 2 (latest)")
    expect(page.locator("#prompt-diff-summary")).to_have_text("1 line added, 1 line removed.")
    added, removed = page.locator("#prompt-diff [data-diff=added]"), page.locator("#prompt-diff [data-diff=removed]")
    expect(added).to_have_count(1)
    expect(added).to_contain_text(SECOND)
    expect(added).to_contain_text("+")
    expect(added).to_contain_text("added")  # said in words too, not by colour alone
    expect(removed).to_contain_text(FIRST)
    assert page.locator("#prompt-diff ins").count() == 1 and page.locator("#prompt-diff del").count() == 1
    assert_accessible(page, routes.PROMPT_DETAIL)

    page.click("#prompt-move-label")
    labels = page.locator("#label-dialog")
    expect(labels).to_be_visible()
    expect(labels.locator("#label-name")).to_have_value("production")
    assert_accessible(page, f"{routes.PROMPT_DETAIL} move label dialog", within="#label-dialog")
    page.click("#label-save")
    expect(labels).to_be_hidden()
    expect(page.locator("#prompt-labels")).to_contain_text("production v2")

    figure = page.locator("#prompt-figures [data-version='2'] [data-cell=calls]")
    expect(figure).to_have_text("0")
    v2 = version_id(engine, name, 2)
    variables = {"product": "Acme", "who": "{{ product }}"}  # user text holding a variable stays text
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[], max_tokens=8, extra_body={"prompt": {"name": name, "variables": variables}}
        )
    assert raw.http_response.status_code == 200 and raw.parse().choices
    row = logged(engine, raw.headers["x-request-id"])
    assert row.prompt_version_id == v2  # no label asked: production, which now points at version 2
    assert "Say hello to {{ product }}, warmly." in (row.request_body or "")
    expect(figure).to_have_text("1", timeout=LIVE_WAIT_MS)  # the open page refreshes itself
    expect(page.locator("#prompt-figures [data-version='1'] [data-cell=calls]")).to_have_text("0")

    figure.get_by_role("link").click()  # "see calls": the Logs page, filtered to this version over the same range
    expect(page).to_have_url(re.compile(r"/logs/?\?.*prompt="))
    expect(page.locator(f"[data-request-id='{row.id}']")).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(page.locator("#filter-prompt")).to_have_value(f"{name}@2")
    page.locator(f"[data-request-id='{row.id}'] .open-request").click()
    expect(page.locator("#detail-prompt")).to_have_text(f"{name} v2")

    open_settled(page, f"{console.url}{routes.PROMPTS}?{urlencode({'q': name})}")
    listed = page.locator(f"#prompt-table [data-prompt='{name}']")
    expect(listed).to_contain_text("production v2")
    expect(listed.locator("[data-cell=calls]")).to_have_text("1")


def test_members_are_told_why_production_is_refused(browser: Browser, console: Console, name: str) -> None:
    context = signed_in(browser, console, "member")
    try:
        page = context.new_page()
        open_settled(page, detail_url(console, name))
        page.click("#prompt-move-label")
        dialog = page.locator("#label-dialog")
        expect(dialog.locator("#label-name")).to_have_value("staging")
        expect(dialog).to_contain_text("Only operators and admins may move the production label.")
        dialog.locator("#label-name").fill("production")
        page.click("#label-save")
        expect(dialog.get_by_role("alert")).to_contain_text("Only operators and admins can set, move or remove")
        dialog.locator("#label-name").fill("staging")
        page.click("#label-save")
        expect(dialog).to_be_hidden()
        expect(page.locator("#prompt-labels")).to_contain_text("staging v2")
    finally:
        context.close()


def test_viewers_read_without_write_controls(browser: Browser, console: Console, name: str) -> None:
    context = signed_in(browser, console, "viewer")
    try:
        page = context.new_page()
        open_settled(page, f"{console.url}{routes.PROMPTS}")
        expect(page.locator("#prompt-table")).to_be_visible()
        expect(page.locator("#prompt-new")).to_have_count(0)
        open_settled(page, detail_url(console, name))
        expect(page.locator("#prompt-versions [data-version='2']")).to_contain_text("warmer")
        expect(page.locator("#prompt-version-view")).to_contain_text("Say hello to {{ who }}, warmly.")
        expect(page.locator("#prompt-new-version")).to_have_count(0)
        expect(page.locator("#prompt-move-label")).to_have_count(0)
        page.locator("#prompt-versions [data-version='1']").get_by_role("button").click()  # reading is allowed
        expect(page.locator("#prompt-version-view")).to_contain_text("Version 1")
    finally:
        context.close()
