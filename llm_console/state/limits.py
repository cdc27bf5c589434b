"""Limits & budgets: the page (everyone's own usage; the organization's table for operators and admins, with
status, search and page in the URL, refreshed live) and its edit dialog (admins only)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import requires
from llm_console.presenters import keys as key_forms
from llm_console.presenters.limits import FORM_FIELDS, LimitsView, form_values, limits_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.services.limits_admin import BudgetLimits, RateLimits, current_limits, save_entity_limits
from llm_console.services.limits_view import load_limits_page
from llm_console.services.spend import parse_spend_query
from llm_console.state.dashboard import DashboardMixin
from llm_console.state.keys import apply_config_here, caller


class LimitsState(DashboardMixin, rx.State):
    _route: ClassVar[str] = routes.LIMITS
    mine: list[dict[str, str | int]] = []
    rows: list[dict[str, str | int]] = []
    summary: str = ""
    status: str = ""
    search: str = ""
    page: int = 1
    pages: int = 1
    timezone: str = "UTC"
    day_label: str = "Today (UTC)"
    month_label: str = "This month (UTC)"
    default_text: str = ""
    org_wide: bool = False
    can_edit: bool = False
    notice: str = ""

    def _parse(self) -> ParsedFilters:
        """No time range: the table's own parameters (status, q, page) are the accepted `params`."""
        query = parse_spend_query(self._params())
        return replace(parse_filters({}), errors=query.errors, params=query.params())

    def _load_for(self, parsed: ParsedFilters, role: str, user_id: int) -> LimitsView:
        ctx = get_context()
        query = parse_spend_query(parsed.params)
        tz = ctx.settings.budget_timezone
        return limits_view(load_limits_page(ctx.engine, user_id=user_id, role=role, query=query, tz=tz))

    def _apply(self, result: Any) -> None:
        v: LimitsView = result
        self.mine, self.rows, self.summary, self.as_of = v.mine, v.rows, v.summary, v.as_of
        self.page, self.pages, self.status, self.search = v.page, v.pages, v.status, v.search
        self.timezone, self.day_label, self.month_label = v.timezone, v.day_label, v.month_label
        self.default_text, self.org_wide, self.can_edit = v.default_text, v.org_wide, v.can_edit


class LimitsFormState(rx.State):
    """The dialog that sets or clears one entity's rate limits and budget, or the global default limits."""

    open: bool = False
    mode: str = "entity"  # entity | default
    editing: str = ""  # "" for a new entity chosen by name; else the label of the entity being edited
    error: str = ""
    values: dict[str, str] = {}
    _entity_type: str = ""  # the entity being edited: its type and its name as `find_entity` reads it
    _entity_name: str = ""

    def _show(self, mode: str, editing: str, values: dict[str, str]) -> None:
        self.mode, self.editing, self.values, self.error, self.open = mode, editing, values, "", True
        self._entity_type, self._entity_name = (values["entity_type"], values["name"]) if editing else ("", "")

    @rx.event
    @requires("admin")
    async def open_new(self) -> None:
        if await caller(self, "admin") is not None:
            self._show("entity", "", form_values(None, RateLimits(), BudgetLimits()))

    @rx.event
    @requires("admin")
    async def open_edit(self, entity: str) -> None:
        """Edit "type:id" (a row's entity) or "default:0", starting from its own limits and budget."""
        kind, _, raw_id = str(entity).partition(":")
        if await caller(self, "admin") is None or not raw_id.isdigit() or len(raw_id) > 12:
            return
        try:
            ref, limits, budget = await asyncio.to_thread(current_limits, get_context().engine, kind, int(raw_id))
        except ValueError as exc:
            self._show("entity", "", form_values(None, RateLimits(), BudgetLimits()))
            self.error = str(exc)
            return
        self._show("default" if kind == "default" else "entity", ref.label, form_values(ref, limits, budget))

    @rx.event
    @requires("admin")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "admin") is not None:
            self.open, self.error = False, ""

    async def _save(self, form: dict[str, Any], *, clear: bool = False) -> None:
        who = await caller(self, "admin")
        if who is None:
            return
        user, scope = who
        form = {k: str(form.get(k, "") or "") for k in FORM_FIELDS}
        if self.mode == "default":
            form["entity_type"], form["name"] = "default", ""
        elif self.editing:
            form["entity_type"], form["name"] = self._entity_type, self._entity_name
        if clear:
            form |= {k: "" for k in FORM_FIELDS if k not in ("entity_type", "name")}
        try:
            ref = await asyncio.to_thread(
                save_entity_limits,
                get_context().engine,
                scope=scope,
                entity_type=form["entity_type"],
                name=form["name"],
                limits=key_forms.parse_limits(form),
                budget=key_forms.parse_budget(form),
                actor=user.email,
            )
        except ValueError as exc:
            self.error = str(exc)
            return
        apply_config_here()  # this process's gateway reads the new limits with its next key lookup
        page = await self.get_state(LimitsState)
        page.notice = f"{'Cleared' if clear else 'Saved'} the limits of {ref.label}."
        self.open, self.error = False, ""
        await page._refresh()

    @rx.event
    @requires("admin")
    async def submit(self, form: dict[str, Any]) -> None:
        """Replace the chosen entity's rate limits and budget with the form's (an empty field: no limit)."""
        await self._save(form)

    @rx.event
    @requires("admin")
    async def clear(self) -> None:
        """Remove every rate limit and budget of the entity being edited."""
        if self.editing:
            await self._save({}, clear=True)
