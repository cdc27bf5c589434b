"""Aggregate endpoints: summary, time series, per-model and per-dimension breakdowns, user spend.

Every figure comes from the usage rollups (never a scan of the request log), so these accept the time
range and at most one dimension filter; `params.rollup_filter` says so in a 400 otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from llm_console.api.auth import Principal, require
from llm_console.api.handler import Api, json_response
from llm_console.api.params import URL_NAMES, choice_param, int_param, read_query, rollup_filter
from llm_console.api.shapes import iso, spend_json, totals_json
from llm_console.db.queries.filters import RequestFilters
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.spend import Spend, month_start
from llm_console.db.queries.usage import Totals, aligned, breakdown, bucket_starts, choose_grain, series, totals
from llm_console.db.rollups import DIMS_BY_GRAIN
from llm_console.gateway.errors import bad_request
from llm_console.limits.periods import day_bounds
from llm_console.services.effective_budgets import budget_use
from llm_console.services.filters import MAX_POINTS
from llm_console.services.scope import ORG_WIDE_ROLE
from llm_console.services.usage import provider_totals

GRAIN_NAMES = {"m": "minute", "h": "hour", "d": "day"}
TOP_SERIES = 10
ORDER_BY = {
    "requests": "requests",
    "cost": "cost_usd",
    "errors": "errors",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
}
BREAKDOWN_DIMS = {
    "model": "alias",
    "deployment": "deployment",
    "endpoint": "endpoint",
    "key": "key",
    "user": "user",
    "team": "team",
    "provider": "provider",
}


ORG_WIDE = "Organization-wide figures (members and viewers read their teams' rows at /requests)"


def window(f: RequestFilters, grain: str, dim: tuple[str, str] | None) -> dict[str, Any]:
    """The range asked for, the whole buckets the figures really cover, and the dimension filter applied."""
    lo, hi = aligned(f.start, f.end, grain)
    shown = None
    if dim is not None:  # as the URL said it (the rollups store streams as "1" / "0")
        shown = {URL_NAMES[dim[0]]: {"1": "true", "0": "false"}[dim[1]] if dim[0] == "stream" else dim[1]}
    return {
        "start": iso(f.start),
        "end": iso(f.end),
        "grain": GRAIN_NAMES[grain],
        "covered": {"start": iso(lo), "end": iso(hi)},
        "filter": shown,
    }


async def summary(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, ORG_WIDE_ROLE, ORG_WIDE)
    q = read_query(request, "summary", api.now())
    f, dim = q.filters, rollup_filter(q.filters)
    name, value = dim or ("all", None)
    grain = choose_grain(f.start, f.end, name)
    t = await api.db(totals, f.start, f.end, dim=name, value=value, grain=grain)
    return json_response({**window(f, grain, dim), "totals": totals_json(t)})


def _points(starts: list[datetime], by_bucket: dict[datetime, Totals]) -> list[dict[str, Any]]:
    """One point per bucket start, zero where no traffic was rolled up."""
    empty = Totals()
    return [{"t": iso(at), **totals_json(by_bucket.get(at, empty))} for at in starts]


async def timeseries(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, ORG_WIDE_ROLE, ORG_WIDE)
    q = read_query(request, "timeseries", api.now())
    group = choice_param(q, "group_by", ("model",), None)
    f = q.filters
    dim = rollup_filter(q.filters, accept=("alias",) if group else None, what="Time series")
    name, value = dim or ("all", None)
    grain = q.grain
    if name not in DIMS_BY_GRAIN[grain]:  # keys, users and teams are rolled up per hour at the finest
        if q.values.get("res") == "minute":
            raise bad_request(
                f"Per-minute figures are not kept per {URL_NAMES[name]}; use res=hour.",
                param="res",
                code="invalid_parameter",
            )
        grain = "h"
    starts = bucket_starts(f.start, f.end, grain)
    if len(starts) > MAX_POINTS:
        raise bad_request(f"More than {MAX_POINTS} points: use a coarser res.", param="res", code="invalid_parameter")
    body = window(f, grain, dim)
    if group is None:
        points = await api.db(series, f.start, f.end, grain, dim=name, value=value)
        body["points"] = _points(starts, {p.bucket: p.totals for p in points})
        return json_response(body)
    top = await api.db(
        breakdown, f.start, f.end, "alias", order_by="requests", limit=TOP_SERIES, grain=grain,
        values=None if value is None else [value],
    )  # fmt: skip
    keep = [alias for alias, _ in top]
    per_alias: dict[str, dict[datetime, Totals]] = defaultdict(dict)
    if keep:
        for p in await api.db(series, f.start, f.end, grain, dim="alias", value=value, per_value=True):
            if p.value in keep:
                per_alias[p.value][p.bucket] = p.totals
    body["group_by"] = "model"
    body["series"] = [{"model": alias, "points": _points(starts, per_alias[alias])} for alias in keep]
    return json_response(body)


async def by_model(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, ORG_WIDE_ROLE, ORG_WIDE)
    q = read_query(request, "by-model", api.now())
    f = q.filters
    dim = rollup_filter(f, accept=("alias",), what="Per-model figures")
    order = ORDER_BY[choice_param(q, "order_by", ORDER_BY, "requests") or "requests"]
    limit = int_param(q, "limit", 50, 1, 500)
    grain = choose_grain(f.start, f.end, "alias")
    rows = await api.db(
        breakdown, f.start, f.end, "alias", order_by=order, limit=limit, grain=grain,
        values=None if dim is None else [dim[1]],
    )  # fmt: skip
    return json_response({**window(f, grain, dim), "data": [{"model": a, **totals_json(t)} for a, t in rows]})


def _provider_rows(
    engine: Engine, f: RequestFilters, grain: str, order: str, limit: int
) -> tuple[list[tuple[str, Totals]], Directory]:
    names = load_directory(engine)
    grouped = provider_totals(engine, f.start, f.end, names, grain=grain)
    ranked = sorted(grouped.items(), key=lambda kv: (-getattr(kv[1], order), kv[0]))
    return ranked[:limit], names


def _dimension_rows(
    engine: Engine, f: RequestFilters, dim: str, grain: str, order: str, limit: int, value: str | None
) -> tuple[list[tuple[str, Totals]], Directory]:
    rows = breakdown(
        engine, f.start, f.end, dim, order_by=order, limit=limit, grain=grain, values=None if value is None else [value]
    )
    return rows, load_directory(engine)


async def breakdown_by(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, ORG_WIDE_ROLE, ORG_WIDE)
    q = read_query(request, "breakdown", api.now())
    f = q.filters
    label = choice_param(q, "dim", BREAKDOWN_DIMS, None)
    if label is None:
        raise bad_request(
            f"dim is required: one of {', '.join(BREAKDOWN_DIMS)}.", param="dim", code="missing_parameter"
        )
    dim = BREAKDOWN_DIMS[label]
    flt = rollup_filter(f, accept=() if dim == "provider" else (dim,), what=f"Breakdowns by {label}")
    order = ORDER_BY[choice_param(q, "order_by", ORDER_BY, "requests") or "requests"]
    limit = int_param(q, "limit", 50, 1, 500)
    grain = choose_grain(f.start, f.end, "deployment" if dim == "provider" else dim)
    if dim == "provider":
        rows, names = await api.db(_provider_rows, f, grain, order, limit)
    else:
        rows, names = await api.db(_dimension_rows, f, dim, grain, order, limit, None if flt is None else flt[1])
    data = [{"value": v, "name": v if dim == "provider" else names.name(dim, v), **totals_json(t)} for v, t in rows]
    return json_response({**window(f, grain, flt), "dim": label, "data": data})


def _spend(engine: Engine, now: datetime, tz: str) -> tuple[list[Spend], Directory]:
    """Each user's budget use as the gateway enforces it (tier budgets, increases, resets)."""
    return [u.spend for u in budget_use(engine, "user", now, tz=tz)], load_directory(engine)


async def user_spend(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, ORG_WIDE_ROLE, ORG_WIDE)
    now = api.now()
    q = read_query(request, "user-spend", now)
    tz = api.budget_timezone()
    spends, names = await api.db(_spend, now, tz)
    user = q.filters.user_id
    return json_response(
        {
            "timezone": tz,
            "day_start": iso(day_bounds(now, tz)[0]),
            "month_start": iso(month_start(now, tz)),
            "data": [spend_json(s, names) for s in spends if user is None or s.entity_id == user],
        }
    )
