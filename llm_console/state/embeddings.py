"""Embeddings: one service call per refresh; range and resolution live in the URL."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.presenters.embeddings import EmbeddingsView, embeddings_view
from llm_console.services.context import get_context
from llm_console.services.embeddings import load_embeddings
from llm_console.services.filters import ParsedFilters
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.state.dashboard import DashboardMixin


class EmbeddingsState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.EMBEDDINGS
    _export_tables: ClassVar[tuple[str, ...]] = ("by_model", "dims_chart", "latest")
    cards: list[dict[str, str]] = []
    requests_chart: list[dict[str, int | str]] = []
    dims_chart: list[dict[str, int | str]] = []
    by_model: list[dict[str, str]] = []
    latest: list[dict[str, str]] = []

    def _load(self, parsed: ParsedFilters) -> EmbeddingsView:
        return embeddings_view(load_embeddings(get_context().engine, parsed))

    def _apply(self, result: Any) -> None:
        view: EmbeddingsView = result
        self.cards, self.requests_chart, self.dims_chart = view.cards, view.requests_chart, view.dims_chart
        self.by_model, self.latest, self.as_of = view.by_model, view.latest, view.as_of
