"""Usage & performance: one service call per refresh; filters (range, resolution, model) live in the URL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.fleet.queries import queue_depth
from llm_console.presenters.fleet import SLOTS as QUEUE_SLOTS
from llm_console.presenters.fleet import QueueView, queue_view
from llm_console.presenters.usage import UsageView, usage_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters
from llm_console.services.performance import load_usage
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.state.dashboard import DashboardMixin

SLOTS = 7  # six top models and "other"


class UsageState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.USAGE
    _export_tables: ClassVar[tuple[str, ...]] = (
        "by_model",
        "requests_chart",
        "model_chart",
        "tokens_chart",
        "latency_chart",
        "histogram",
        "stream_split",
        "slow",
        "queue_rows",
        "queue_chart",
    )
    model: str = ""
    models: list[dict[str, str]] = []
    cards: list[dict[str, str]] = []
    requests_chart: list[dict[str, int | str]] = []
    model_names: list[str] = [""] * SLOTS
    model_chart: list[dict[str, int | str]] = []
    tokens_chart: list[dict[str, int | str]] = []
    latency_chart: list[dict[str, float | str]] = []
    histogram: list[dict[str, int | str]] = []
    by_model: list[dict[str, str]] = []
    stream_split: list[dict[str, str]] = []
    slow: list[dict[str, str]] = []
    queue_chart: list[dict[str, Any]] = []
    queue_names: list[str] = [""] * QUEUE_SLOTS
    queue_rows: list[dict[str, str]] = []
    queue_empty: str = ""

    def _load(self, parsed: ParsedFilters) -> tuple[UsageView, list[dict[str, str]], str, QueueView]:
        ctx = get_context()
        data = load_usage(ctx.engine, parsed)
        models = [{"value": a, "label": a} for a in data.directory.aliases]
        model, f, now = parsed.params.get("model", ""), parsed.filters, datetime.now(UTC)
        stale_s = ctx.settings.fleet_engine_stale_s
        queues = queue_depth(ctx.engine, f.start, f.end, now=now, stale_s=stale_s, alias=model)
        return usage_view(data, SLOTS), models, model, queue_view(queues, now, model)

    def _apply(self, result: Any) -> None:
        view, self.models, self.model, queue = result
        self.queue_chart, self.queue_names, self.queue_rows, self.queue_empty = (
            queue.chart,
            queue.names,
            queue.rows,
            queue.empty,
        )
        self.cards, self.requests_chart, self.model_names = view.cards, view.requests_chart, view.model_names
        self.model_chart, self.tokens_chart, self.latency_chart = (
            view.model_chart,
            view.tokens_chart,
            view.latency_chart,
        )
        self.histogram, self.by_model, self.stream_split = view.histogram, view.by_model, view.stream_split
        self.slow, self.as_of = view.slow, view.as_of
