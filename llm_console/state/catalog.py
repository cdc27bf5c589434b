"""Model catalog: the list (search and sort in the URL), one model's page (?alias=) or a comparison (?compare=).

Everyone signed in reads it; the upstream URLs and the edit form's values go only to operators and admins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.auth.roles import has_role_name
from llm_console.presenters import catalog as present
from llm_console.services import catalog
from llm_console.services.catalog import SORT_KEYS, CatalogError
from llm_console.services.context import get_context
from llm_console.services.snippets import gateway_root

EDIT_ROLE = "operator"
MAX_COMPARE = 4


def _view(params: dict[str, str], role: str, root: str) -> dict[str, Any]:
    """Every display value of the view the URL asks for (runs in a thread: one service call, then formatting)."""
    engine, operator = get_context().engine, has_role_name(role, EDIT_ROLE)
    if params.get("compare"):
        pairs = catalog.compare(engine, params["compare"].split(",")[:8], show_upstream=operator)
        return {
            "view": "compare",
            "compare_columns": [e.alias for e, _ in pairs],
            "compare_rows": present.compare_rows(pairs),
        }
    if params.get("alias"):
        entry = catalog.get_entry(engine, params["alias"], show_upstream=operator)
        if entry is None:
            raise CatalogError(f"no model {params['alias']!r} in the catalog")
        return {
            "view": "detail",
            "detail": present.detail(entry, root),
            "caps": present.capabilities(entry),
            "deployments": present.deployment_rows(entry, show_upstream=operator),
            "snippets": present.snippet_rows(entry, root),
            "edit": present.edit_defaults(entry) if operator else {},
        }
    sort = params.get("sort") or "alias"
    descending = params.get("dir") == "desc"
    entries = catalog.list_entries(
        engine, search=params.get("q", ""), sort=sort, descending=descending, show_upstream=operator
    )
    return {
        "view": "list",
        "rows": [present.row(e) for e in entries],
        "matrix": [present.capability_row(e) for e in entries],
        "notices": present.notices(entries),
        "sort_hrefs": present.sort_links(params.get("q", ""), sort, descending, SORT_KEYS),
        "sort_marks": present.sort_marks(sort, descending, SORT_KEYS),
    }


class CatalogState(rx.State):
    view: str = "list"
    error: str = ""
    search: str = ""
    back_href: str = routes.CATALOG
    can_edit: bool = False
    rows: list[dict[str, str]] = []
    matrix: list[dict[str, str]] = []
    notices: list[dict[str, str]] = []
    sort_hrefs: dict[str, str] = {}
    sort_marks: dict[str, str] = {}
    selected: list[str] = []
    detail: dict[str, str] = {}
    caps: list[dict[str, str]] = []
    deployments: list[dict[str, str]] = []
    snippets: list[dict[str, str]] = []
    edit: dict[str, str] = {}
    edit_generation: int = 0
    compare_columns: list[str] = []
    compare_rows: list[list[str]] = []

    def _params(self) -> dict[str, str]:
        raw = dict(self.router.url.query_parameters)
        return {k: str(v)[:2000] for k, v in raw.items() if k in ("q", "sort", "dir", "alias", "compare")}

    async def _role(self, minimum: str = "viewer") -> str | None:
        """The caller's role when it is at least `minimum`, else None."""
        user = await current_user(self)
        return user.role if user is not None and has_role(user, minimum) else None

    @rx.var
    def compare_href(self) -> str:
        return present.compare_href(self.selected)

    @rx.event
    @requires("viewer")
    async def load(self) -> Any:
        role = await self._role()
        if role is None:
            return rx.redirect(routes.LOGIN, replace=True)
        params = self._params()
        headers = self.router.headers
        root = gateway_root(get_context().settings.public_url, origin=headers.origin, host=headers.host)
        self.search = params.get("q", "")[:200]
        self.back_href = present.list_href(self.search, params.get("sort", "alias"), params.get("dir") == "desc")
        self.can_edit = has_role_name(role, EDIT_ROLE)
        try:
            values = await asyncio.to_thread(_view, params, role, root)
        except CatalogError as exc:
            self.error, self.view = str(exc), "error"
            return None
        self.error = ""
        for name, value in values.items():
            setattr(self, name, value)
        self.edit_generation += 1
        return None

    @rx.event
    @requires("viewer")
    async def search_catalog(self, form: dict[str, Any]) -> Any:
        """Navigate to the list filtered by the search box (the URL is the state)."""
        if await self._role() is None:
            return None
        params = self._params()
        query = str(form.get("q", "") or "")[:200].strip()
        return rx.redirect(present.list_href(query, params.get("sort", "alias"), params.get("dir") == "desc"))

    @rx.event
    @requires("viewer")
    async def toggle_compare(self, alias: str) -> None:
        """Add a model to (or take it off) the comparison, up to four."""
        if await self._role() is None:
            return
        alias = str(alias)[:300]
        if alias in self.selected:
            self.selected = [a for a in self.selected if a != alias]
        elif len(self.selected) < MAX_COMPARE and alias in {r["alias"] for r in self.rows}:
            self.selected = [*self.selected, alias]

    @rx.event
    @requires("viewer")
    async def clear_compare(self) -> None:
        if await self._role() is not None:
            self.selected = []


class CatalogEditState(rx.State):
    """The metadata form and the "Refresh metadata" button on a model's page (operators and admins)."""

    message: str = ""
    edit_error: str = ""
    for_alias: str = ""  # the model the message is about (the page shows it only there)
    busy: bool = False

    async def _operator(self) -> str | None:
        """The caller's email when they may change the catalog, else None (and a readable refusal)."""
        user = await current_user(self)
        self.for_alias = self._alias()
        if user is None or not has_role(user, EDIT_ROLE):
            self.edit_error, self.message = "Only operators and admins can change the catalog.", ""
            return None
        return user.email

    def _alias(self) -> str:
        return str(self.router.url.query_parameters.get("alias", ""))[:300]

    @rx.event
    @requires(EDIT_ROLE)
    async def save(self, form: dict[str, Any]) -> Any:
        actor = await self._operator()
        if actor is None:
            return None
        changes = present.changes_from_form(form)
        try:
            await asyncio.to_thread(catalog.update_info, get_context().engine, self._alias(), changes, actor=actor)
        except CatalogError as exc:
            self.edit_error, self.message = str(exc), ""
            return None
        self.edit_error, self.message = "", "Saved."
        return CatalogState.load

    @rx.event(background=True)
    @requires(EDIT_ROLE)
    async def refresh_metadata(self) -> Any:
        """Ask the alias's deployments for their /v1/models again (slow: outside the state lock), then reload."""
        async with self:
            actor = await self._operator()
            if actor is None or self.busy:
                return None
            self.busy, alias = True, self._alias()
        ctx = get_context()
        try:
            message, error = (
                await catalog.refresh_metadata(
                    ctx.engine, ctx.runtime.box, alias, extra_allowlist=ctx.settings.upstream_allowlist
                ),
                "",
            )
        except CatalogError as exc:
            message, error = "", str(exc)
        async with self:
            self.busy, self.message, self.edit_error = False, message, error
        return CatalogState.load
