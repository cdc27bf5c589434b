"""The Config-as-code page's handlers called directly, as any connected socket could call them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine
from sqlmodel import select

import llm_console.state.config_io as state_module
from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, ModelAlias, Provider
from llm_console.services.sessions import SessionUser
from llm_console.state.config_io import ConfigIOState

SECRET = "sk-state-literal-provider-key-77"
TEXT = f"""version: 1
providers: [{{name: p, api_base: 'https://api.example.test/v1', api_key: {SECRET}}}]
deployments: [{{name: d, provider: p, model: m}}]
aliases: [{{alias: '<b>bold</b>', deployments: [{{deployment: d}}]}}]
"""
LITELLM = "model_list:\n- {model_name: vllm-llama, litellm_params: {model: hosted_vllm/llama, api_base: 'http://10.0.0.9:8000/v1'}}\n"


@dataclass
class Page:
    engine: Engine
    state: ConfigIOState
    who: list[SessionUser | None] = field(default_factory=lambda: [None])

    def sign_in(self, role: str | None) -> None:
        self.who[:] = [SessionUser(1, f"{role}@example.com", role, role) if role else None]

    async def call(self, handler: str, *args: Any) -> Any:
        return await ConfigIOState.event_handlers[handler].fn(self.state, *args)

    def aliases(self) -> list[str]:
        with session(self.engine) as s:
            return [a.alias for a in s.exec(select(ModelAlias))]


@pytest.fixture
def page(engine: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    context = SimpleNamespace(
        engine=engine, runtime=SimpleNamespace(box=box), settings=SimpleNamespace(upstream_allowlist=[])
    )
    monkeypatch.setattr(state_module, "get_context", lambda: context)
    root = State(_reflex_internal_init=True)  # type: ignore[call-arg]
    p = Page(engine, cast(ConfigIOState, root.get_substate(ConfigIOState.get_full_name().split(".")[1:])))

    async def current_user(state: object) -> SessionUser | None:
        return p.who[0]

    monkeypatch.setattr(state_module, "current_user", current_user)
    yield p


async def test_preview_then_apply(page: Page, box: SecretBox) -> None:
    page.sign_in("operator")
    await page.call("load")
    assert page.state.allowed
    await page.call("set_text", TEXT)
    assert not page.state.can_apply
    await page.call("apply")
    assert page.state.problems == ["Preview the changes of this exact text first."] and page.aliases() == []
    await page.call("preview")
    assert page.state.can_apply and page.state.summary == "3 to create, 0 to update, 0 to delete, 0 unchanged"
    assert [r["kind"] for r in page.state.rows] == ["provider", "deployment", "alias"]
    assert SECRET not in repr(page.state.rows) and "api_key: (set)" in page.state.rows[0]["changes"]
    await page.call("apply")
    assert page.aliases() == ["<b>bold</b>"] and page.state.result.startswith("Applied: 3 to create")
    assert page.state.text == "" and not page.state.can_apply  # the literal key does not linger in state
    with session(page.engine) as s:
        assert box.decrypt(s.exec(select(Provider)).one().api_key_encrypted or "") == SECRET
        assert {e.actor for e in s.exec(select(AuditEvent))} == {"operator@example.com"}


async def test_changing_the_text_after_preview_disables_apply(page: Page) -> None:
    page.sign_in("admin")
    await page.call("set_text", TEXT)
    await page.call("preview")
    await page.call("set_text", TEXT.replace("model: m", "model: other"))
    assert not page.state.can_apply and page.state.rows == []
    page.state.can_apply = True  # a forged flag still needs a preview of this exact text
    await page.call("apply")
    assert page.aliases() == []


async def test_litellm_switch_and_private_hosts(page: Page) -> None:
    page.sign_in("operator")
    await page.call("set_allow_private", True)
    assert not page.state.allow_private  # allow-listing private hosts is an admin's call
    page.sign_in("admin")
    await page.call("set_text", LITELLM)
    await page.call("preview")
    assert "LiteLLM" in page.state.problems[0]
    await page.call("set_litellm", True)
    await page.call("preview")
    assert "allow private hosts" in page.state.problems[0] and not page.state.can_apply
    await page.call("set_allow_private", True)
    await page.call("preview")
    assert page.state.problems == [] and page.state.can_apply
    await page.call("apply")
    assert page.aliases() == ["vllm-llama"]


async def test_export_and_load_current(page: Page) -> None:
    page.sign_in("operator")
    await page.call("set_text", TEXT)
    await page.call("preview")
    await page.call("apply")
    spec = await page.call("export")
    assert "llm-console-config.yaml" in repr(spec) and SECRET not in repr(spec)
    await page.call("load_current")
    assert "has_api_key: true" in page.state.text and SECRET not in page.state.text
    await page.call("preview")
    assert page.state.summary.startswith("no changes") and not page.state.can_apply


@pytest.mark.parametrize("role", [None, "viewer", "member"])
async def test_below_operator_gets_nothing(page: Page, role: str | None) -> None:
    page.sign_in(role)
    await page.call("load")
    assert not page.state.allowed
    await page.call("set_text", TEXT)
    assert page.state.text == ""
    page.state.text = TEXT
    await page.call("preview")
    assert page.state.rows == [] and not page.state.can_apply
    page.state.can_apply = True
    await page.call("apply")
    assert await page.call("export") is None
    await page.call("load_current")
    assert page.aliases() == [] and page.state.text == TEXT
