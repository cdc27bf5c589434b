"""The prompt editor ("New prompt", "New version") and the "Move label" dialog. Members and up; the service
checks the role again (only operators and admins may set the production label) and its refusals are shown
in the dialog as written. The editor's variables are detected as the template is typed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.presenters import prompts as present
from llm_console.prompts.template import MAX_MESSAGES, MAX_TEMPLATE_CHARS, ROLES
from llm_console.services.context import get_context
from llm_console.services.prompts import add_version, create_prompt, set_label
from llm_console.state.keys import apply_config_here, caller
from llm_console.state.prompts import PromptDetailState

BLANK = [{"role": "system", "content": ""}, {"role": "user", "content": ""}]


def _reason(exc: ValueError) -> str:
    return str(getattr(exc, "message", "") or exc)


def _index(raw: Any, size: int) -> int | None:
    """A message position sent by the page, when it names one of the `size` messages."""
    text = str(raw)
    return int(text) if text.isdigit() and int(text) < size else None


class PromptFormState(rx.State):
    open: bool = False
    mode: str = "new"  # new: a new prompt | version: a new version of `prompt_name`
    prompt_name: str = ""
    kind: str = "chat"
    messages: list[dict[str, str]] = []
    text: str = ""
    config_text: str = ""
    variables: list[str] = []
    error: str = ""

    def _detect(self) -> None:
        self.variables = present.detected_variables(self.kind, self.messages, self.text)

    @rx.event
    @requires("member")
    async def open_new(self) -> None:
        if await caller(self, "member") is None:
            return
        self.mode, self.prompt_name, self.kind, self.error = "new", "", "chat", ""
        self.messages, self.text, self.config_text = [dict(m) for m in BLANK], "", ""
        self._detect()
        self.open = True

    @rx.event
    @requires("member")
    async def open_version(self) -> None:
        """A new version of the prompt on the page, prefilled from the version being viewed."""
        if await caller(self, "member") is None:
            return
        detail = await self.get_state(PromptDetailState)
        chosen = detail._contents.get(detail.selected)
        if not detail.found or chosen is None:
            return
        self.mode, self.prompt_name, self.kind, self.error = "version", detail.title, chosen["kind"], ""
        self.messages = [dict(m) for m in chosen["messages"]] or [dict(m) for m in BLANK]
        self.text, self.config_text = chosen["text"], present.config_json(chosen["config"])
        self._detect()
        self.open = True

    @rx.event
    @requires("member")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "member") is not None:
            self.open, self.error = False, ""

    @rx.event
    @requires("member")
    async def set_kind(self, kind: str) -> None:
        if await caller(self, "member") is not None and self.mode == "new" and kind in ("chat", "text"):
            self.kind = kind
            self._detect()

    @rx.event
    @requires("member")
    async def add_message(self) -> None:
        if await caller(self, "member") is not None and len(self.messages) < MAX_MESSAGES:
            self.messages = [*self.messages, {"role": "user", "content": ""}]

    @rx.event
    @requires("member")
    async def remove_message(self, index: int) -> None:
        at = _index(index, len(self.messages))
        if await caller(self, "member") is not None and at is not None and len(self.messages) > 1:
            self.messages = [m for i, m in enumerate(self.messages) if i != at]
            self._detect()

    @rx.event
    @requires("member")
    async def set_role(self, index: int, role: str) -> None:
        at = _index(index, len(self.messages))
        if await caller(self, "member") is not None and at is not None and role in ROLES:
            self.messages[at]["role"] = role

    @rx.event
    @requires("member")
    async def set_content(self, index: int, content: str) -> None:
        at = _index(index, len(self.messages))
        if await caller(self, "member") is not None and at is not None:
            self.messages[at]["content"] = str(content)[:MAX_TEMPLATE_CHARS]
            self._detect()

    @rx.event
    @requires("member")
    async def set_text(self, text: str) -> None:
        if await caller(self, "member") is not None:
            self.text = str(text)[:MAX_TEMPLATE_CHARS]
            self._detect()

    @rx.event
    @requires("member")
    async def submit(self, form: dict[str, Any]) -> Any:
        """Create the prompt (then open it) or add the version (then show it, diffed against the one before)."""
        who = await caller(self, "member")
        if who is None:
            return None
        user, engine = who[0], get_context().engine
        chat = self.kind == "chat"
        try:
            fields: dict[str, Any] = {
                "messages": present.form_messages(form, self.messages) if chat else None,
                "text": None if chat else str(form.get("text", self.text) or ""),
                "config": present.parse_config(str(form.get("config", "") or "")),
                "commit_message": str(form.get("commit_message", "") or ""),
                "labels": present.parse_labels(str(form.get("labels", "") or "")),
            }
            if self.mode == "new":
                name, description = str(form.get("name", "") or ""), str(form.get("description", "") or "")
                fields |= {"name": name, "kind": self.kind, "description": description}
                view = await asyncio.to_thread(create_prompt, engine, role=user.role, actor=user.email, **fields)
            else:
                fields["name"] = self.prompt_name
                view = await asyncio.to_thread(add_version, engine, role=user.role, actor=user.email, **fields)
        except ValueError as exc:
            self.error = _reason(exc)
            return None
        apply_config_here()  # a label set with the version moves what this process's gateway renders
        self.open, self.error = False, ""
        if self.mode == "new":
            return rx.redirect(present.detail_href(view.name))
        detail = await self.get_state(PromptDetailState)
        await detail._refresh()
        detail._focus(str(view.version))
        detail.notice = f"Saved version {view.version} of {view.name}."
        return None


class PromptLabelState(rx.State):
    open: bool = False
    label: str = ""
    version: str = ""
    error: str = ""

    @rx.event
    @requires("member")
    async def open_move(self) -> None:
        """Move a label (or set a new one) to a version: the viewed version and production by default."""
        if await caller(self, "member") is None:
            return
        detail = await self.get_state(PromptDetailState)
        if detail.found:
            self.label = "production" if detail.can_promote else "staging"
            self.version, self.error, self.open = detail.selected, "", True

    @rx.event
    @requires("member")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "member") is not None:
            self.open, self.error = False, ""

    @rx.event
    @requires("member")
    async def submit(self, form: dict[str, Any]) -> None:
        who = await caller(self, "member")
        if who is None:
            return
        user, detail = who[0], await self.get_state(PromptDetailState)
        label, version = str(form.get("label", "") or "").strip(), str(form.get("version", "") or "")
        if not version.isdigit():
            self.error = "Choose the version the label should point at."
            return
        try:
            await asyncio.to_thread(
                set_label,
                get_context().engine,
                role=user.role,
                actor=user.email,
                name=detail.title,
                label=label,
                version=int(version),
            )
        except ValueError as exc:
            self.error = _reason(exc)
            return
        apply_config_here()  # this process's gateway renders the label's new version from the next call
        self.open, self.error = False, ""
        await detail._refresh()
        detail.notice = f"Moved the label {label} to version {version}."
