"""Costs & budgets: one service call per refresh; the range lives in the URL (30 days unless it says otherwise)."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import PAGE_ROLE, requires
from llm_console.presenters.costs import EXPORT_COLUMNS, CostsView, costs_view
from llm_console.presenters.export import rows_csv, rows_json
from llm_console.services.context import get_context
from llm_console.services.costs import load_costs
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.services.gpu_cost import GpuCostOptions
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.state.dashboard import DashboardMixin

DEFAULT_RANGE = "30d"


class CostsState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = ORG_WIDE_ROLE  # organization-wide figures
    _route: ClassVar[str] = routes.COSTS
    range_name: str = DEFAULT_RANGE
    cards: list[dict[str, str]] = []
    by_alias: list[dict[str, str]] = []
    by_endpoint: list[dict[str, str]] = []
    by_team: list[dict[str, str]] = []
    by_user: list[dict[str, str]] = []
    by_key: list[dict[str, str]] = []
    trend: list[dict[str, float | str]] = []
    budget: dict[str, str] = {}
    budget_pct: int = 0
    forecast: dict[str, str] = {}
    gpu_summary: dict[str, str] = {}  # self-hosted GPU-hour cost: totals line and the allocation rule
    gpu_deployments: list[dict[str, str]] = []
    gpu_keys: list[dict[str, str]] = []
    gpu_teams: list[dict[str, str]] = []
    _export: list[dict[str, Any]] = []

    def _parse(self) -> ParsedFilters:
        params = self._params()
        if not params.get("range") and not params.get("from"):
            params["range"] = DEFAULT_RANGE
        return parse_filters(params)

    def _load(self, parsed: ParsedFilters) -> CostsView:
        context = get_context()
        gpu = GpuCostOptions.from_settings(context.settings)
        budget = context.settings.monthly_budget_usd
        return costs_view(load_costs(context.engine, parsed, budget, gpu=gpu, gpu_cache=context.gpu_usage))

    def _apply(self, result: Any) -> None:
        view: CostsView = result
        self.cards, self.trend, self.as_of = view.cards, view.trend, view.as_of
        b = view.breakdowns
        self.by_alias, self.by_endpoint, self.by_team = b["alias"], b["endpoint"], b["team"]
        self.by_user, self.by_key = b["user"], b["key"]
        self.budget, self.budget_pct, self.forecast = view.budget, view.budget_pct, view.forecast
        self.gpu_summary, self.gpu_deployments = view.gpu_summary, view.gpu_deployments
        self.gpu_keys, self.gpu_teams = view.gpu_keys, view.gpu_teams
        self._export = view.export

    @rx.event
    @requires(PAGE_ROLE)
    async def export(self, fmt: str) -> Any:
        """The breakdown on screen, every dimension, as plain numbers (CSV or JSON)."""
        if not await self._allowed():
            return None
        stem = f"costs-{self.range_name}"
        if fmt == "json":
            return rx.download(data=rows_json(self._export), filename=f"{stem}.json", mime_type="application/json")
        return rx.download(data=rows_csv(self._export, EXPORT_COLUMNS), filename=f"{stem}.csv", mime_type="text/csv")
