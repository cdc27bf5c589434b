"""Alerts page: rules (create, edit, enable, delete, send a test) and what fired, newest first.

Operators and admins only: every handler declares it and checks the caller again. The webhook URL
arrives in a submitted form, goes to the service and is never kept in state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.cookies import session_token
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.db.queries.names import load_directory
from llm_console.presenters import alerts as present
from llm_console.services import alerts, alerts_events, alerts_rules
from llm_console.services.alerts_rules import AlertError, RuleInput
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser
from llm_console.state.organization import as_id

ROLE = "operator"
REFUSED = "Only operators and admins can manage alerts."


def _snapshot(before_id: int | None) -> tuple[list[dict[str, str]], alerts_events.EventPage]:
    engine = get_context().engine
    rules = present.rule_rows(alerts_rules.list_rules(engine), load_directory(engine))
    return rules, alerts_events.list_events(engine, before_id=before_id)


def _rule_form(rule_id: int | None) -> dict[str, str]:
    engine = get_context().engine
    return present.rule_form(alerts_rules.get_rule(engine, rule_id) if rule_id else None, load_directory(engine))


class AlertsState(rx.State):
    rules: list[dict[str, str]] = []
    events: list[dict[str, str]] = []
    cursor: str = ""
    next_cursor: str = ""
    open_count: int = 0
    smtp_ready: bool = False
    error: str = ""
    notice: str = ""
    testing: str = ""
    form_open: bool = False
    form: dict[str, str] = {}
    form_kind: str = "error_rate"
    form_error: str = ""
    scope_choices: list[dict[str, str]] = []
    confirm_open: bool = False
    confirm: dict[str, str] = {}

    async def _user(self) -> SessionUser | None:
        user = await current_user(self)
        if not has_role(user, ROLE):
            self.error, self.rules, self.events = REFUSED, [], []
            return None
        return user

    async def _reload(self) -> None:
        rules, page = await asyncio.to_thread(_snapshot, as_id(self.cursor))
        self.rules, self.events, self.open_count = rules, present.event_rows(page.rows), page.open_count
        self.next_cursor = "" if page.next_cursor is None else str(page.next_cursor)

    async def _done(self, notice: str) -> None:
        self.error, self.notice = "", notice
        await self._reload()

    @rx.event
    @requires(ROLE)
    async def load(self) -> None:
        if await self._user() is None:
            return
        self.error, self.notice, self.cursor = "", "", ""
        self.smtp_ready = bool(get_context().settings.smtp_host)
        await self._reload()

    @rx.event
    @requires(ROLE)
    async def next_page(self) -> None:
        if await self._user() is not None and self.next_cursor:
            self.cursor = self.next_cursor
            await self._reload()

    @rx.event
    @requires(ROLE)
    async def first_page(self) -> None:
        if await self._user() is not None:
            self.cursor = ""
            await self._reload()

    @rx.event
    @requires(ROLE)
    async def toggle(self, rule_id: str, enabled: bool) -> None:
        user, rid = await self._user(), as_id(rule_id)
        if user is None or rid is None:
            return
        on = enabled is True or str(enabled).lower() == "true"
        try:
            view = await asyncio.to_thread(
                alerts_rules.set_rule_enabled, get_context().engine, rid, on, actor=user.email
            )
        except AlertError as exc:
            self.error = str(exc)
            return
        await self._done(f"Rule {view.name} {'enabled' if on else 'disabled'}.")

    async def _open_form(self, rule_id: int | None) -> None:
        try:
            self.form = await asyncio.to_thread(_rule_form, rule_id)
        except AlertError as exc:
            self.error = str(exc)
            return
        self.form_kind = self.form["kind"]
        self.scope_choices = present.scope_options(self.form_kind)
        self.form_error, self.form_open = "", True

    @rx.event
    @requires(ROLE)
    async def new_rule(self) -> None:
        if await self._user() is not None:
            await self._open_form(None)

    @rx.event
    @requires(ROLE)
    async def edit_rule(self, rule_id: str) -> None:
        rid = as_id(rule_id)
        if await self._user() is not None and rid is not None:
            await self._open_form(rid)

    @rx.event
    @requires(ROLE)
    async def close_form(self, is_open: bool) -> None:
        if not is_open:
            self.form_open = False

    @rx.event
    @requires(ROLE)
    async def choose_kind(self, kind: str) -> None:
        if await self._user() is not None and kind in alerts_rules.KINDS:
            self.form_kind, self.scope_choices = kind, present.scope_options(kind)
            self.form = {**self.form, "scope_type": self.scope_choices[0]["value"]}

    @rx.event
    @requires(ROLE)
    async def save_rule(self, form: dict[str, Any]) -> None:
        user = await self._user()
        if user is None:
            return
        ctx, rid = get_context(), as_id(self.form.get("id"))
        clear = str(form.get("clear_webhook", "")).lower() in ("on", "true")
        try:
            inp = RuleInput.from_form(form)
            if rid is None:
                view = await asyncio.to_thread(
                    alerts_rules.create_rule, ctx.engine, ctx.runtime.box, inp, actor=user.email
                )
            else:
                view = await asyncio.to_thread(
                    alerts_rules.update_rule,
                    ctx.engine,
                    ctx.runtime.box,
                    rid,
                    inp,
                    actor=user.email,
                    clear_webhook=clear,
                )
        except AlertError as exc:
            self.form_error = str(exc)
            return
        self.form_open = False
        await self._done(f"Saved rule {view.name}.")

    @rx.event(background=True)
    @requires(ROLE)
    async def send_test(self, rule_id: str) -> None:
        """Send a test message on the rule's channels now and say how each went (outside the state lock)."""
        rid = as_id(rule_id)
        async with self:
            cookie = self.router.headers.cookie
        ctx = get_context()
        if rid is None or not has_role(await ctx.sessions.resolve(session_token(cookie)), ROLE):
            return
        async with self:
            self.testing, self.error, self.notice = str(rid), "", ""
        try:
            results = await alerts.send_test(ctx.engine, ctx.settings, ctx.runtime.box, rid)
        except AlertError as exc:
            async with self:
                self.testing, self.error = "", str(exc)
            return
        outcome = "; ".join(f"{d.channel} {'ok' if d.ok else 'failed'} ({d.detail})" for d in results)
        async with self:
            self.testing, self.notice = "", f"Test message: {outcome}."

    @rx.event
    @requires(ROLE)
    async def ask_delete(self, rule_id: str) -> None:
        rid = as_id(rule_id)
        if await self._user() is None or rid is None:
            return
        name = next((r["name"] for r in self.rules if r["id"] == str(rid)), f"rule {rid}")
        self.confirm, self.confirm_open = {"id": str(rid), "name": name}, True

    @rx.event
    @requires(ROLE)
    async def cancel_delete(self) -> None:
        self.confirm_open, self.confirm = False, {}

    @rx.event
    @requires(ROLE)
    async def confirm_delete(self) -> None:
        user, rid = await self._user(), as_id(self.confirm.get("id"))
        self.confirm_open = False
        if user is None or rid is None:
            return
        try:
            name = await asyncio.to_thread(alerts_rules.delete_rule, get_context().engine, rid, actor=user.email)
        except AlertError as exc:
            self.error = str(exc)
            return
        self.confirm = {}
        await self._done(f"Deleted rule {name} and its events.")
