"""Spend by user: one service call per refresh; the status filter, email search and page live in the URL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import PAGE_ROLE, requires
from llm_console.presenters.spend import SpendView, spend_csv, spend_json, spend_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.services.scope import scope_for
from llm_console.services.spend import load_spend, parse_spend_query, user_spend
from llm_console.state.dashboard import ANY, DashboardMixin


class SpendState(DashboardMixin, rx.State):
    # Members and viewers see the people of their own teams (and themselves); operators everyone.
    _route: ClassVar[str] = routes.SPEND
    status: str = ""
    search: str = ""
    rows: list[dict[str, str | int]] = []
    summary: str = ""
    page: int = 1
    pages: int = 1
    timezone: str = "UTC"  # budget days and months (LLMC_BUDGET_TIMEZONE), named in the column headers

    def _parse(self) -> ParsedFilters:
        """No time range here: the page's own parameters (status, q, page) are the accepted `params`."""
        query = parse_spend_query(self._params())
        return replace(parse_filters({}), errors=query.errors, params=query.params())

    def _load(self, parsed: ParsedFilters) -> SpendView:  # pragma: no cover - `_load_for` serves every call
        raise NotImplementedError

    def _load_for(self, parsed: ParsedFilters, role: str, user_id: int) -> SpendView:
        ctx = get_context()
        scope = scope_for(ctx.engine, user_id=user_id, role=role)
        query = parse_spend_query(parsed.params)
        return spend_view(load_spend(ctx.engine, query, scope=scope, tz=ctx.settings.budget_timezone))

    def _apply(self, result: Any) -> None:
        view: SpendView = result
        self.rows, self.summary, self.as_of = view.rows, view.summary, view.as_of
        self.page, self.pages, self.status, self.search = view.page, view.pages, view.status, view.search
        self.timezone = view.timezone

    @rx.event
    @requires(PAGE_ROLE)
    async def set_param(self, name: str, value: str) -> Any:
        """Navigate to this page with one of status, q or page changed (a filter change goes back to page 1)."""
        if not await self._allowed():
            return None
        value = "" if value in (ANY, "all") else str(value)[:300]
        current = parse_spend_query(self._params())
        if current.params(**{name: value}) == current.params():
            return None  # unchanged (a search box losing focus): stay on this page
        query = current.query_string(**{name: value})
        return rx.redirect(f"{self._route}?{query}" if query else self._route)

    @rx.event
    @requires(PAGE_ROLE)
    async def export(self, fmt: str) -> Any:
        """Every user matching the filters, all pages, as CSV (or JSON)."""
        if not await self._allowed():
            return None
        query, ctx = parse_spend_query(self._params()), get_context()
        scope = await asyncio.to_thread(scope_for, ctx.engine, user_id=self._user_id, role=self._role)
        tz = ctx.settings.budget_timezone
        users, _ = await asyncio.to_thread(user_spend, ctx.engine, query, datetime.now(UTC), scope, tz)
        if fmt == "json":
            return rx.download(data=spend_json(users), filename="spend-by-user.json", mime_type="application/json")
        return rx.download(data=spend_csv(users), filename="spend-by-user.csv", mime_type="text/csv")
