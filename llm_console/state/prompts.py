"""The Prompts pages: the list (search and page in the URL) and one prompt's detail (its name and the range of
its figures in the URL, live refresh from DashboardMixin). Viewers read; the forms that write are in
state/prompt_forms.py. Each refresh is one service call; the presenters turn the result into strings.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlencode

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import requires
from llm_console.auth.roles import has_role_name
from llm_console.presenters import prompts as present
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, Problem, parse_filters
from llm_console.services.prompt_stats import load_prompt_list, load_prompt_page
from llm_console.state.dashboard import DashboardMixin
from llm_console.state.keys import caller

RANGES = ("24h", "7d", "30d")
DEFAULT_RANGE = "7d"


class PromptsState(rx.State):
    rows: list[dict[str, str]] = []
    count_text: str = ""
    page: int = 1
    pages: int = 1
    search: str = ""
    can_create: bool = False

    def _href(self, **changes: str) -> str:
        params = {"q": self.search, "page": ""} | changes
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{routes.PROMPTS}?{query}" if query else routes.PROMPTS

    @rx.event
    @requires("viewer")
    async def load(self) -> Any:
        who = await caller(self, "viewer")
        if who is None:
            return rx.redirect(routes.LOGIN, replace=True)
        raw = {k: str(v)[:200] for k, v in dict(self.router.url.query_parameters).items()}
        self.search = raw.get("q", "").strip()
        page = int(raw["page"]) if raw.get("page", "").isdigit() else 1
        self.can_create = has_role_name(who[0].role, "member")
        data = await asyncio.to_thread(load_prompt_list, get_context().engine, search=self.search, page=page)
        self.rows, self.count_text = present.list_rows(data), present.count_text(data)
        self.page, self.pages = data.page, data.pages
        return None

    @rx.event
    @requires("viewer")
    async def search_prompts(self, form: dict[str, Any]) -> Any:
        if await caller(self, "viewer") is None:
            return None
        return rx.redirect(self._href(q=str(form.get("q", "") or "")[:200].strip()))

    @rx.event
    @requires("viewer")
    async def goto_page(self, page: int) -> Any:
        if await caller(self, "viewer") is None or not str(page).isdigit():
            return None
        return rx.redirect(self._href(page=str(max(1, min(int(page), self.pages)))))


class PromptDetailState(DashboardMixin, rx.State):
    _route: ClassVar[str] = routes.PROMPT_DETAIL
    _export_tables: ClassVar[tuple[str, ...]] = ("figures", "versions")
    range_name: str = DEFAULT_RANGE
    name: str = ""
    found: bool = False
    error: str = ""
    notice: str = ""
    title: str = ""
    kind: str = ""
    description: str = ""
    labels: list[dict[str, str]] = []
    versions: list[dict[str, str]] = []
    figures: list[dict[str, str]] = []
    options: list[dict[str, str]] = []
    label_names: list[str] = []
    window: str = ""
    can_edit: bool = False
    can_promote: bool = False  # operators and up may move the production label
    selected: str = ""
    view: dict[str, str] = {}
    view_messages: list[dict[str, str]] = []
    diff_from: str = ""
    diff_to: str = ""
    diff: list[dict[str, str]] = []
    diff_summary: str = ""
    _contents: dict[str, dict[str, Any]] = {}
    _shown: str = ""

    def _parse(self) -> ParsedFilters:
        params = self._params()
        name = params.get("name", "").strip()[:200]
        asked = params.get("range", "")
        problems = [] if asked in ("", *RANGES) else [Problem("Figures cover 24h, 7d or 30d; showing 7d.", "range")]
        parsed = parse_filters({"range": asked if asked in RANGES else DEFAULT_RANGE})
        return replace(parsed, errors=[*parsed.errors, *problems], params={**parsed.params, "name": name})

    def _goto(self, changes: dict[str, str | None]) -> Any:
        wanted = changes.get("range") or self.range_name
        return rx.redirect(present.detail_href(self.name, wanted if wanted in RANGES else DEFAULT_RANGE))

    async def _allowed(self) -> bool:
        allowed = await super()._allowed()
        self.notice = ""  # a saved-version message belongs to the visit it was shown on
        self.can_edit, self.can_promote = has_role_name(self._role, "member"), has_role_name(self._role, "operator")
        return allowed

    def _load(self, parsed: ParsedFilters) -> present.DetailView:
        f = parsed.filters
        return present.detail_view(load_prompt_page(get_context().engine, parsed.params["name"], f.start, f.end))

    def _put(self, name: str, value: Any) -> None:
        """Assign only what changed: a live refresh then sends the figures, not every version's text again."""
        if getattr(self, name) != value:
            setattr(self, name, value)

    def _apply(self, result: Any) -> None:
        v: present.DetailView = result
        if v.title != self.name:
            self.name, self.selected, self.diff_from, self.diff_to, self.notice = v.title, "", "", "", ""
        for attr in ("found", "error", "title", "kind", "description", "labels", "versions", "figures", "options"):
            self._put(attr, getattr(v, attr))
        self._put("label_names", v.label_names)
        self.window, self.as_of, self._contents = v.window, v.as_of, v.contents
        numbers = [o["value"] for o in v.options]  # newest first
        if self.selected not in numbers:
            self.selected = numbers[0] if numbers else ""
        if self.diff_to not in numbers or self.diff_from not in numbers:
            self.diff_to = numbers[0] if numbers else ""
            self.diff_from = numbers[1] if len(numbers) > 1 else self.diff_to
        self._show()

    def _show(self) -> None:
        """The viewed version, and the diff (recomputed only when its choice changed: templates never change)."""
        chosen = self._contents.get(self.selected, {})
        view = {k: str(chosen.get(k, "")) for k in ("title", "meta", "message", "kind", "text")}
        view["variables"] = ", ".join(chosen.get("variables", [])) or "none"
        view["config"] = present.config_json(chosen.get("config", {}))
        self._put("view", view)
        self._put("view_messages", list(chosen.get("messages", [])))
        shown = f"{self.name}|{self.diff_from}|{self.diff_to}"
        if shown != self._shown:
            self._shown = shown
            diff = present.diff_versions(self._contents, self.diff_from, self.diff_to)
            self.diff, self.diff_summary = diff.rows, diff.summary

    def _focus(self, version: str) -> None:
        """Show a version just written: it is viewed, and diffed against the one before it."""
        numbers = [o["value"] for o in self.options]
        if version in numbers:
            i = numbers.index(version)
            self.selected = self.diff_to = version
            self.diff_from = numbers[i + 1] if i + 1 < len(numbers) else version
            self._show()

    @rx.event
    @requires("viewer")
    async def select_version(self, version: str) -> None:
        if await caller(self, "viewer") is not None and str(version) in self._contents:
            self.selected = str(version)
            self._show()

    @rx.event
    @requires("viewer")
    async def choose_diff(self, side: str, version: str) -> None:
        """Pick either side of the diff ("from" or "to")."""
        if await caller(self, "viewer") is None or str(version) not in self._contents:
            return
        if side == "from":
            self.diff_from = str(version)
        elif side == "to":
            self.diff_to = str(version)
        self._show()
