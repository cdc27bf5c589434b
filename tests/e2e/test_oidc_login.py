"""Single sign-on in Debian Chromium: the console's SSO button, the real IdP's own login form (pytest-iam's
Canaille), back to the Overview signed in as the IdP user with the role its group maps to."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import OIDC_BUTTON, Console
from tests.e2e.test_accessibility import assert_accessible

pytestmark = pytest.mark.browser

IDP_PASSWORD = "e2e-idp-password-123"


def test_sso_sign_in_through_the_identity_provider(browser: Browser, console: Console) -> None:
    idp = console.idp
    username = f"sso-{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    person = idp.random_user(user_name=username, emails=[email], password=IDP_PASSWORD)
    idp.random_group(display_name="llm-operators", members=[person])

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{console.url}/login")
    expect(page.locator("#password")).to_be_visible()  # local sign-in stays on beside SSO
    page.get_by_role("link", name=OIDC_BUTTON).click()

    page.wait_for_url(re.compile(rf"^{re.escape(str(idp.url))}"))  # at the IdP now, on its own form
    page.fill("#login", username)
    page.click("button[type=submit]")
    page.fill("#password", IDP_PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_url(re.compile(rf"^{re.escape(console.url)}/?$"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()
    expect(page.get_by_text("operator", exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in context.cookies(console.url)}
    assert cookies["llmc_session"]["httpOnly"] is True
    assert "llmc_oidc" not in cookies  # the pending sign-in was used once and cleared
    context.close()

    log = console.log.read_text(errors="replace")
    secret = console.env["LLMC_OIDC_CLIENT_SECRET"]
    assert secret not in log and not re.search(r"eyJ[\w-]{10,}\.eyJ", log)  # no secret, no token in the log


def test_a_forged_callback_shows_a_readable_message(browser: Browser, console: Console) -> None:
    page = browser.new_page()
    page.goto(f"{console.url}/auth/oidc/callback?code=forged&state=forged")
    page.wait_for_url(re.compile(r".*/login/?\?error=oidc_state$"))
    expect(page.get_by_role("alert")).to_contain_text("sign in again")
    expect(page.get_by_role("link", name=OIDC_BUTTON)).to_be_visible()
    assert_accessible(page, "the sign-in page with single sign-on and an error")
    page.close()
