"""axe-core on every console page the sidebar links to, the sign-in page and an opened request dialog.

The pages come from the sidebar's own `NAV` list, read at collection time, so a new page is checked the
day it is linked. Serious and critical violations fail; the report names rule, impact and elements.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect

from llm_console import routes
from llm_console.components.layout import NAV
from tests.e2e.conftest import MODEL, Console, sign_in

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")
AXE = Axe()
HYDRATED = '"is_hydrated_rx_state_":true'  # the last update Reflex 0.10 sends after a page's on_load events
STILL = """() => {
    const text = document.body.innerText;
    const still = window.__axeLastText === text;
    window.__axeLastText = text;
    return still;
}"""


@pytest.fixture(scope="module")
def admin(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """Signed in, with a viewport tall enough to keep most of each page on screen while axe judges its colours."""
    context = browser.new_context(viewport={"width": 1400, "height": 3000})
    context.set_default_timeout(30_000)
    sign_in(context, console)
    yield context
    context.close()


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def report(where: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{len(violations)} serious or critical accessibility violation(s) on {where}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:10]:
            target = " ".join(str(t) for t in node["target"])
            lines.append(f"    {target}\n      {node.get('html', '')[:240]}")
            summary = node.get("failureSummary") or ""
            lines.extend(f"      {line.strip()}" for line in summary.splitlines() if line.strip())
        if len(v["nodes"]) > 10:
            lines.append(f"    … and {len(v['nodes']) - 10} more")
    return "\n".join(lines)


# Colour contrast is measured on what is painted: a dialog still fading in has washed-out text. Wait for
# every finite animation (Radix's open transitions; spinners loop forever and are left out) to finish.
ANIMATIONS_SETTLED = """() => document.getAnimations().every(a => {
    const end = a.effect ? a.effect.getComputedTiming().endTime : 0;
    return end === Infinity || a.playState !== "running";
})"""


def assert_accessible(page: Page, where: str, within: str | None = None) -> None:
    page.wait_for_function(ANIMATIONS_SETTLED, timeout=10_000)
    results = AXE.run(page, context=within)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    minor = [f"{v['id']} ({v['impact']})" for v in results.response["violations"] if v["impact"] not in BLOCKING]
    if minor:
        print(f"\n{where}: minor axe findings: {', '.join(minor)}")
    assert not blocking, report(where, blocking)


def open_settled(page: Page, url: str) -> None:
    """Open `url` and wait until Reflex has hydrated it (on_load data in) and the rendered text holds still."""
    hydrated: list[bool] = []

    def watch(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: hydrated.append(HYDRATED in str(payload)))

    page.on("websocket", watch)
    try:
        page.goto(url)
        deadline = time.monotonic() + 30
        while not any(hydrated):
            assert time.monotonic() < deadline, f"{url}: Reflex never reported the page hydrated"
            page.wait_for_timeout(50)  # lets Playwright dispatch the socket's frames to `watch`
    finally:
        page.remove_listener("websocket", watch)
    expect(page.locator("h1").first).to_be_visible()
    page.wait_for_function(STILL, polling=300, timeout=15_000)


@pytest.mark.parametrize(
    ("label", "route"), [(label, route) for label, route, _icon, _role in NAV], ids=[r for _, r, _, _ in NAV]
)
def test_console_page_has_no_serious_violations(page: Page, console: Console, label: str, route: str) -> None:
    open_settled(page, f"{console.url}{route}")
    assert_accessible(page, f"{route} ({label})")


@pytest.mark.parametrize("route", [route for _label, route, _icon, _role in NAV])
def test_the_sidebar_tells_assistive_technology_the_current_page(page: Page, console: Console, route: str) -> None:
    page.goto(f"{console.url}{route}")
    expect(page.locator("h1").first).to_be_visible()
    current = page.locator('nav[aria-label="Main"] a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("href", route)


def model_deployment_id(console: Console) -> int:
    """The id of the deployment `MODEL` routes to, read from the console's database."""
    from sqlalchemy import select

    from llm_console.db.engine import make_engine
    from llm_console.db.models import AliasDeployment, ModelAlias

    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    try:
        with engine.connect() as conn:
            query = (
                select(AliasDeployment.deployment_id)  # type: ignore[call-overload]
                .join(ModelAlias, ModelAlias.id == AliasDeployment.alias_id)
                .where(ModelAlias.alias == MODEL)
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("route", [routes.FLEET_DEPLOYMENT, routes.FLEET_KV])
def test_fleet_pages_off_the_sidebar_have_no_serious_violations(page: Page, console: Console, route: str) -> None:
    query = f"?deployment={model_deployment_id(console)}" if route == routes.FLEET_DEPLOYMENT else ""
    open_settled(page, f"{console.url}{route}{query}")
    assert_accessible(page, f"{route}{query}")


def test_sign_in_page_has_no_serious_violations(browser: Browser, console: Console) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        open_settled(page, f"{console.url}{routes.LOGIN}")
        assert_accessible(page, routes.LOGIN)
    finally:
        context.close()


def test_an_opened_request_dialog_has_no_serious_violations(page: Page, console: Console) -> None:
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "Say *hello* in `code`."}], max_tokens=8
        )
    request_id = raw.headers["x-request-id"]
    open_settled(page, f"{console.url}{routes.LOGS}?model={MODEL}")
    page.get_by_role("button", name=f"Open request {request_id}", exact=True).click()
    dialog = page.locator("#request-detail")
    expect(dialog.locator("#trace-waterfall .span-row").first).to_be_visible()
    page.wait_for_function(STILL, polling=300)
    # Only the dialog: the page behind it is the /logs case above.
    assert_accessible(page, f"{routes.LOGS} request dialog, Trace tab", within="#request-detail")
    dialog.get_by_role("tab", name="Conversation").click()
    expect(dialog.locator("#conversation")).to_contain_text("assistant")
    assert_accessible(page, f"{routes.LOGS} request dialog, Conversation tab", within="#request-detail")
