"""Config as code in a browser: paste a LiteLLM config, preview, apply, call the new alias, export YAML."""

from __future__ import annotations

import time

import openai
import pytest
import yaml
from playwright.sync_api import BrowserContext, expect

from tests.conftest import run_cli
from tests.e2e.conftest import MODEL, Console

pytestmark = pytest.mark.browser
ALIAS = "litellm-llama"


def simulator_url(console: Console) -> str:
    """The simulator behind the session's `e2e-model` alias, read from an exported configuration (other tests
    add deployments of the same upstream model elsewhere, some on closed ports)."""
    exported = yaml.safe_load(run_cli(console.env, "export-config").stdout)
    aliases = exported["aliases"]
    entry = aliases[MODEL] if isinstance(aliases, dict) else next(a for a in aliases if a.get("alias") == MODEL)
    name = entry["deployments"][0]["deployment"]
    dep = next(d for d in exported["deployments"] if d["name"] == name)
    return next(p["api_base"] for p in exported["providers"] if p["name"] == dep["provider"])


def test_import_a_litellm_config_then_call_it(admin: BrowserContext, console: Console) -> None:
    config = (
        "model_list:\n"
        f"  - model_name: {ALIAS}\n"
        "    litellm_params:\n"
        "      model: hosted_vllm/llama-3.1-8b-instruct\n"
        f"      api_base: {simulator_url(console)}\n"
        "      input_cost_per_token: 0.0000002\n"
        "    model_info: {mode: chat, max_input_tokens: 8192}\n"
        "  - model_name: '<script>window.__xss=1</script>'\n"
        "    litellm_params: {model: bedrock/anthropic.claude-v2}\n"
        "router_settings: {routing_strategy: least-busy}\n"
    )
    page = admin.new_page()
    page.goto(f"{console.url}/config/yaml")
    expect(page.get_by_role("heading", name="Config as code")).to_be_visible()
    page.fill("#config-text", config)
    page.click("#preview-button")
    expect(page.locator("#config-error")).to_contain_text("LiteLLM")
    page.click("#litellm-switch")
    page.click("#preview-button")
    expect(page.locator("#config-diff")).to_contain_text(ALIAS)
    expect(page.locator("#config-warnings")).to_contain_text("bedrock")
    expect(page.locator("#apply-button")).to_be_enabled()
    page.click("#apply-button")
    expect(page.locator("#config-result")).to_contain_text("Applied: ")
    assert page.evaluate("window.__xss") is None
    with page.expect_download() as download:
        page.click("#export-button")
    text = download.value.path().read_text(encoding="utf-8")
    assert f"alias: {ALIAS}" in text and "has_api_key" in text and MODEL in text
    page.close()
    with openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.key, max_retries=0) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = client.chat.completions.create(
                    model=ALIAS, messages=[{"role": "user", "content": "hi"}], max_tokens=4
                )
                break
            except openai.NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    assert reply.choices[0].message.content
    catalog = admin.new_page()
    catalog.goto(f"{console.url}/models")
    expect(catalog.get_by_text(ALIAS, exact=True).first).to_be_visible()
    catalog.goto(f"{console.url}/models?alias={ALIAS}")
    expect(catalog.locator("body")).to_contain_text("llama-3.1-8b-instruct@127.0.0.1")
    assert catalog.evaluate("window.__xss") is None
    catalog.close()
