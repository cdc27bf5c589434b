"""Logs & traces in a browser: real gateway calls (some failing), then filter, open, export, deep-link, page."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import DOWN_MODEL, MODEL, Console, choose

pytestmark = pytest.mark.browser

XSS_PROMPT = 'Summarise <script>window.__xss=1</script> and <img src=x onerror="window.__xss=2"> for me.'
PAGE_ROWS = 50
MODEL_COL, STATUS_COL = 1, 3  # cell indexes in #logs-table rows


@dataclass(frozen=True)
class Traffic:
    ok: list[str]  # request ids of the calls that succeeded (the XSS one included)
    failed: list[str]  # request ids of the calls to the alias whose deployment is down
    xss: str
    session: str  # every call of this module carries it: other modules' calls to the same aliases stay out


SESSION = f"logs-journey-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def traffic(console: Console) -> Traffic:
    """Calls through the gateway with the official SDK; each answer's x-request-id names its log row."""
    ok, failed = [], []
    headers = {"X-LLMC-Session-Id": SESSION}
    with openai.OpenAI(
        base_url=f"{console.url}/v1", api_key=console.key, max_retries=0, default_headers=headers
    ) as client:
        for prompt in ("What is TCP?", "Name a prime.", XSS_PROMPT):
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=8
            )
            assert raw.parse().choices[0].message.content
            ok.append(raw.headers["x-request-id"])
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(model=DOWN_MODEL, messages=[{"role": "user", "content": "hi"}])
            assert caught.value.status_code >= 500
            failed.append(caught.value.response.headers["x-request-id"])
    return Traffic(ok, failed, ok[-1], SESSION)


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def table_ids(page: Page) -> list[str]:
    return page.locator("#logs-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.requestId)")


def wait_rows(page: Page, *, model: str | None = None, status: str | None = None, ids: Sequence[str] = ()) -> None:
    """Wait until the table is non-empty, every row matches `model`/`status`, and every id in `ids` is shown."""
    page.wait_for_function(
        """([modelCol, model, statusCol, status, ids]) => {
            const rows = [...document.querySelectorAll('#logs-table tbody tr')];
            const shown = new Set(rows.map(r => r.dataset.requestId));
            return rows.length > 0
                && rows.every(r => model === null || r.cells[modelCol].innerText.trim() === model)
                && rows.every(r => status === null || r.cells[statusCol].innerText.trim() === status)
                && ids.every(id => shown.has(id));
        }""",
        arg=[MODEL_COL, model, STATUS_COL, status, list(ids)],
        timeout=30_000,
    )


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_filters_chosen_in_the_ui_land_in_the_url_and_the_table(page: Page, console: Console, traffic: Traffic) -> None:
    page.goto(f"{console.url}/logs?session={traffic.session}")
    wait_rows(page, ids=traffic.ok + traffic.failed)
    assert sorted(table_ids(page)) == sorted(traffic.ok + traffic.failed)  # the session filter: these calls only

    choose(page, "#filter-model", DOWN_MODEL)
    page.wait_for_url(re.compile(rf"[?&]model={DOWN_MODEL}(&|$)"))
    wait_rows(page, model=DOWN_MODEL, status="error", ids=traffic.failed)
    assert sorted(table_ids(page)) == sorted(traffic.failed)

    choose(page, "#filter-status", "ok")
    page.wait_for_url(re.compile(r"[?&]status=ok(&|$)"))
    assert query(page.url)["model"] == DOWN_MODEL and query(page.url)["session"] == traffic.session
    expect(page.locator("#logs-empty")).to_be_visible()

    choose(page, "#filter-model", MODEL)
    page.wait_for_url(re.compile(rf"[?&]model={MODEL}(&|$)"))
    assert query(page.url)["status"] == "ok"
    wait_rows(page, model=MODEL, status="ok", ids=traffic.ok)
    assert set(table_ids(page)).isdisjoint(traffic.failed)
    expect(page.locator("#filter-model")).to_have_text(MODEL)
    expect(page.locator("#filter-status")).to_have_text("ok")


