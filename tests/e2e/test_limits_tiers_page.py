"""Limit tiers and spend administration in the browser, as an admin.

The admin creates the tiers Free (5 RPM, $2 a day) and Team (100 RPM) on /limits/tiers (a bad rank first: the
dialog says why), puts a fresh key on Free through the Assign dialog and sees the distribution count it, then
lowers Free's RPM to 1: the key's next call through the gateway (the official `openai` SDK) is refused at once,
and the Limits page's row shows "1 RPM" and the tier. A tier in use cannot be deleted. On that row the admin
resets the day's spend with a reason (the bar says since when; the reset is listed with its reason), raises the
daily budget by $3 for an hour (listed as active; the bar shows $2 + $3) and revokes it. The tiers page and
every dialog pass axe.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import openai
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.db.engine import make_engine
from llm_console.services import keys
from tests.e2e.conftest import MODEL, Console, choose
from tests.e2e.test_accessibility import assert_accessible, open_settled

pytestmark = pytest.mark.browser

TAG = secrets.token_hex(3)
FREE, TEAM = f"Free-{TAG}", f"Team-{TAG}"


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def key(engine: Engine) -> keys.MintedKey:
    return keys.create_key(engine, name=f"tiers-{TAG}", actor="tiers-e2e")


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def chat(console: Console, secret: str) -> None:
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=secret, max_retries=0) as client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4)


def save_tier(page: Page, values: dict[str, str]) -> None:
    dialog = page.locator("#tier-dialog")
    for field, value in values.items():
        dialog.locator(f"#tier-{field}").fill(value)
    page.click("#tier-save")


def tier_cell(page: Page, table: str, tier: str, cell: str) -> Locator:
    return page.locator(f'#{table} [data-tier="{tier}"] [data-cell="{cell}"]')


def test_tiers_assign_distribution_and_a_change_applied_at_once(
    page: Page, console: Console, key: keys.MintedKey
) -> None:
    open_settled(page, f"{console.url}{routes.LIMIT_TIERS}")
    assert_accessible(page, routes.LIMIT_TIERS)
    expect(page.locator("#suggestion-rule")).to_contain_text("refused at least 20 of their calls")

    page.click("#tier-new")
    dialog = page.locator("#tier-dialog")
    expect(dialog).to_be_visible()
    assert_accessible(page, f"{routes.LIMIT_TIERS} tier dialog", within="#tier-dialog")
    save_tier(page, {"name": FREE, "rank": "5000", "rpm": "5", "daily-usd": "2"})
    expect(dialog.get_by_role("alert")).to_contain_text("rank must be a whole number from 0 to 1000")
    save_tier(page, {"rank": "0"})
    expect(dialog).to_be_hidden()
    expect(page.locator("#tiers-notice")).to_contain_text(f"Saved the tier {FREE}")
    page.click("#tier-new")
    save_tier(page, {"name": TEAM, "rank": "10", "rpm": "100"})
    expect(dialog).to_be_hidden()
    expect(tier_cell(page, "tiers-table", TEAM, "rpm")).to_have_text("100")
    expect(tier_cell(page, "tiers-table", FREE, "daily_usd")).to_have_text("$2.00")

    page.click("#tier-assign")
    assign = page.locator("#assign-dialog")
    expect(assign).to_be_visible()
    assert_accessible(page, f"{routes.LIMIT_TIERS} assign dialog", within="#assign-dialog")
    assign.locator("#assign-name").fill("no-such-key")
    choose(page, "#assign-tier", FREE)
    page.click("#assign-save")
    expect(assign.get_by_role("alert")).to_contain_text("No active key is named")
    assign.locator("#assign-name").fill(key.prefix)
    page.click("#assign-save")
    expect(assign).to_be_hidden()
    expect(page.locator("#tiers-notice")).to_contain_text(f"is now on {FREE}")
    expect(tier_cell(page, "distribution-table", FREE, "keys")).to_have_text("1")
    expect(tier_cell(page, "distribution-table", FREE, "total")).to_have_text("1")
    expect(tier_cell(page, "distribution-table", TEAM, "total")).to_have_text("0")
    expect(tier_cell(page, "tiers-table", FREE, "keys")).to_have_text("1")
    expect(page.locator("#chart-tier-distribution .recharts-bar-rectangle").first).to_be_visible()  # a bar drawn

    chat(console, key.secret)  # 1 of Free's 5 per minute: served, and the key's limits are now cached
    page.get_by_role("button", name=f"Edit tier {FREE}").click()
    expect(dialog.locator("#tier-name")).to_have_value(FREE)
    save_tier(page, {"rpm": "1"})
    expect(tier_cell(page, "tiers-table", FREE, "rpm")).to_have_text("1")
    with pytest.raises(openai.RateLimitError):  # the next request sees 1 RPM, not the cached 5
        chat(console, key.secret)

    page.get_by_role("button", name=f"Delete tier {FREE}").click()
    page.click("#tier-delete-confirm")
    expect(page.locator("#tiers-error")).to_contain_text("is in use")
    expect(page.locator("#tiers-table").locator(f'[data-tier="{FREE}"]')).to_have_count(1)


def test_the_limits_row_shows_the_tier_and_spend_is_reset_and_raised(
    page: Page, console: Console, key: keys.MintedKey
) -> None:
    open_settled(page, f"{console.url}{routes.LIMITS}?q=tiers-{TAG}")
    row = page.locator(f'#all-limits [data-entity="key:{key.id}"]')
    expect(row).to_contain_text("1 RPM")
    expect(row.locator(f'[data-tier="{FREE}"]')).to_have_text(f"Tier: {FREE}")
    expect(row).to_contain_text("of $2.00")

    row.get_by_role("button", name=re.compile("^Reset spend of")).click()
    reset = page.locator("#spend-reset-dialog")
    expect(reset).to_be_visible()
    assert_accessible(page, f"{routes.LIMITS} reset dialog", within="#spend-reset-dialog")
    reset.locator("#spend-reason").fill("ab")
    page.click("#spend-reset-save")
    expect(reset.get_by_role("alert")).to_contain_text("reason of 3 to 500 characters")
    reset.locator("#spend-reason").fill("customer refund e2e")
    page.click("#spend-reset-save")
    expect(reset).to_be_hidden()
    expect(page.locator("#spend-notice")).to_contain_text("Reset the day's spend")
    expect(row.locator("[data-note=day]")).to_contain_text("since the reset at")
    expect(page.locator(f'#recent-resets [data-entity="key:{key.id}"]').first).to_contain_text("customer refund e2e")

    row.get_by_role("button", name=re.compile("^Raise the budget of")).click()
    raise_ = page.locator("#spend-raise-dialog")
    expect(raise_).to_be_visible()
    assert_accessible(page, f"{routes.LIMITS} raise dialog", within="#spend-raise-dialog")
    raise_.locator("#spend-amount").fill("3")
    raise_.locator("#spend-hours").fill("1")
    raise_.locator("#spend-reason").fill("launch day e2e")
    page.click("#spend-raise-save")
    expect(raise_).to_be_hidden()
    active = page.locator(f'#active-increases [data-entity="key:{key.id}"]')
    expect(active).to_contain_text("+$3.00")
    expect(active).to_contain_text("launch day e2e")
    expect(row.locator("[data-note=day]")).to_contain_text("incl. +$3.00 temporary")
    expect(row).to_contain_text("of $5.00")  # Free's $2 + $3 for the hour

    active.get_by_role("button", name=re.compile("^Revoke")).click()
    revoke = page.locator("#spend-revoke-dialog")
    expect(revoke).to_be_visible()
    revoke.locator("#spend-reason").fill("done early e2e")
    page.click("#spend-revoke-save")
    expect(revoke).to_be_hidden()
    expect(active).to_have_count(0)
    expect(row).to_contain_text("of $2.00")
