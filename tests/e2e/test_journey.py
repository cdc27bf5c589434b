"""Browser journey: sign in, send a request with the openai SDK, watch the Overview count it live."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Console

pytestmark = pytest.mark.browser


def sign_in(page: Page, console: Console, password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{console.url}/")
    page.wait_for_url(re.compile(r".*/login/?(\?.*)?$"), timeout=30_000)
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", password)
    page.click("button[type=submit]")


def requests_card(page: Page) -> int:
    text = page.locator('[data-stat="Requests (24 h)"] .stat-value').inner_text(timeout=30_000)
    return int(text.replace(",", ""))


def test_wrong_password_shows_a_readable_message(browser: Browser, console: Console) -> None:
    page = browser.new_page()
    sign_in(page, console, password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password", timeout=30_000)
    page.close()


def test_sign_in_then_a_gateway_call_appears_live(browser: Browser, console: Console) -> None:
    page = browser.new_page()
    sign_in(page, console)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=30_000)
    # (the header; the Overview may list the same address among its top users)
    expect(page.locator("#signed-in-as")).to_have_text(ADMIN_EMAIL)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["llmc_session"]["httpOnly"] is True
    before = requests_card(page)

    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="e2e-model",
            messages=[{"role": "user", "content": "<script>alert(1)</script> hello"}],
            max_tokens=12,
        )
    assert reply.choices[0].message.content

    expect(page.locator('[data-stat="Requests (24 h)"] .stat-value')).to_have_text(f"{before + 1:,}", timeout=20_000)
    assert requests_card(page) == before + 1
    expect(page.get_by_role("cell", name="e2e-model").first).to_be_visible()
    page.close()


def test_sign_out_ends_the_session(browser: Browser, console: Console) -> None:
    page = browser.new_page()
    sign_in(page, console)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login/?$"), timeout=30_000)
    page.goto(f"{console.url}/")
    page.wait_for_url(re.compile(r".*/login/?$"), timeout=30_000)
    page.close()
