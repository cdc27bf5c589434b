"""Rate-limit analytics in the browser, on the session's real console: a key with an RPM limit of 3 is refused
(429) by the gateway through the official `openai` SDK, and a burst of calls with a key that does not exist is
refused (401). The page then shows the refusals in its chart and total, the key among the top consumers with
its refused count, a breach episode for `key:<id>|rpm` and 127.0.0.1 among the 401 bursts; it passes axe,
its range is a deep link, and its JSON export holds what it shows.

The gateway writes refused-credential counts every max(LLMC_LOG_FLUSH_INTERVAL_S, 1) seconds and the page
refreshes itself every 5 s, so figures are awaited, not assumed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.db.engine import make_engine, session
from llm_console.services import keys
from llm_console.services.limits_admin import RateLimits, put_limits
from tests.e2e.conftest import MODEL, Console, stat_number
from tests.e2e.test_accessibility import assert_accessible, open_settled

pytestmark = pytest.mark.browser

RPM = 3
REFUSED = 2  # calls made after the limit was reached
WRONG_KEY_CALLS = 45  # split across a minute boundary, one minute still holds at least 23: a burst (>= 20)
PROMPT = [{"role": "user", "content": "Count to three."}]
ACTOR = "throttle-analytics-e2e"
LIVE_WAIT_MS = 20_000  # the live refresh runs every 5 s, then queries


@dataclass(frozen=True)
class Throttled:
    key_id: int
    name: str


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def throttled(console: Console, engine: Engine) -> Throttled:
    """A fresh key limited to RPM calls a minute, called until it has been refused REFUSED times; then a burst
    of calls with a key the gateway has never issued, from 127.0.0.1."""
    name = f"throttle-{secrets.token_hex(3)}"
    minted = keys.create_key(engine, name=name, actor=ACTOR)
    with session(engine) as s:
        put_limits(s, "key", minted.id, RateLimits(rpm=RPM), actor=ACTOR)
        s.commit()
    admitted, refused = 0, 0
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=minted.secret, max_retries=0) as client:
        for _ in range(RPM + REFUSED + 3):
            try:
                client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=4)
                admitted += 1
            except openai.RateLimitError as exc:
                assert exc.response.headers["x-llmc-limit"] == "rpm", exc.response.headers
                assert exc.response.headers["x-llmc-limit-entity"] == f"key:{minted.id}"
                refused += 1
                if refused == REFUSED:
                    break
    assert (admitted, refused) == (RPM, REFUSED)

    port = console.url.rsplit(":", 1)[1]
    wrong = "sk-llmc-" + "0" * 40
    with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=wrong, max_retries=0) as client:
        for _ in range(WRONG_KEY_CALLS):
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=4)
    return Throttled(minted.id, name)


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def number(cell: Locator) -> int:
    return int(cell.inner_text().replace(",", ""))


def total_of(cells: Locator, want: int, timeout_s: float = LIVE_WAIT_MS / 1000) -> None:
    """Wait until the cells (one per matching row) add up to `want`: calls that straddle an hour boundary
    make two one-hour episodes, which is right, so the test adds them up rather than expect one row."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = cells.all_inner_texts()
        total = sum(int(t.replace(",", "")) for t in texts if t.strip())
        if total == want:
            return
        assert time.monotonic() < deadline, f"cells {texts} add up to {total}, not {want}"
        time.sleep(0.5)


def test_refusals_consumers_breaches_and_401_bursts_show_on_the_page(
    page: Page, console: Console, throttled: Throttled
) -> None:
    open_settled(page, f"{console.url}{routes.ANALYTICS_LIMITS}?range=1h")
    expect(page.get_by_role("heading", name="Rate-limit analytics")).to_be_visible()
    expect(page.get_by_role("radio", name="Last hour")).to_have_attribute("aria-checked", "true")

    key_row = page.locator(f'#top-keys [data-consumer="key:{throttled.key_id}"]')
    expect(key_row.locator("[data-cell=refused]")).to_have_text(str(REFUSED), timeout=LIVE_WAIT_MS)
    expect(key_row.locator("[data-cell=requests]")).to_have_text(str(RPM + REFUSED))  # refused calls are calls too
    expect(key_row).to_contain_text(throttled.name)
    expect(key_row.locator("[data-cell=refused_share]")).to_have_text(f"{REFUSED / (RPM + REFUSED) * 100:.1f}%")

    assert stat_number(page, "Refused calls (429)") >= REFUSED  # other tests may have been refused too
    assert stat_number(page, "Request limits (RPM, RPD)") >= REFUSED
    expect(page.locator("#chart-throttled .recharts-bar-rectangle path").first).to_be_visible()

    episodes = page.locator(f'#breach-timeline [data-throttle="key:{throttled.key_id}|rpm"]')
    expect(episodes.first).to_contain_text("requests per minute (RPM)", timeout=LIVE_WAIT_MS)
    total_of(episodes.locator("[data-cell=refusals]"), REFUSED)

    burst = page.locator('#burst-table [data-address="127.0.0.1"]')
    expect(burst).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(burst.locator("[data-cell=total]")).to_have_text(re.compile(r"^[\d,]+$"))
    assert number(burst.locator("[data-cell=total]")) >= WRONG_KEY_CALLS
    assert number(burst.locator("[data-cell=burst_refusals]")) >= 20
    assert stat_number(page, "Refused credentials (401)") >= WRONG_KEY_CALLS
    expect(page.locator("#abuse-method")).to_contain_text("robust z-score")

    assert_accessible(page, routes.ANALYTICS_LIMITS)


def test_the_range_is_a_deep_link_and_the_export_holds_the_tables(
    page: Page, console: Console, throttled: Throttled
) -> None:
    open_settled(page, f"{console.url}{routes.ANALYTICS_LIMITS}?range=7d")
    expect(page.get_by_role("radio", name="Last 7 days")).to_have_attribute("aria-checked", "true")
    key_row = page.locator(f'#top-keys [data-consumer="key:{throttled.key_id}"]')
    expect(key_row.locator("[data-cell=refused]")).to_have_text(str(REFUSED), timeout=LIVE_WAIT_MS)

    page.get_by_role("radio", name="Last 24 hours").click()
    page.wait_for_url(re.compile(r"[?&]range=24h(&|$)"))
    expect(page.get_by_role("radio", name="Last 24 hours")).to_have_attribute("aria-checked", "true")
    expect(key_row.locator("[data-cell=refused]")).to_have_text(str(REFUSED), timeout=LIVE_WAIT_MS)

    with page.expect_download() as download:
        page.get_by_role("button", name="JSON").click()
    assert download.value.suggested_filename == "analytics-limits.json"  # the route's "/" as "-": no path in it
    exported = json.loads(Path(download.value.path()).read_text())
    assert any(r["throttle"] == f"key:{throttled.key_id}|rpm" for r in exported["episodes"])
    assert any(r["address"] == "127.0.0.1" for r in exported["bursts"])
    assert {r["id"]: r["refused"] for r in exported["top_keys"]}[str(throttled.key_id)] == str(REFUSED)


def test_the_limits_page_links_to_the_analytics(page: Page, console: Console) -> None:
    open_settled(page, f"{console.url}{routes.LIMITS}")
    page.locator("#limits-analytics-link").click()
    page.wait_for_url(re.compile(re.escape(routes.ANALYTICS_LIMITS) + r"(\?|$)"))
    expect(page.get_by_role("heading", name="Rate-limit analytics")).to_be_visible()
