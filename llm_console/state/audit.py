"""Audit log page: filters, the page cursor and the opened event all live in the URL (deep links, reloads)."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import requires
from llm_console.services import audit_log as svc
from llm_console.services.context import get_context
from llm_console.state.organization import caller

READ_ROLE = "operator"
FILTERS = ("actor", "action", "type", "target", "range", "from", "to")
ANY = "__any__"


def _summary(entry: svc.AuditEntry) -> dict[str, str]:
    return {
        "id": str(entry.id),
        "when": entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "actor": entry.actor,
        "action": entry.action,
        "target": f"{entry.target_type} {entry.target_id}".strip(),
    }


def _load(params: dict[str, str]) -> tuple[svc.ParsedAudit, svc.AuditPage, dict[str, list[str]], Any]:
    engine = get_context().engine
    parsed = svc.parse_params(params)
    page = svc.browse(engine, parsed.filters, cursor=parsed.params.get("cursor", ""))
    opened = svc.get_event(engine, int(parsed.params["id"])) if "id" in parsed.params else None
    return parsed, page, svc.filter_options(engine), opened


class AuditState(rx.State):
    rows: list[dict[str, str]] = []
    next_cursor: str = ""
    paged: bool = False
    current: dict[str, str] = {}
    actors: list[str] = []
    types: list[str] = []
    range_name: str = "all"
    filter_errors: list[str] = []
    ready: bool = False
    detail_open: bool = False
    detail: dict[str, str] = {}
    changes: list[dict[str, str]] = []

    def _params(self) -> dict[str, str]:
        raw = self.router.url.query_parameters
        return {str(k): str(v)[:400] for k, v in dict(raw).items()}

    def _goto(self, **changes: str | None) -> Any:
        query = svc.parse_params(self._params()).query_string(**changes)
        return rx.redirect(f"{routes.AUDIT}?{query}" if query else routes.AUDIT)

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        if await caller(self, READ_ROLE) is None:
            self.ready, self.rows, self.detail_open = False, [], False
            return
        parsed, page, options, opened = await asyncio.to_thread(_load, self._params())
        self.ready, self.filter_errors, self.range_name = True, parsed.errors, parsed.range_name
        self.rows, self.next_cursor = [_summary(e) for e in page.rows], page.next_cursor
        self.paged = "cursor" in parsed.params
        self.current = {k: parsed.params.get(k, "") for k in FILTERS}
        self.actors, self.types = options["actor"], options["type"]
        self.detail_open = opened is not None
        self.detail = _summary(opened) if opened is not None else {}
        self.changes = [
            {"field": d.field, "before": d.before, "after": d.after, "change": d.change}
            for d in (svc.diff(opened.before, opened.after) if opened is not None else [])
        ]

    @rx.event
    @requires(READ_ROLE)
    async def set_param(self, name: str, value: str) -> Any:
        if await caller(self, READ_ROLE) is None or name not in FILTERS:
            return None
        value = "" if value == ANY else str(value)[:320].strip()
        extra: dict[str, str | None] = {"from": None, "to": None} if name == "range" and value != "custom" else {}
        return self._goto(**{name: value or None, **extra, "cursor": None, "id": None})

    @rx.event
    @requires(READ_ROLE)
    async def apply_text(self, form: dict[str, Any]) -> Any:
        """The free-text filters (action prefix, target id) submitted together."""
        if await caller(self, READ_ROLE) is None:
            return None
        values = {k: str(form.get(k, "") or "")[:320].strip() or None for k in ("action", "target")}
        return self._goto(**values, cursor=None, id=None)

    @rx.event
    @requires(READ_ROLE)
    async def open_event(self, event_id: str) -> Any:
        if await caller(self, READ_ROLE) is None or not str(event_id).isdigit():
            return None
        return self._goto(id=str(event_id)[:18])

    @rx.event
    @requires(READ_ROLE)
    async def close_event(self, still_open: bool = False) -> Any:
        if still_open or await caller(self, READ_ROLE) is None:
            return None
        return self._goto(id=None)

    @rx.event
    @requires(READ_ROLE)
    async def next_page(self) -> Any:
        if await caller(self, READ_ROLE) is None or not self.next_cursor:
            return None
        return self._goto(cursor=self.next_cursor, id=None)

    @rx.event
    @requires(READ_ROLE)
    async def first_page(self) -> Any:
        if await caller(self, READ_ROLE) is None:
            return None
        return self._goto(cursor=None, id=None)

    @rx.event
    @requires(READ_ROLE)
    async def clear_filters(self) -> Any:
        if await caller(self, READ_ROLE) is None:
            return None
        return rx.redirect(routes.AUDIT)
