"""Analytics: one `load_analytics` call per refresh; `presenters.analytics` parses the URL and formats the figures.

Like every dashboard, the URL is the state. Operator and up: the figures are organization-wide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.presenters.analytics import (
    DEFAULT_RANGE,
    SCORE_SLOTS,
    TABLES,
    WEEKDAYS,
    AnalyticsView,
    analytics_view,
    parse_analytics,
    query_string,
)
from llm_console.services.analytics import load_analytics
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.state.dashboard import DashboardMixin


class AnalyticsState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.ANALYTICS
    _export_tables: ClassVar[tuple[str, ...]] = (*TABLES, "traces_chart", "users_chart")
    range_name: str = DEFAULT_RANGE
    model: str = ""
    tag: str = ""
    ab_kind: str = ""
    ab_a: str = ""
    ab_b: str = ""
    model_options: list[dict[str, str]] = []
    tag_options: list[dict[str, str]] = []
    ab_options: list[dict[str, str]] = []
    traces_chart: list[dict[str, Any]] = []
    traces_cards: list[dict[str, str]] = []
    users_chart: list[dict[str, Any]] = []
    users_cards: list[dict[str, str]] = []
    heat_cells: list[list[dict[str, str]]] = [[] for _ in WEEKDAYS]
    heatmap_peak: str = ""
    score_chart: list[dict[str, Any]] = []
    score_names: list[str] = [""] * SCORE_SLOTS
    forecast_cards: list[dict[str, str]] = []
    recommendation_figures: list[list[dict[str, str]]] = []
    texts: dict[str, str] = {}
    economics: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    feedback: list[dict[str, str]] = []
    feedback_over_time: list[dict[str, str]] = []
    comparison: list[dict[str, str]] = []
    ab_arms: list[dict[str, str]] = []
    ab_differences: list[dict[str, str]] = []
    anomalies: list[dict[str, str]] = []
    forecast: list[dict[str, str]] = []
    recommendations: list[dict[str, str]] = []
    heatmap: list[dict[str, str]] = []  # the grid as rows of 24 counts, for the exports

    def _parse(self) -> ParsedFilters:
        return parse_analytics(self._params(), datetime.now(UTC))

    def _goto(self, changes: dict[str, str | None]) -> Any:
        query = query_string(self._parse().params, **changes)
        return rx.redirect(f"{self._route}?{query}" if query else self._route)

    def _load(self, parsed: ParsedFilters) -> tuple[AnalyticsView, dict[str, str]]:
        f, p = parsed.filters, parsed.params
        ab = (p["ab_kind"], p["a"], p["b"]) if {"ab_kind", "a", "b"} <= p.keys() else None
        data = load_analytics(get_context().engine, f.start, f.end, f.end, alias=f.alias, tag=p.get("tag"), ab=ab)
        return analytics_view(data, p), p

    def _apply(self, result: Any) -> None:
        view, p = result
        self.query = query_string(p)
        self.model, self.tag = p.get("model", ""), p.get("tag", "")
        self.ab_kind, self.ab_a, self.ab_b = p.get("ab_kind", ""), p.get("a", ""), p.get("b", "")
        self.model_options, self.tag_options, self.ab_options = view.model_options, view.tag_options, view.ab_options
        self.traces_chart, self.traces_cards = view.traces_chart, view.traces_cards
        self.users_chart, self.users_cards = view.users_chart, view.users_cards
        self.heat_cells, self.heatmap_peak = view.heat_cells, view.heatmap_peak
        self.score_chart, self.score_names = view.score_chart, view.score_names
        self.forecast_cards, self.recommendation_figures = view.forecast_cards, view.recommendation_figures
        self.texts, self.as_of = view.texts, view.texts["as_of"]
        for name in TABLES:
            setattr(self, name, view.tables[name])
