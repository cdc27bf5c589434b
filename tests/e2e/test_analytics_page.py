"""Analytics in the browser, on the session's console: real calls through the gateway (the openai SDK, with
X-LLMC-User / X-LLMC-Session-Id / X-LLMC-Tags) and feedback rows written into its database.

The console already holds eight days of seeded history and whatever earlier tests sent, so organization-wide
figures are checked as differences: read the page, make the calls, and the figure must grow by exactly what
was sent. Figures narrowed to this run's own tag are checked whole.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import openai
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.db.engine import make_engine, session
from llm_console.db.models import FeedbackScore
from tests.e2e.conftest import DOWN_MODEL, MODEL, Console, choose
from tests.e2e.test_accessibility import assert_accessible, open_settled

pytestmark = pytest.mark.browser

WAIT_MS = 45_000  # the log writer's flush plus a live refresh (5 s), with room for a busy machine
CALLS = 20  # enough calls on one arm for the A/B error-rate check below
USERS = 3  # distinct end users the calls are spread over
DOWN_CALLS = 5


@dataclass(frozen=True)
class Sent:
    tag: str
    users: list[str]
    prompt_tokens: int
    completion_tokens: int


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


@pytest.fixture(scope="module")
def run_tag() -> str:
    return f"e2e-analytics-{secrets.token_hex(3)}"


def client(console: Console, user: str, tag: str) -> openai.OpenAI:
    headers = {"X-LLMC-User": user, "X-LLMC-Session-Id": f"{user}-session", "X-LLMC-Tags": f"{tag},e2e"}
    return openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0, default_headers=headers)


def send(console: Console, tag: str) -> Sent:
    """CALLS chat calls on MODEL, round-robin over USERS fresh end users; the usage the gateway answered."""
    users = [f"{tag}-user-{i}" for i in range(USERS)]
    prompt = completion = 0
    clients = [client(console, u, tag) for u in users]
    try:
        for i in range(CALLS):
            done = clients[i % USERS].chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"analytics call {i}"}], max_tokens=8
            )
            assert done.usage is not None
            prompt += done.usage.prompt_tokens
            completion += done.usage.completion_tokens
    finally:
        for c in clients:
            c.close()
    return Sent(tag, users, prompt, completion)


def wait_out_the_hour() -> None:
    """The calls and both readings must fall in one UTC hour (one heatmap cell, one day of users)."""
    now = datetime.now(UTC)
    left = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now).total_seconds()
    if left < 120:
        time.sleep(left + 2)


def number(locator: Locator) -> int:
    expect(locator).to_have_text(re.compile(r"\d"))
    return int(locator.inner_text().replace(",", "").strip())


def users_today(page: Page) -> Locator:
    return page.locator('#users-cards [data-stat="Unique users today"] .stat-value')


def heat_cell(page: Page, when: datetime) -> Locator:
    return page.locator(f'#heatmap-grid tr[data-weekday="{when.weekday()}"] td[data-hour="{when.hour}"]')


def economics(page: Page, alias: str, column: str) -> Locator:
    return page.locator(f'#economics-table tr[data-row="{alias}"] [data-cell="{column}"]')


def economics_number(page: Page, alias: str, column: str) -> int:
    cell = economics(page, alias, column)
    return number(cell) if cell.count() else 0


def test_calls_reach_users_heatmap_economics_and_the_tag_filter(page: Page, console: Console, run_tag: str) -> None:
    wait_out_the_hour()
    now = datetime.now(UTC)
    open_settled(page, f"{console.url}{routes.ANALYTICS}?range=24h")
    expect(page.get_by_role("radio", name="Last 24 hours")).to_have_attribute("aria-checked", "true")
    users_before = number(users_today(page))
    cell_before = int(heat_cell(page, now).get_attribute("data-requests") or "0")
    requests_before = economics_number(page, MODEL, "requests")
    prompt_before = economics_number(page, MODEL, "prompt_tokens")
    completion_before = economics_number(page, MODEL, "completion_tokens")

    sent = send(console, run_tag)
    # The open page refreshes itself: no reload. USERS end users nobody named before, so today's unique users
    # grow by exactly USERS (3); this hour's cell and the model's requests by CALLS (20); its tokens by what the
    # gateway reported for those calls.
    expect(users_today(page)).to_have_text(f"{users_before + USERS:,}", timeout=WAIT_MS)
    expect(heat_cell(page, now)).to_have_attribute("data-requests", str(cell_before + CALLS), timeout=WAIT_MS)
    expect(economics(page, MODEL, "requests")).to_have_text(f"{requests_before + CALLS:,}", timeout=WAIT_MS)
    expect(economics(page, MODEL, "prompt_tokens")).to_have_text(f"{prompt_before + sent.prompt_tokens:,}")
    expect(economics(page, MODEL, "completion_tokens")).to_have_text(f"{completion_before + sent.completion_tokens:,}")
    peak = page.locator("#heatmap-peak")
    expect(peak).to_contain_text(re.compile(r"^Busiest hour: \w+days \d\d:00 to \d\d:00 UTC, [\d,]+ requests"))

    # The tag select narrows the traces to this run's calls alone: all CALLS of them, none failed, and the
    # tokens are prompt + completion of those calls.
    choose(page, "#filter-tag", f"{run_tag} ({CALLS})")
    page.wait_for_url(re.compile(rf"[?&]tag={run_tag}(&|$)"))
    assert "range=24h" in page.url
    traces = page.locator("#traces-cards")
    expect(traces.locator('[data-stat="Requests"] .stat-value')).to_have_text(f"{CALLS:,}")
    expect(traces.locator('[data-stat="Requests"]')).to_contain_text("0 errors")
    total_tokens = sent.prompt_tokens + sent.completion_tokens
    expect(traces.locator('[data-stat="Tokens"] .stat-value')).to_have_text(f"{total_tokens:,}")
    expect(page.locator("#chart-traces .recharts-bar-rectangle path").first).to_be_visible()

    # A model and a tag exclude each other: choosing the model drops the tag from the URL.
    choose(page, "#filter-model", MODEL)
    page.wait_for_url(re.compile(rf"[?&]model={MODEL}(&|$)"))
    assert "tag=" not in page.url and "range=24h" in page.url
    expect(page.locator("#filter-model")).to_have_text(MODEL)


@pytest.fixture(scope="module")
def feedback(engine: Engine, run_tag: str) -> Iterator[tuple[str, str]]:
    """Scores of this run for MODEL, written as the feedback endpoint writes them."""
    quality, verdict = f"{run_tag}-quality", f"{run_tag}-verdict"
    now = datetime.now(UTC)
    rows = [FeedbackScore(name=quality, value=v, alias=MODEL, session_id=run_tag, created_at=now) for v in (4, 5, 3, 4)]
    rows += [
        FeedbackScore(name=verdict, category=c, alias=MODEL, session_id=run_tag, created_at=now)
        for c in ("good", "good", "bad")
    ]
    with session(engine) as s:
        s.add_all(rows)
        s.commit()
    try:
        yield quality, verdict
    finally:
        with session(engine) as s:
            s.execute(delete(FeedbackScore).where(FeedbackScore.session_id == run_tag))  # type: ignore[arg-type]
            s.commit()


def test_feedback_scores_show_their_mean_interval_and_categories(
    page: Page, console: Console, feedback: tuple[str, str]
) -> None:
    quality, verdict = feedback
    open_settled(page, f"{console.url}{routes.ANALYTICS}?range=24h")
    rows = page.locator(f'#feedback-table tr[data-row="{MODEL}"]')
    numeric = rows.filter(has_text=quality)
    # values 4, 5, 3, 4: mean 16 / 4 = 4.00; sample variance (0 + 1 + 1 + 0) / 3 = 2/3;
    # half-width 1.96 * sqrt((2/3) / 4) = 1.96 * 0.40825 = 0.80017, so 3.20 to 4.80.
    expect(numeric.locator('[data-cell="n"]')).to_have_text("4")
    expect(numeric.locator('[data-cell="mean"]')).to_have_text("4.00")
    expect(numeric.locator('[data-cell="interval"]')).to_have_text("3.20 to 4.80")
    categorical = rows.filter(has_text=verdict)
    expect(categorical.locator('[data-cell="n"]')).to_have_text("3")
    expect(categorical.locator('[data-cell="categories"]')).to_have_text("bad 1 · good 2")


def down_calls(console: Console, run_tag: str) -> None:
    with client(console, f"{run_tag}-user-0", run_tag) as c:
        for _ in range(DOWN_CALLS):
            with pytest.raises(openai.APIError):
                c.chat.completions.create(model=DOWN_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4)


def arm_cell(page: Page, metric: str, arm: str) -> Locator:
    return page.locator(f'#ab-arms tr[data-row="{metric}"] [data-cell="{arm}"]')


def test_a_deep_link_restores_filters_and_the_ab_split(page: Page, console: Console, run_tag: str) -> None:
    down_calls(console, run_tag)
    url = f"{console.url}{routes.ANALYTICS}?range=30d&model={MODEL}&ab_kind=alias&a={MODEL}&b={DOWN_MODEL}"
    open_settled(page, url)
    expect(page.get_by_role("radio", name="Last 30 days")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#filter-model")).to_have_text(MODEL)
    expect(page.locator("#filter-ab_kind")).to_have_text("Models")
    expect(page.locator("#filter-a")).to_have_text(MODEL)
    expect(page.locator("#filter-b")).to_have_text(DOWN_MODEL)
    headers = page.locator("#ab-arms thead")
    expect(headers).to_contain_text(f"A: {MODEL}")
    expect(headers).to_contain_text(f"B: {DOWN_MODEL}")

    # Every call to the closed port fails: B's error rate is 100 %, over at least this test's calls.
    calls_a = number(arm_cell(page, "Calls", "a"))
    calls_b = number(arm_cell(page, "Calls", "b"))
    assert calls_a >= CALLS and calls_b >= DOWN_CALLS
    expect(arm_cell(page, "Errors", "b")).to_have_text(f"{calls_b:,}")
    expect(arm_cell(page, "Error rate (95% CI)", "b")).to_contain_text(re.compile(r"^100\.00% \("))
    rate_a = float(arm_cell(page, "Error rate (95% CI)", "a").inner_text().split("%")[0]) / 100
    # Newcombe's interval for B - A is [diff - sqrt((pB - lB)^2 + (uA - pA)^2), ...] with Wilson bounds. With
    # pB = 1 over nB >= 5 calls, lB >= 5 / (5 + 1.96^2) = 0.566; with nA >= 20 and pA <= 0.10, uA - pA <= 0.17.
    # So the lower bound is >= 0.90 - sqrt(0.434^2 + 0.17^2) = 0.90 - 0.466 > 0: the difference is significant.
    assert rate_a <= 0.10, f"{MODEL} failed more than expected: {rate_a:.2%}"
    verdict = page.locator('#ab-differences tr[data-row="Error rate"] [data-cell="verdict"]')
    expect(verdict).to_have_text("significant")
    expect(page.locator("#ab-method")).to_have_text(re.compile(r"\w+.*\."))
    assert_accessible(page, f"{routes.ANALYTICS} with an A/B split")

    # The same model on both arms is refused in words, and the figures go.
    choose(page, "#filter-b", MODEL)
    page.wait_for_url(re.compile(rf"[?&]b={MODEL}(&|$)"))
    expect(page.locator("#ab-error")).to_contain_text("Choose two different")
    expect(page.locator("#ab-arms")).to_have_count(0)
    # Comparing deployments instead forgets the models chosen as arms.
    choose(page, "#filter-ab_kind", "Deployments")
    page.wait_for_url(re.compile(r"[?&]ab_kind=deployment(&|$)"))
    assert "a=" not in page.url.split("?")[1] and "b=" not in page.url.split("?")[1]
    expect(page.locator("#filter-a")).to_be_visible()


def test_bad_filters_are_named_and_the_page_still_shows_figures(page: Page, console: Console) -> None:
    open_settled(page, f"{console.url}{routes.ANALYTICS}?range=5y&model={MODEL}&tag=e2e&ab_kind=coin")
    errors = page.get_by_role("status").filter(has_text="Unknown range")
    expect(errors).to_contain_text("Unknown range '5y': use one of 24h, 7d, 30d, 90d.")
    expect(errors).to_contain_text("Filter by a model or by a tag, not both: showing the model.")
    expect(errors).to_contain_text("Unknown comparison 'coin'")
    expect(page.get_by_role("radio", name="Last 7 days")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#filter-model")).to_have_text(MODEL)
    scope = page.locator("#filter-scope")  # says which panels a model or a tag narrows
    expect(scope).to_have_text(
        "A model narrows the traffic chart, the heatmap and the feedback panel; a tag narrows the traffic chart. "
        "The other panels cover all traffic in the range."
    )
    expect(page.locator("#analytics-economics table")).to_be_visible()


def test_exports_hold_the_tables_on_screen(page: Page, console: Console) -> None:
    open_settled(page, f"{console.url}{routes.ANALYTICS}?range=24h")
    requests = economics(page, MODEL, "requests").inner_text()
    with page.expect_download() as done:
        page.get_by_role("button", name="CSV").click()
    table = list(csv.DictReader(io.StringIO(done.value.path().read_text())))
    assert list(table[0])[:4] == ["model", "requests", "prompt_tokens", "completion_tokens"]
    assert [r["requests"] for r in table if r["model"] == MODEL] == [requests]