def test_an_opened_request_shows_its_trace_and_an_inert_conversation(
    page: Page, console: Console, traffic: Traffic
) -> None:
    page.goto(f"{console.url}/logs?model={MODEL}")
    wait_rows(page, model=MODEL, ids=[traffic.xss])
    page.get_by_role("button", name=f"Open request {traffic.xss}", exact=True).click()
    page.wait_for_url(re.compile(rf"[?&]id={traffic.xss}(&|$)"))
    dialog = page.locator("#request-detail")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(traffic.xss)

    spans = dialog.locator("#trace-waterfall .span-row")
    expect(spans.first).to_be_visible()
    labels = spans.evaluate_all("rows => rows.map(r => r.innerText)")
    assert len(labels) >= 3, labels
    assert labels[0].startswith("auth") and labels[1].startswith("route"), labels
    assert any(label.startswith("upstream #1") for label in labels), labels

    dialog.get_by_role("tab", name="Conversation").click()
    conversation = dialog.locator("#conversation")
    expect(conversation).to_contain_text("<script>window.__xss=1</script>")
    expect(conversation).to_contain_text('<img src=x onerror="window.__xss=2">')
    assert conversation.locator("script, img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    dialog.get_by_role("tab", name="Request body").click()
    expect(dialog.get_by_role("tabpanel")).to_contain_text('"content": "Summarise <script>')
    assert page.evaluate("typeof window.__xss") == "undefined"

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    page.wait_for_url(lambda url: "id=" not in url)


def test_a_failed_request_shows_its_error_and_its_trace(page: Page, console: Console, traffic: Traffic) -> None:
    failed = traffic.failed[0]
    page.goto(f"{console.url}/logs?id={failed}")
    dialog = page.locator("#request-detail")
    expect(dialog).to_contain_text(failed)
    expect(dialog).to_contain_text(DOWN_MODEL)
    expect(dialog.locator(".rt-CalloutRoot")).to_contain_text(re.compile(r"deployment|upstream|reach", re.IGNORECASE))
    labels = dialog.locator("#trace-waterfall .span-row")
    expect(labels.first).to_contain_text("auth")
    expect(labels.nth(1)).to_contain_text("route")


def test_csv_export_holds_the_rows_of_the_filtered_table(
    page: Page, console: Console, traffic: Traffic, tmp_path: Path
) -> None:
    page.goto(f"{console.url}/logs?model={DOWN_MODEL}&status=error&session={traffic.session}")
    wait_rows(page, model=DOWN_MODEL, status="error", ids=traffic.failed)
    href = page.locator("#export-csv").get_attribute("href") or ""
    expected = {"model": DOWN_MODEL, "status": "error", "session": traffic.session, "format": "csv"}
    assert expected.items() <= query(href).items()

    with page.expect_download() as info:
        page.locator("#export-csv").click()
    download = info.value
    assert download.failure() is None
    target = tmp_path / "requests.csv"
    download.save_as(target)
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows, target.read_text()[:2000]
    assert {r["id"] for r in rows} == set(table_ids(page)) == set(traffic.failed)
    assert {(r["alias"], r["status"]) for r in rows} == {(DOWN_MODEL, "error")}


def test_a_deep_link_opened_in_a_fresh_page_applies_its_filters(
    admin: BrowserContext, console: Console, traffic: Traffic
) -> None:
    fresh = admin.new_page()
    try:
        fresh.goto(f"{console.url}/logs?model={DOWN_MODEL}&status=error&range=7d&session={traffic.session}")
        wait_rows(fresh, model=DOWN_MODEL, status="error", ids=traffic.failed)
        expect(fresh.locator("#filter-model")).to_have_text(DOWN_MODEL)
        expect(fresh.locator("#filter-status")).to_have_text("error")
        expect(fresh.get_by_role("radio", name="Last 7 days")).to_have_attribute("aria-checked", "true")
        assert sorted(table_ids(fresh)) == sorted(traffic.failed)
    finally:
        fresh.close()


def test_older_moves_to_the_next_page_of_rows(page: Page, console: Console, traffic: Traffic) -> None:
    page.goto(f"{console.url}/logs?range=7d")
    wait_rows(page, ids=traffic.ok)
    newest = table_ids(page)
    assert len(newest) == PAGE_ROWS

    page.get_by_role("button", name="Older").click()
    page.wait_for_url(re.compile(r"[?&]cursor="))
    page.wait_for_function(
        "first => [document.querySelector('#logs-table tbody tr')].some(r => r && r.dataset.requestId !== first)",
        arg=newest[0],
    )
    older = table_ids(page)
    assert len(older) == PAGE_ROWS
    assert set(older).isdisjoint(newest)
    assert query(page.url)["range"] == "7d"

    page.get_by_role("button", name="Newest").click()
    page.wait_for_url(lambda url: "cursor=" not in url)
    wait_rows(page, ids=newest[:5])
    assert table_ids(page)[0] == newest[0]


HOSTILE = [
    {"q": "' OR 1=1; DROP TABLE requests; --"},
    {"q": "100%_done\\"},
    {"q": "x" * 5000},
    {"model": 'gpt\'" OR "1"="1', "status": "error"},
    {"min_latency": "-5", "key": "1 OR 1=1", "user": "²", "range": "forever", "res": "nanosecond"},
    {"range": "custom", "from": "9999-12-31T23:59", "to": "0001-01-01"},
]


@pytest.mark.parametrize("params", HOSTILE, ids=lambda p: ",".join(p)[:40])
def test_hostile_filters_give_a_page_never_an_error(
    page: Page, console: Console, traffic: Traffic, params: dict[str, str]
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    page.goto(f"{console.url}/logs?{query}")
    expect(page.get_by_role("heading", name="Logs & traces")).to_be_visible()
    expect(page.locator("#logs-table, #logs-empty")).to_be_visible()
    if "q" in params and "DROP" in params["q"]:
        expect(page.locator("#logs-empty")).to_be_visible()  # no body holds that text: no rows, no error
    assert errors == []
    page.goto(f"{console.url}/logs?range=7d")  # the log is still there
    expect(page.locator("#logs-table tbody tr").first).to_be_visible()
