"""The operator's journey in a browser: add a provider and a deployment, test it, create a key, call the new
alias with the official SDK, revoke the key, and see the next call refused; the alias shows in the catalog
and the health matrix."""

from __future__ import annotations

import re
import secrets
import time

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import select

from llm_console.db.engine import make_engine, session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from tests.e2e.conftest import MODEL, Console

pytestmark = pytest.mark.browser
UPSTREAM = "llama-3.1-8b-instruct"


def simulator_url(console: Console) -> str:
    """The base URL of the simulator the session console routes `e2e-model` to, read from its database."""
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    try:
        with session(engine) as s:
            base = s.exec(
                select(Provider.api_base)
                .join(Deployment, Deployment.provider_id == Provider.id)  # type: ignore[arg-type]
                .join(AliasDeployment, AliasDeployment.deployment_id == Deployment.id)  # type: ignore[arg-type]
                .join(ModelAlias, ModelAlias.id == AliasDeployment.alias_id)  # type: ignore[arg-type]
                .where(ModelAlias.alias == MODEL)
            ).first()
    finally:
        engine.dispose()
    assert base, f"no provider behind {MODEL}"
    return base


def chat(client: openai.OpenAI, alias: str) -> str:
    reply = client.chat.completions.create(model=alias, messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    return reply.choices[0].message.content or ""


def first_reply(client: openai.OpenAI, alias: str, timeout_s: float = 30) -> str:
    """The first answer from a just-added alias (the gateway's route table may take a refresh to know it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return chat(client, alias)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def add_provider(page: Page, name: str, base_url: str) -> None:
    page.click("#add-provider")
    page.fill("#provider-name", name)
    page.fill("#provider-base-url", base_url)
    page.check("#provider-allow-private")  # the simulator is on loopback: an admin vouches for it
    page.click("#provider-save")
    expect(page.locator("#provider-dialog")).to_have_count(0)
    expect(page.locator(f'tr[data-provider="{name}"]')).to_contain_text(base_url)


def add_deployment(page: Page, provider: str, name: str, alias: str) -> None:
    page.click("#add-deployment")
    page.locator("#deployment-provider").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(provider)} \(")).click()
    page.fill("#deployment-model", UPSTREAM)
    page.fill("#deployment-name", name)
    page.fill("#deployment-alias", alias)
    page.click("#deployment-save")
    expect(page.locator("#deployment-dialog")).to_have_count(0)
    expect(page.locator(f'tr[data-deployment="{name}"]')).to_contain_text(alias)


def create_key(page: Page, name: str) -> str:
    """Create a key on /keys and return its secret, shown once."""
    page.click("#create-key")
    page.fill("#key-name", name)
    page.click("#key-form-submit")
    shown = page.locator("#new-key-secret")
    expect(shown).to_be_visible()
    secret = shown.inner_text().strip()
    assert secret.startswith("sk-llmc-"), secret
    page.get_by_role("button", name="Done").click()
    expect(shown).to_have_count(0)
    assert secret not in page.content()  # gone from the page once dismissed
    expect(page.locator("#keys-table")).to_contain_text(name)
    return secret


def test_add_test_key_call_revoke_refused(admin: BrowserContext, console: Console) -> None:
    tag = secrets.token_hex(3)
    provider, deployment, alias, key_name = f"journey-{tag}", f"journey-dep-{tag}", f"journey-{tag}", f"jk-{tag}"
    page = admin.new_page()
    page.goto(f"{console.url}/config")
    expect(page.get_by_role("heading", name="Configuration", exact=True)).to_be_visible()
    add_provider(page, provider, simulator_url(console))
    add_deployment(page, provider, deployment, alias)

    row = page.locator(f'tr[data-deployment="{deployment}"]')
    row.get_by_role("button", name=f"Test connection {deployment}", exact=True).click()
    result = page.locator("#test-result")
    expect(result).to_contain_text(f"{deployment}: available", timeout=20_000)
    expect(result).to_contain_text(UPSTREAM)  # the models the upstream lists
    expect(result).to_contain_text(re.compile(r"\d+ models? found"))
    expect(page.locator(f'#health-matrix tr[data-alias="{alias}"]')).to_be_visible()
    expect(page.locator("#health-matrix")).to_contain_text(deployment)

    page.goto(f"{console.url}/keys")
    expect(page.locator("#keys-table")).to_be_visible()
    secret = create_key(page, key_name)
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=secret, max_retries=0) as client:
        assert first_reply(client, alias)
        page.get_by_role("button", name=f"Revoke {key_name}", exact=True).click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        page.get_by_role("button", name="Revoke key", exact=True).click()
        expect(page.get_by_role("status").filter(has_text=f"Revoked {key_name}")).to_be_visible()
        with pytest.raises(openai.AuthenticationError) as refused:
            chat(client, alias)
    assert refused.value.status_code == 401

    page.goto(f"{console.url}/models")
    expect(page.get_by_text(alias, exact=True).first).to_be_visible()
    page.goto(f"{console.url}/models?alias={alias}")
    expect(page.locator("body")).to_contain_text(deployment)
    page.close()
