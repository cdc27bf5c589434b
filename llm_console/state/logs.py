"""Logs & traces: a keyset page of the request log, the opened request in a drawer; all of it in the URL."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import PAGE_ROLE, requires
from llm_console.auth.roles import has_role_name
from llm_console.presenters.logs import LogsView, logs_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters
from llm_console.services.logs_page import load_logs
from llm_console.services.scope import scope_for
from llm_console.state.dashboard import DashboardMixin

FILTER_KEYS = (
    "model", "deployment", "status", "key", "user", "team", "stream", "min_latency", "min_cost", "q",
    "end_user", "session", "tag", "prompt",
)  # fmt: skip


class LogsState(DashboardMixin, rx.State):
    _route: ClassVar[str] = routes.LOGS
    rows: list[dict[str, str]] = []
    next_cursor: str = ""
    paged: bool = False
    current: dict[str, str] = {}
    options: dict[str, list[dict[str, str]]] = {}
    detail_open: bool = False
    detail: dict[str, str] = {}
    messages: list[dict[str, str]] = []
    spans: list[dict[str, str]] = []
    request_body: str = ""
    response_body: str = ""
    detail_error: str = ""
    scores: list[dict[str, str]] = []
    retention: dict[str, str] = {}
    export_query: str = ""

    def _load_for(self, parsed: ParsedFilters, role: str, user_id: int) -> tuple[LogsView, ParsedFilters]:
        ctx = get_context()
        scope = scope_for(ctx.engine, user_id=user_id, role=role)
        data = load_logs(
            ctx.engine, parsed, cursor=parsed.params.get("cursor"), request_id=parsed.params.get("id"), scope=scope
        )
        return logs_view(data, ctx.settings, show_bodies=has_role_name(role, "member")), parsed

    def _apply(self, result: Any) -> None:
        view, parsed = result
        self.rows, self.next_cursor, self.options = view.rows, view.next_cursor, view.options
        self.detail, self.messages, self.spans = view.detail, view.messages, view.spans
        self.request_body, self.response_body = view.request_body, view.response_body
        self.detail_error, self.retention, self.as_of = view.detail_error, view.retention, view.as_of
        self.scores = view.scores
        self.detail_open = bool(view.detail) or bool(view.detail_error)
        self.current = {k: parsed.params.get(k, "") for k in FILTER_KEYS}
        self.paged = "cursor" in parsed.params
        self.export_query = parsed.query_string(cursor=None, id=None)

    @rx.event
    @requires(PAGE_ROLE)
    async def open_request(self, request_id: str) -> Any:
        if not await self._allowed():
            return None
        return self._goto({"id": str(request_id)[:36]})

    @rx.event
    @requires(PAGE_ROLE)
    async def close_request(self, still_open: bool = False) -> Any:
        if still_open or not await self._allowed():
            return None
        return self._goto({"id": None})

    @rx.event
    @requires(PAGE_ROLE)
    async def next_page(self) -> Any:
        if not await self._allowed() or not self.next_cursor:
            return None
        return self._goto({"cursor": self.next_cursor, "id": None})

    @rx.event
    @requires(PAGE_ROLE)
    async def first_page(self) -> Any:
        if not await self._allowed():
            return None
        return self._goto({"cursor": None, "id": None})
