"""What every dashboard page's state shares: filters from the URL, the role check, live refresh.

A page state mixes this in and implements `_load(parsed)` (runs in a thread: one service call) and
`_apply(result)` (assigns display values). Filter changes navigate to the page's URL with the new
query, so every view is a deep link and reloading shows the same thing.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.cookies import session_token
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import PAGE_ROLE, requires
from llm_console.presenters.export import rows_csv, tables_json
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, parse_filters

ANY = "__any__"  # what a select sends for "no filter" (Radix items cannot have an empty value)


class DashboardMixin(rx.State, mixin=True):
    filter_errors: list[str] = []
    query: str = ""
    range_name: str = "24h"
    resolution: str = ""
    range_from: str = ""
    range_to: str = ""
    as_of: str = ""
    _live_generation: int = 0
    _role: str = ""
    _user_id: int = 0

    _route: ClassVar[str] = ""
    _minimum_role: ClassVar[str] = "viewer"
    _export_tables: ClassVar[tuple[str, ...]] = ()  # list-of-dict vars offered as CSV/JSON, the main one first

    def _params(self) -> dict[str, str]:
        raw = self.router.url.query_parameters
        return {str(k): str(v[0] if isinstance(v, list) and v else v) for k, v in dict(raw).items()}

    def _parse(self) -> ParsedFilters:
        return parse_filters(self._params())

    def _load(self, parsed: ParsedFilters) -> Any:  # pragma: no cover - each page implements it
        raise NotImplementedError

    def _apply(self, result: Any) -> None:  # pragma: no cover - each page implements it
        raise NotImplementedError

    def _load_for(self, parsed: ParsedFilters, role: str, user_id: int) -> Any:
        """`_load` for this user; pages whose content depends on who asks (bodies, team scope) override it."""
        return self._load(parsed)

    async def _allowed(self) -> bool:
        user = await current_user(self)
        self._role = user.role if user is not None else ""
        self._user_id = user.user_id if user is not None else 0
        return has_role(user, self._minimum_role)

    async def _refresh(self) -> None:
        parsed = self._parse()
        self.filter_errors = [str(e) for e in parsed.errors]
        self.query = parsed.query_string()
        self.range_name = parsed.range_name
        self.resolution = parsed.params.get("res", "")
        self.range_from = parsed.filters.start.strftime("%Y-%m-%dT%H:%M")
        self.range_to = parsed.filters.end.strftime("%Y-%m-%dT%H:%M")
        self._apply(await asyncio.to_thread(self._load_for, parsed, self._role, self._user_id))

    @rx.event
    @requires(PAGE_ROLE)
    async def load(self) -> Any:
        if not await self._allowed():
            # Signed in without the role: the request log is every user's page (scoped to their teams).
            yield rx.redirect(routes.LOGS if self._role else routes.LOGIN, replace=True)
            return
        await self._refresh()
        self._live_generation += 1
        yield type(self).live(self._live_generation)  # type: ignore[attr-defined]

    def _goto(self, changes: dict[str, str | None]) -> Any:
        """A redirect to this page with `changes` applied to the current URL's parameters."""
        parsed = self._parse()
        if changes.get("range") not in (None, "custom"):
            changes.update({"from": None, "to": None})
        for name in ("from", "to"):
            if changes.get(name):
                changes["range"] = "custom"
                other = "to" if name == "from" else "from"
                changes.setdefault(
                    other, parsed.params.get(other) or (self.range_to if other == "to" else self.range_from)
                )
        if not set(changes) & {"cursor", "id", "page"}:
            changes.update({"cursor": None, "page": None})  # a new filter starts at the first page
        query = parsed.query_string(**changes)
        return rx.redirect(f"{self._route}?{query}" if query else self._route)

    @rx.event
    @requires(PAGE_ROLE)
    async def set_param(self, name: str, value: str) -> Any:
        """Navigate to this page with one filter changed (the URL is the state)."""
        if not await self._allowed():
            return None
        value = "" if value == ANY else str(value)[:300]
        return self._goto({name: value or None})

    @rx.event
    @requires(PAGE_ROLE)
    async def export(self, fmt: str) -> Any:
        """What is on screen as a file: CSV of the page's main table, or JSON of all its tables."""
        if not await self._allowed() or not self._export_tables:
            return None
        tables = {name: [dict(row) for row in getattr(self, name)] for name in self._export_tables}
        stem = self._route.strip("/").replace("/", "-") or "overview"
        if fmt == "json":
            return rx.download(data=tables_json(tables), filename=f"{stem}.json", mime_type="application/json")
        first = self._export_tables[0]
        return rx.download(data=rows_csv(tables[first]), filename=f"{stem}-{first}.csv", mime_type="text/csv")

    @rx.event
    @requires(PAGE_ROLE)
    async def clear_filters(self) -> Any:
        if not await self._allowed():
            return None
        return rx.redirect(self._route)

    @rx.event(background=True)
    @requires(PAGE_ROLE)
    async def live(self, generation: int) -> None:
        """Refresh the figures until the tab closes, navigates away or a newer loop starts."""
        from llm_console.llm_console import app

        interval = get_context().settings.dashboard_live_interval_s
        while True:
            await asyncio.sleep(interval)
            async with self:
                token = self.router.session.client_token
                cookie = self.router.headers.cookie
                stale = generation != self._live_generation or self.router.url.path.rstrip("/") != self._route.rstrip(
                    "/"
                )
                parsed = self._parse()
            if stale or token not in app.event_namespace.token_to_sid:
                return
            user = await get_context().sessions.resolve(session_token(cookie))
            if not has_role(user, self._minimum_role):
                return
            assert user is not None
            result = await asyncio.to_thread(self._load_for, parsed, user.role, user.user_id)
            async with self:
                if generation != self._live_generation:
                    return
                self._apply(result)
