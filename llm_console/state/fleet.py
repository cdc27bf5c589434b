"""Fleet pages: the overview, one deployment's engine and containers, the KV cache. Read-only for every
signed-in role from viewer up; the range lives in the URL (the last hour unless it says otherwise) and the
figures refresh live like the other dashboards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.fleet.queries import deployment_fleet, fleet_overview, kv_cache, memory_trend
from llm_console.presenters.fleet import (
    SLOTS,
    DeploymentView,
    FleetView,
    KvView,
    deployment_view,
    fleet_view,
    kv_view,
)
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.state.dashboard import DashboardMixin

DEFAULT_RANGE = "1h"


def _fleet(parsed: ParsedFilters) -> FleetView:
    ctx = get_context()
    f = parsed.filters
    overview = fleet_overview(ctx.engine, datetime.now(UTC), stale_s=ctx.settings.fleet_engine_stale_s)
    return fleet_view(overview, memory_trend(ctx.engine, f.start, f.end))


def _deployment(parsed: ParsedFilters) -> DeploymentView:
    ctx = get_context()
    f, now = parsed.filters, datetime.now(UTC)
    if f.deployment_id is None:
        return DeploymentView(title="No deployment chosen", as_of=now.strftime("%H:%M:%S UTC"))
    stale_s = ctx.settings.fleet_engine_stale_s
    return deployment_view(deployment_fleet(ctx.engine, f.deployment_id, f.start, f.end, now=now, stale_s=stale_s), now)


def _kv(parsed: ParsedFilters) -> KvView:
    ctx = get_context()
    f, now = parsed.filters, datetime.now(UTC)
    return kv_view(kv_cache(ctx.engine, f.start, f.end, now=now, stale_s=ctx.settings.fleet_engine_stale_s), now)


class FleetRangeMixin(DashboardMixin, mixin=True):
    range_name: str = DEFAULT_RANGE

    def _parse(self) -> ParsedFilters:
        params = self._params()
        if not params.get("range") and not params.get("from"):
            params["range"] = DEFAULT_RANGE
        return parse_filters(params)


class FleetState(FleetRangeMixin, rx.State):
    _route: ClassVar[str] = routes.FLEET
    _export_tables: ClassVar[tuple[str, ...]] = ("containers", "engines", "gpus")
    banners: list[dict[str, str]] = []
    cards: list[dict[str, str]] = []
    containers: list[dict[str, str]] = []
    containers_empty: str = ""
    gpus: list[dict[str, str | int]] = []
    gpu_processes: list[list[dict[str, str]]] = []
    gpus_empty: str = ""
    matrix_columns: list[str] = []
    matrix_rows: list[list[str]] = []
    trend: list[dict[str, Any]] = []
    trend_names: list[str] = [""] * SLOTS
    engines: list[dict[str, str]] = []

    def _load(self, parsed: ParsedFilters) -> FleetView:
        return _fleet(parsed)

    def _apply(self, result: Any) -> None:
        v: FleetView = result
        self.banners, self.cards, self.as_of = v.banners, v.cards, v.as_of
        self.containers, self.containers_empty = v.containers, v.containers_empty
        self.gpus, self.gpu_processes, self.gpus_empty = v.gpus, v.gpu_processes, v.gpus_empty
        self.matrix_columns, self.matrix_rows = v.matrix_columns, v.matrix_rows
        self.trend, self.trend_names, self.engines = v.trend, v.trend_names, v.engines


class FleetDeploymentState(FleetRangeMixin, rx.State):
    _route: ClassVar[str] = routes.FLEET_DEPLOYMENT
    _export_tables: ClassVar[tuple[str, ...]] = ("timeline", "containers", "chart")
    found: bool = False
    title: str = ""
    info: dict[str, str] = {}
    engine_status: str = ""
    cards: list[dict[str, str]] = []
    chart: list[dict[str, Any]] = []
    containers: list[dict[str, str]] = []
    timeline: list[dict[str, str]] = []

    def _load(self, parsed: ParsedFilters) -> DeploymentView:
        return _deployment(parsed)

    def _apply(self, result: Any) -> None:
        v: DeploymentView = result
        self.found, self.title, self.info, self.as_of = v.found, v.title, v.info, v.as_of
        self.engine_status, self.cards, self.chart = v.engine_status, v.cards, v.chart
        self.containers, self.timeline = v.containers, v.timeline


class FleetKvState(FleetRangeMixin, rx.State):
    _route: ClassVar[str] = routes.FLEET_KV
    _export_tables: ClassVar[tuple[str, ...]] = ("rows", "usage_chart", "hit_chart")
    rows: list[dict[str, str | int]] = []
    usage_chart: list[dict[str, Any]] = []
    hit_chart: list[dict[str, Any]] = []
    names: list[str] = [""] * SLOTS

    def _load(self, parsed: ParsedFilters) -> KvView:
        return _kv(parsed)

    def _apply(self, result: Any) -> None:
        v: KvView = result
        self.rows, self.usage_chart, self.hit_chart, self.names, self.as_of = (
            v.rows,
            v.usage_chart,
            v.hit_chart,
            v.names,
            v.as_of,
        )
