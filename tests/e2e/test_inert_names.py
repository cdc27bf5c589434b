"""Names containing `<script>`, `onerror=` and `javascript:` render inert everywhere they are listed.

Hostile names go straight into the console's database through the project's services (a provider, two
deployments, two aliases, a team, a user, a key, the audit entries that come with them, a catalog
description, and a Hugging Face repo the service refuses, then stored by hand), one real gateway call puts
them in the request log, and every page that lists them is opened as admin: nothing runs, no dialog opens,
no live `<img onerror>`, `<script>` or `javascript:` link is in the DOM, and each name reads as literal text.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import BrowserContext, Dialog, Locator, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.models import AuditEvent, ModelAlias, RequestLog, User
from llm_console.services import catalog, deployments, keys, providers, teams, users
from llm_console.services.catalog_info import CatalogError
from llm_console.services.deployment_admin import DeploymentFields, create_deployment
from llm_console.services.sessions import SessionUser
from llm_console.settings import Settings
from tests.e2e.conftest import ADMIN_EMAIL, Console
from tests.e2e.test_accessibility import open_settled
from tests.e2e.test_config_journey import simulator_url

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
JS = "javascript:window.__xss=1"
HF_ATTEMPT = "javascript:alert(1)"
PRICED = "qwen2.5-7b-instruct"  # a simulator model no other browser test calls
# Everything a page could have turned live: script-set globals, on* attributes, script text, javascript: URLs.
LIVE = """() => {
    const found = [];
    if (window.__xss !== undefined) found.push("window.__xss = " + window.__xss);
    for (const el of document.querySelectorAll("*")) {
        for (const attr of el.attributes) {
            if (attr.name.startsWith("on")) found.push(`<${el.tagName.toLowerCase()} ${attr.name}="${attr.value}">`);
            const url = ["href", "src", "action", "formaction", "xlink:href"].includes(attr.name);
            if (url && attr.value.replace(/[\\s\\x00-\\x1f]/g, "").toLowerCase().startsWith("javascript:")) {
                found.push(`<${el.tagName.toLowerCase()} ${attr.name}="${attr.value}">`);
            }
        }
    }
    for (const s of document.querySelectorAll("script")) {
        if (s.textContent.includes("__xss")) found.push("<script> " + s.textContent.slice(0, 80));
    }
    return found;
}"""


@dataclass(frozen=True)
class Hostile:
    tag: str
    provider: str
    deployment: str
    js_deployment: str
    alias: str
    js_alias: str
    team: str
    user: str
    email: str
    key: str
    description: str
    actor: str
    provider_secret: str


Reveal = Callable[[Page], tuple[Locator, list[str]]]
"""A click that shows more of a page, and where (and what) it then lists."""


@dataclass(frozen=True)
class View:
    """A page to open, what must read as literal text on it, and clicks that reveal more of it."""

    path: str
    shows: list[str]
    reveal: list[Reveal] = field(default_factory=list)


def hostile_names() -> Hostile:
    tag = secrets.token_hex(3)
    return Hostile(
        tag=tag,
        provider=f"{IMG}prov-{tag}",
        deployment=f"{SCRIPT}dep-{tag}",
        js_deployment=f"{JS}//dep-{tag}",
        alias=f"{IMG}alias-{tag}",
        js_alias=f"{JS}//alias-{tag}",
        team=f"{SCRIPT}team-{tag}",
        user=f"{IMG}user-{tag}",
        email=f"inert-{tag}@localhost",
        key=f"{JS} {SCRIPT}key-{tag}",
        description=f"{SCRIPT} [docs]({JS}) {IMG} desc-{tag}",
        actor=f"{SCRIPT}actor-{tag}",
        provider_secret=f"sk-inert-provider-secret-{tag}",
    )


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


def seed(console: Console, engine: Engine, h: Hostile) -> dict[str, int]:
    """Every hostile name, written through the services (each change audited), plus a hand-edited hf_repo;
    returns the id of the first audit event of each action the hostile actor made."""
    box = SecretBox(Settings(data_dir=console.data_dir).resolved_secret_key())
    with session(engine) as s:
        admin_row = s.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
    assert admin_row.id is not None
    admin = SessionUser(admin_row.id, admin_row.email, admin_row.name, admin_row.role)
    provider = providers.create_provider(
        engine,
        box,
        name=h.provider,
        kind="openai",
        base_url=simulator_url(console),
        api_key=h.provider_secret,
        allow_private=True,
        actor=h.actor,
    )
    # A price high enough to rank the hostile call among the top 20 of each cost breakdown.
    deployments.set_price(engine, model=PRICED, input_per_mtok=20_000, output_per_mtok=20_000, actor=h.actor)
    create_deployment(engine, provider.id, DeploymentFields(PRICED, h.deployment, h.alias), actor=h.actor)
    create_deployment(engine, provider.id, DeploymentFields(h.js_alias, h.js_deployment, h.js_alias), actor=h.actor)
    catalog.update_info(engine, h.alias, {"description": h.description}, actor=h.actor)
    with pytest.raises(CatalogError):
        catalog.update_info(engine, h.alias, {"hf_repo": HF_ATTEMPT}, actor=h.actor)
    with session(engine) as s:  # a row edited by hand: the pages must still never link it
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == h.js_alias)).one()
        row.info = {"hf_repo": HF_ATTEMPT, "description": h.description}
        s.add(row)
        s.commit()
    team = teams.create_team(engine, name=h.team, description=h.description, actor=admin)
    user = users.create_user(engine, email=h.email, password=None, role="member", actor=h.actor, name=h.user)
    assert team.id is not None and user.id is not None
    teams.add_member(engine, team_id=team.id, user_id=user.id, role="member", actor=admin)
    minted = keys.create_key(engine, name=h.key, actor=h.actor, user_id=user.id, team_id=team.id)
    request_id = call_until_routed(console, minted.secret, h.alias)
    deadline = time.monotonic() + 15
    while True:
        with session(engine) as s:
            if s.get(RequestLog, request_id) is not None:
                events = s.exec(
                    select(AuditEvent.action, AuditEvent.id)
                    .where(AuditEvent.actor == h.actor)
                    .order_by(AuditEvent.id.desc())  # type: ignore[union-attr]
                ).all()
                return {action: event_id for action, event_id in events if event_id is not None}
        assert time.monotonic() < deadline, "the hostile request was never logged"
        time.sleep(0.2)


def call_until_routed(console: Console, secret: str, alias: str, timeout_s: float = 30) -> str:
    """One call through the hostile alias (the gateway learns new aliases on its next route refresh)."""
    deadline = time.monotonic() + timeout_s
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=secret, max_retries=0) as client:
        while True:
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=alias, messages=[{"role": "user", "content": f"{SCRIPT}{IMG}"}], max_tokens=5
                )
                return raw.headers["x-request-id"]
            except openai.NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture(scope="module")
def hostile(console: Console, engine: Engine) -> tuple[Hostile, dict[str, int]]:
    h = hostile_names()
    return h, seed(console, engine, h)


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def tab(name: str, *shows: str) -> Reveal:
    """Open a tab, whose panel then lists `shows`."""

    def reveal(page: Page) -> tuple[Locator, list[str]]:
        page.get_by_role("tab", name=name, exact=True).click()
        return page.get_by_role("tabpanel", name=name), list(shows)

    return reveal


def search_users(text: str, *shows: str) -> Reveal:
    """Search the Users tab (the seeded organization has more users than one page holds)."""

    def reveal(page: Page) -> tuple[Locator, list[str]]:
        box = page.get_by_role("textbox", name="Search users")
        box.fill(text)
        box.press("Enter")
        table = page.locator("#users-table")
        expect(table).to_contain_text(text)
        return table, list(shows)

    return reveal


def current_yaml(*shows: str) -> Reveal:
    """Load the current configuration into the editor, a textarea (plain text by nature) holding `shows`."""

    def reveal(page: Page) -> tuple[Locator, list[str]]:
        page.click("#load-current")
        editor = page.locator("#config-text")
        for text in shows:
            expect(editor).to_have_value(re.compile(re.escape(text)))
        return editor, []

    return reveal


def views(h: Hostile, events: dict[str, int]) -> list[View]:
    q = quote(h.alias, safe="")
    opened = {
        "provider.create": [h.provider],
        "deployment.create": [h.deployment, h.alias],
        "catalog.update": [h.description],
        "key.create": [h.key],
    }
    return [
        View("/config", [h.provider, h.deployment, h.js_deployment, h.alias, h.js_alias]),
        View(f"/config/routing?alias={q}", [h.alias, h.js_alias, h.deployment]),
        View("/config/yaml", [], [current_yaml(h.provider, h.deployment, h.alias, h.js_alias)]),
        View("/models", [h.alias, h.js_alias, h.provider]),
        View(f"/models?alias={q}", [h.alias, h.description, h.deployment]),
        View(f"/models?alias={quote(h.js_alias, safe='')}", [h.js_alias, h.description]),
        View("/keys", [h.key, h.team]),
        View("/organization", [], [search_users(h.email, h.user, h.team), tab("Teams", h.team, h.description)]),
        View("/audit", [h.actor, h.alias]),
        *[View(f"/audit?id={events[action]}", [h.actor, *shows]) for action, shows in opened.items()],
        View("/logs", [h.alias]),
        View(f"/spend?q={h.email}", [h.email]),
        View("/costs", [h.alias], [tab("By team", h.team), tab("By user", h.email), tab("By key", h.key)]),
    ]


def missing_text(where: Locator, texts: list[str], label: str) -> list[str]:
    missing = []
    for text in texts:
        try:
            expect(where).to_contain_text(text, timeout=5_000)
        except AssertionError:
            missing.append(f"{label}: {text!r} not shown as text")
    return missing


def test_hostile_names_render_as_text_on_every_page(
    page: Page, console: Console, hostile: tuple[Hostile, dict[str, int]]
) -> None:
    h, events = hostile
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    live: list[str] = []
    missing: list[str] = []
    for view in views(h, events):
        open_settled(page, f"{console.url}{view.path}")
        missing += missing_text(page.locator("body"), view.shows, view.path)
        live += [f"{view.path}: {found}" for found in page.evaluate(LIVE)]
        for reveal in view.reveal:
            where, shows = reveal(page)
            missing += missing_text(where, shows, view.path)
            live += [f"{view.path}: {found}" for found in page.evaluate(LIVE)]
        assert h.provider_secret not in page.content(), view.path
    assert live == [], "live markup from hostile names:\n" + "\n".join(live)
    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert missing == [], "\n".join(missing)
