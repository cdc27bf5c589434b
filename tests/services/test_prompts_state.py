"""The Prompts pages' event handlers called directly, as any connected socket could call them: strangers and
viewers change nothing, a member's production move is refused with the service's words, and the detail page
keeps its name and range in the URL, its selection across refreshes, and shows a new version diffed."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine

import llm_console.state.dashboard as dashboard_module
import llm_console.state.keys as keys_module
import llm_console.state.prompt_forms as forms_module
import llm_console.state.prompts as state_module
from llm_console import routes
from llm_console.services.prompts import create_prompt, get_prompt, list_prompts
from llm_console.services.sessions import SessionUser
from llm_console.state.prompt_forms import PromptFormState, PromptLabelState
from llm_console.state.prompts import PromptDetailState, PromptsState

USERS = {
    role: SessionUser(i + 1, f"{role}@example.com", role, role)
    for i, role in enumerate(("viewer", "member", "operator"))
}


@dataclass
class Page:
    root: Any
    who: SessionUser | None = None
    changes: list[int] = field(default_factory=list)

    def get(self, cls: type) -> Any:
        return self.root.get_substate(cls.get_full_name().split(".")[1:])

    def url(self, path: str, query: dict[str, str]) -> None:
        as_path = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        self.root._update_router_vars({"pathname": path, "query": query, "asPath": as_path}, {})

    async def call(self, cls: type, handler: str, *args: Any) -> Any:
        result = cls.event_handlers[handler].fn(self.get(cls), *args)  # type: ignore[attr-defined]
        if hasattr(result, "__aiter__"):
            return [spec async for spec in result]
        return await result


@pytest.fixture
def page(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Page:
    changes: list[int] = []  # each time the handlers told this process's gateway the configuration changed
    context = SimpleNamespace(engine=engine, runtime=SimpleNamespace(config_changed=lambda: changes.append(1)))
    for module in (state_module, forms_module, keys_module):
        monkeypatch.setattr(module, "get_context", lambda: context)
    p = Page(State(_reflex_internal_init=True), changes=changes)

    async def current_user(state: object) -> SessionUser | None:
        return p.who

    monkeypatch.setattr(keys_module, "current_user", current_user)
    monkeypatch.setattr(dashboard_module, "current_user", current_user)
    return p


def seed(engine: Engine) -> None:
    create_prompt(
        engine, role="admin", actor="a@x", name="greet", kind="chat",
        messages=[{"role": "user", "content": "Hi {{ who }}"}], labels=["production"],
    )  # fmt: skip


async def test_the_list_refuses_strangers_and_offers_members_the_new_prompt_dialog(page: Page, engine: Engine) -> None:
    seed(engine)
    page.url(routes.PROMPTS, {})
    assert "/login" in repr(await page.call(PromptsState, "load"))
    assert page.get(PromptsState).rows == []
    page.who = USERS["viewer"]
    await page.call(PromptsState, "load")
    rows = page.get(PromptsState).rows
    assert [r["name"] for r in rows] == ["greet"] and rows[0]["production"] == "v1"
    assert not page.get(PromptsState).can_create
    await page.call(PromptFormState, "open_new")
    assert not page.get(PromptFormState).open  # a viewer's socket opens nothing
    await page.call(PromptFormState, "submit", {"name": "sneaky"})
    assert [p.name for p in list_prompts(engine)[0]] == ["greet"]
    page.who = USERS["member"]
    await page.call(PromptsState, "load")
    assert page.get(PromptsState).can_create
    assert "/prompts?q=gr" in repr(await page.call(PromptsState, "search_prompts", {"q": " gr "}))


async def test_a_member_writes_a_prompt_and_a_version_and_sees_the_diff(page: Page, engine: Engine) -> None:
    page.who = USERS["member"]
    form = page.get(PromptFormState)
    await page.call(PromptFormState, "open_new")
    assert form.open and [m["role"] for m in form.messages] == ["system", "user"]
    await page.call(PromptFormState, "set_content", 0, "You sell {{ product }}.")
    await page.call(PromptFormState, "set_content", "9", "out of range: ignored")
    await page.call(PromptFormState, "add_message")
    await page.call(PromptFormState, "set_role", 2, "assistant")
    await page.call(PromptFormState, "set_role", 2, "root")  # not a role: ignored
    await page.call(PromptFormState, "set_content", 1, "Greet {{ who }}")
    assert form.variables == ["product", "who"] and form.messages[2]["role"] == "assistant"
    await page.call(PromptFormState, "remove_message", 2)
    sent = {"name": "shop/greet", "content_1": "Greet {{ who }}", "labels": "production"}
    await page.call(PromptFormState, "submit", sent)
    assert form.open and "Only operators and admins" in form.error  # the service's refusal, as written
    spec = await page.call(PromptFormState, "submit", {**sent, "labels": "staging", "config": '{"seed": 7}'})
    assert "/prompts/detail?name=shop%2Fgreet" in repr(spec) and not form.open

    page.url(routes.PROMPT_DETAIL, {"name": "shop/greet", "range": "30d"})
    await page.call(PromptDetailState, "load")
    detail = page.get(PromptDetailState)
    assert (detail.found, detail.title, detail.range_name, detail.can_edit, detail.can_promote) == (
        True, "shop/greet", "30d", True, False,
    )  # fmt: skip
    assert detail.selected == "1" and detail.view["config"] == '{\n  "seed": 7\n}'
    await page.call(PromptFormState, "open_version")
    assert form.mode == "version" and form.messages[0]["content"] == "You sell {{ product }}."
    assert form.config_text == '{\n  "seed": 7\n}'  # prefilled; the form sends it back as shown
    await page.call(PromptFormState, "submit", {"content_1": "Greet {{ who }} warmly", "config": form.config_text})
    assert not form.open and detail.notice == "Saved version 2 of shop/greet."
    assert len(page.changes) == 2  # the new prompt, then its version: the gateway here resolves afresh
    assert (detail.selected, detail.diff_from, detail.diff_to) == ("2", "1", "2")
    assert [(r["sign"], r["text"]) for r in detail.diff if r["kind"] != "same"][1:] == [
        ("-", "Greet {{ who }}"),
        ("+", "Greet {{ who }} warmly"),
    ]
    await page.call(PromptDetailState, "choose_diff", "to", "7")  # not a version: ignored
    await page.call(PromptDetailState, "choose_diff", "to", "1")
    assert detail.diff_summary == "No differences."
    await page.call(PromptDetailState, "select_version", "1")
    assert detail.view["title"] == "Version 1 (staging)"
    assert "range=7d" in repr(await page.call(PromptDetailState, "set_param", "range", "7d"))
    assert "name=shop%2Fgreet" in repr(await page.call(PromptDetailState, "set_param", "range", "1h"))

    labels = page.get(PromptLabelState)
    await page.call(PromptLabelState, "open_move")
    assert labels.open and labels.label == "staging" and labels.version == "1"
    await page.call(PromptLabelState, "submit", {"label": "production", "version": "2"})
    assert labels.open and "Only operators and admins" in labels.error
    assert len(page.changes) == 2  # a refused move changes nothing
    page.who = USERS["operator"]
    await page.call(PromptLabelState, "submit", {"label": "production", "version": "2"})
    assert not labels.open and detail.notice == "Moved the label production to version 2."
    assert get_prompt(engine, "shop/greet")[0].labels == {"production": 2, "staging": 1}
    assert len(page.changes) == 3


async def test_viewers_cannot_write_and_unknown_prompts_are_explained(page: Page, engine: Engine) -> None:
    seed(engine)
    page.who = USERS["viewer"]
    page.url(routes.PROMPT_DETAIL, {"name": "greet", "range": "forever"})
    await page.call(PromptDetailState, "load")
    detail = page.get(PromptDetailState)
    assert detail.found and not detail.can_edit and detail.range_name == "7d"
    assert any("24h, 7d or 30d" in e for e in detail.filter_errors)
    await page.call(PromptFormState, "open_version")
    await page.call(PromptLabelState, "open_move")
    assert not page.get(PromptFormState).open and not page.get(PromptLabelState).open
    await page.call(PromptLabelState, "submit", {"label": "staging", "version": "1"})
    assert get_prompt(engine, "greet")[0].labels == {"production": 1}
    page.url(routes.PROMPT_DETAIL, {"name": "nope"})
    await page.call(PromptDetailState, "load")
    assert not detail.found and detail.error == "No prompt is named 'nope'." and detail.versions == []
