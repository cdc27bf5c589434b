"""Rate-limit analytics (operators and up): one service call per refresh, the range in the URL, live refresh and
export from DashboardMixin; presenters/throttle_analytics.py turns the service's dataclasses into the page's
strings."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.presenters.throttle_analytics import ThrottleView, throttle_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.services.throttle_analytics import load_throttle_analytics
from llm_console.state.dashboard import DashboardMixin


class ThrottleAnalyticsState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.ANALYTICS_LIMITS
    _export_tables: ClassVar[tuple[str, ...]] = (
        "chart",
        "top_keys",
        "top_users",
        "top_teams",
        "episodes",
        "spikes",
        "bursts",
    )
    cards: list[dict[str, str]] = []
    chart: list[dict[str, int | str]] = []
    grain_word: str = "hour"
    refused_total: int = 0
    top_keys: list[dict[str, str]] = []
    top_users: list[dict[str, str]] = []
    top_teams: list[dict[str, str]] = []
    episodes: list[dict[str, str]] = []
    spikes: list[dict[str, str]] = []
    bursts: list[dict[str, str]] = []
    method: str = ""
    spikes_empty: str = ""
    bursts_empty: str = ""

    def _load(self, parsed: ParsedFilters) -> ThrottleView:
        f = parsed.filters
        return throttle_view(load_throttle_analytics(get_context().engine, f.start, f.end, grain=parsed.grain))

    def _apply(self, result: Any) -> None:
        v: ThrottleView = result
        self.cards, self.chart, self.grain_word, self.refused_total = v.cards, v.chart, v.grain_word, v.refused_total
        self.top_keys, self.top_users, self.top_teams = v.top_keys, v.top_users, v.top_teams
        self.episodes, self.spikes, self.bursts = v.episodes, v.spikes, v.bursts
        self.method, self.spikes_empty, self.bursts_empty = v.method, v.spikes_empty, v.bursts_empty
        self.as_of = v.as_of
