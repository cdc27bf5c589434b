"""A call's end user, session, tags and feedback in the Logs page's request detail, in a real browser."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import MODEL, Console
from tests.e2e.test_accessibility import assert_accessible

pytestmark = pytest.mark.browser


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def test_the_request_detail_shows_who_it_was_for_and_its_feedback(page: Page, console: Console) -> None:
    session = f"conv-{uuid.uuid4().hex[:8]}"
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Where is my order?"}],
            max_tokens=8,
            user="customer-4711",
            extra_headers={"X-LLMC-Session-Id": session, "X-LLMC-Tags": "support,prod"},
        )
        request_id = raw.headers["x-request-id"]
        other = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "And now?"}], max_tokens=8,
            extra_headers={"X-LLMC-Session-Id": session},
        ).headers["x-request-id"]  # fmt: skip
        client.post(
            "/feedback",
            cast_to=object,
            body={"request_id": request_id, "name": "helpfulness", "value": 4, "comment": "<b>right</b> answer"},
        )
        client.post("/feedback", cast_to=object, body={"session_id": session, "name": "outcome", "value": "resolved"})

    page.goto(f"{console.url}/logs?id={request_id}")
    dialog = page.locator("#request-detail")
    expect(dialog).to_contain_text(request_id)
    facts = dialog.locator("#detail-attribution")
    expect(facts).to_contain_text("customer-4711")
    expect(facts).to_contain_text("prod, support")
    dialog.get_by_role("tab", name="Feedback").click()
    rows = dialog.locator("#feedback-scores .score-row")
    expect(rows).to_have_count(2)
    texts = rows.evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    by_name = {t[0]: t for t in texts}
    assert by_name["helpfulness"][1:5] == ["4", "this request", "<b>right</b> answer", "API"], texts
    assert by_name["outcome"][1:3] == ["resolved", "its session"], texts
    assert dialog.locator("#feedback-scores b").count() == 0  # a comment is text, never markup
    assert_accessible(page, "/logs request detail with feedback", within="#request-detail")

    # the session links to all of its calls
    dialog.locator("#detail-session").click()
    page.wait_for_url(re.compile(rf"[?&]session={session}(&|$)"))
    page.wait_for_function(
        "ids => { const shown = [...document.querySelectorAll('#logs-table tbody tr')].map(r => r.dataset.requestId);"
        " return shown.length === 2 && ids.every(id => shown.includes(id)); }",
        arg=[request_id, other],
        timeout=30_000,
    )

    page.goto(f"{console.url}/logs?id={other}")
    dialog = page.locator("#request-detail")
    expect(dialog).to_contain_text(other)
    dialog.get_by_role("tab", name="Feedback").click()
    expect(dialog.locator("#feedback-scores .score-row")).to_have_count(1)  # only the session's score
    expect(dialog.locator("#feedback-scores")).to_contain_text("its session")
