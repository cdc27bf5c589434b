"""Query parameters of the analytics API: the console's filter names, read strictly.

The console drops a bad filter with a note; the API refuses it instead (400), as it does unknown or
repeated parameters and control characters, so a typo never silently widens a query.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from llm_console.db.queries.filters import RequestFilters
from llm_console.gateway.errors import GatewayError, bad_request
from llm_console.services.filters import MAX_SEARCH, PARAMS, ParsedFilters, Problem, parse_filters

FILTERS: tuple[str, ...] = PARAMS
ENDPOINT_PARAMS: dict[str, tuple[str, ...]] = {
    "summary": FILTERS,
    "timeseries": (*FILTERS, "group_by"),
    "by-model": (*FILTERS, "order_by", "limit"),
    "breakdown": (*FILTERS, "dim", "order_by", "limit"),
    "user-spend": ("user",),
    "requests": (*FILTERS, "limit", "cursor"),
    "requests/export": (*FILTERS, "format", "max_rows"),
    "requests/{request_id}": (),
}
ID_PARAMS = frozenset({"deployment", "key", "user", "team"})
MAX_VALUE = 300
# RequestFilters attribute -> the URL parameter that sets it.
URL_NAMES = {
    "alias": "model",
    "endpoint": "endpoint",
    "deployment": "deployment",
    "key": "key",
    "user": "user",
    "team": "team",
    "stream": "stream",
    "status": "status",
    "min_latency_ms": "min_latency",
    "min_cost_usd": "min_cost",
    "search": "q",
    "end_user": "end_user",
    "session_id": "session",
    "tag": "tag",
    "prompt": "prompt",
}
DIMENSION_PARAMS = ("model", "endpoint", "deployment", "key", "user", "team", "stream")
ROW_ONLY_PARAMS = ("status", "min_latency", "min_cost", "q", "end_user", "session", "tag", "prompt")


@dataclass(frozen=True, slots=True)
class Query:
    filters: RequestFilters
    grain: str
    values: dict[str, str]  # every parameter given, by URL name


def _refusal(problems: list[Problem]) -> GatewayError:
    """The console carries on without a bad value; the API refuses the request, saying why."""
    reasons = " ".join(p.reason[:1].upper() + p.reason[1:] for p in problems)
    return bad_request(reasons, param=problems[0].param, code="invalid_parameter")


def read_query(request: Request, endpoint: str, now: datetime) -> Query:
    allowed = ENDPOINT_PARAMS[endpoint]
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        shown = name[:40]
        if name not in allowed:
            accepted = ", ".join(allowed) or "none"
            raise bad_request(
                f"Unknown parameter {shown!r}; accepted: {accepted}.", param=shown, code="unknown_parameter"
            )
        if name in seen:
            raise bad_request(f"Give {name} at most once.", param=name, code="invalid_parameter")
        seen.add(name)
        if len(value) > MAX_VALUE or (name == "q" and len(value) > MAX_SEARCH):
            limit = MAX_SEARCH if name == "q" else MAX_VALUE
            raise bad_request(f"{name} is longer than {limit} characters.", param=name, code="invalid_parameter")
        if not value.isprintable():  # NUL, control and invisible formatting characters
            raise bad_request(f"{name} contains control characters.", param=name, code="invalid_parameter")
        if name in ID_PARAMS and value and not (value.isascii() and value.isdigit()):
            raise bad_request(f"{name} must be a numeric id.", param=name, code="invalid_parameter")
        if value != "":  # an empty value means "not given", as in the console's links
            values[name] = value
    parsed: ParsedFilters = parse_filters({k: v for k, v in values.items() if k in FILTERS}, now)
    if parsed.errors:
        raise _refusal(parsed.errors)
    return Query(parsed.filters, parsed.grain, values)


def int_param(q: Query, name: str, default: int, low: int, high: int) -> int:
    raw = q.values.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}.", param=name, code="invalid_parameter")
    return int(raw)


def choice_param(q: Query, name: str, choices: Collection[str], default: str | None) -> str | None:
    raw = q.values.get(name, default)
    if raw is not None and raw not in choices:
        raise bad_request(
            f"{name} must be one of {', '.join(choices)}; got {raw[:40]!r}.", param=name, code="invalid_parameter"
        )
    return raw


def rollup_filter(
    f: RequestFilters, *, accept: tuple[str, ...] | None = None, what: str = "Aggregates"
) -> tuple[str, str] | None:
    """The one (dimension, value) aggregates can honour, or a 400 saying which filters they accept.

    Rollups keep every counter per single dimension, so aggregate figures can narrow by one of the
    dimension filters and by none of the row-only ones; `accept` narrows the dimensions further.
    """
    row_only = [URL_NAMES[n] for n in f.row_only()]
    dims = f.dimensions()
    names = [URL_NAMES[d] for d, _ in dims]
    if accept is None:
        accepted = f"at most one of {', '.join(DIMENSION_PARAMS)}"
    else:
        accepted = f"only {' or '.join(URL_NAMES[d] for d in accept)}" if accept else "no other filter"
    hint = (
        f"{what} are served from usage rollups, which hold one dimension at a time: they accept the time range "
        f"and {accepted}, and none of {', '.join(ROW_ONLY_PARAMS)}. Use /api/v1/analytics/requests for row filters."
    )
    if row_only:
        raise bad_request(f"{hint} Got {', '.join(row_only)}.", param=row_only[0], code="unsupported_filter")
    if len(dims) > 1 or (dims and accept is not None and dims[0][0] not in accept):
        raise bad_request(f"{hint} Got {', '.join(names)}.", param=names[-1], code="unsupported_filter")
    return dims[0] if dims else None


def not_found(message: str) -> GatewayError:
    return GatewayError(404, message, code="not_found")
