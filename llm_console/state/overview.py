"""Overview: the last 24 hours and 7 days at a glance, refreshed live."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.presenters.overview import OverviewView, overview_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.services.usage import load_overview
from llm_console.state.dashboard import DashboardMixin


class OverviewState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.OVERVIEW
    _export_tables: ClassVar[tuple[str, ...]] = ("cards", "week_cards", "providers", "top_users", "top_keys", "latest")
    cards: list[dict[str, str]] = []
    week_cards: list[dict[str, str]] = []
    providers: list[dict[str, str]] = []
    top_users: list[dict[str, str]] = []
    top_keys: list[dict[str, str]] = []
    chart: list[dict[str, int | str]] = []
    latest: list[dict[str, str]] = []
    total_requests: int = 0

    def _load(self, parsed: ParsedFilters) -> tuple[OverviewView, int]:
        data = load_overview(get_context().engine)
        return overview_view(data), data.day.requests

    def _apply(self, result: Any) -> None:
        view, self.total_requests = result
        self.cards, self.week_cards, self.chart, self.latest = view.cards, view.week_cards, view.chart, view.latest
        self.providers, self.top_users, self.top_keys = view.providers, view.top_users, view.top_keys
        self.as_of = view.as_of
