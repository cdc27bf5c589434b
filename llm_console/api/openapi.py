"""The analytics API's OpenAPI description, merged into the gateway's for the console's document.

Parameters are generated from `params.ENDPOINT_PARAMS`, the same table the endpoints check queries
against, so the document cannot list a parameter an endpoint refuses (or miss one it takes).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llm_console.api.export import DEFAULT_MAX_ROWS, MAX_ROWS
from llm_console.api.params import ENDPOINT_PARAMS, MAX_VALUE
from llm_console.gateway.openapi import merge_documents, openapi_document
from llm_console.services.filters import ENDPOINTS, MAX_SEARCH, RANGES
from llm_console.services.sessions import COOKIE_NAME

PREFIX = "/api/v1/analytics"
ID_PATTERN = "^[0-9A-Za-z-]{1,36}$"
SECURITY: list[dict[str, list[str]]] = [{"cookie": []}, {"bearer": []}]

NUM: dict[str, Any] = {"type": "number"}
INT: dict[str, Any] = {"type": "integer"}
STR: dict[str, Any] = {"type": "string"}
ID: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 999_999_999_999}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(props), "properties": props}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "range": ({"type": "string", "enum": [*RANGES, "custom"], "default": "24h"}, "Time range ending now."),
    "from": ({"type": "string", "format": "date-time"}, "Start of a custom range (ISO 8601, UTC if no zone)."),
    "to": ({"type": "string", "format": "date-time"}, "End of a custom range (default: now)."),
    "res": (
        {"type": "string", "enum": ["minute", "hour", "day"]},
        "Time-series resolution (default: the finest that fits; at most 2,000 points).",
    ),
    "model": ({"type": "string", "maxLength": MAX_VALUE}, "Model alias the client asked for."),
    "endpoint": ({"type": "string", "enum": list(ENDPOINTS)}, "Gateway endpoint."),
    "deployment": (ID, "Deployment id."),
    "status": ({"type": "string", "enum": ["ok", "error", "incomplete"]}, "Outcome (row endpoints only)."),
    "key": (ID, "Virtual key id."),
    "user": (ID, "User id."),
    "team": (ID, "Team id."),
    "stream": ({"type": "boolean"}, "Streaming requests only (true) or non-streaming only (false)."),
    "min_latency": ({"type": "number", "minimum": 0}, "Latency at least this many ms (row endpoints only)."),
    "min_cost": ({"type": "number", "minimum": 0}, "Cost at least this many USD (row endpoints only)."),
    "q": (
        {"type": "string", "maxLength": MAX_SEARCH},
        "Text in the request or response body, matched literally (row endpoints only; member role).",
    ),
    "end_user": (
        {"type": "string", "maxLength": 200},
        "The caller's end user (X-LLMC-User or `user`; row endpoints only).",
    ),
    "session": ({"type": "string", "maxLength": 200}, "One session (X-LLMC-Session-Id; row endpoints only)."),
    "tag": ({"type": "string", "maxLength": 50}, "Calls carrying this tag (X-LLMC-Tags; row endpoints only)."),
    "prompt": (
        {"type": "string", "maxLength": 210, "pattern": r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}(@[1-9][0-9]{0,8})?$"},
        "Calls rendered from this prompt (its name), or from one version of it (name@version); row endpoints only.",
    ),
    "group_by": ({"type": "string", "enum": ["model"]}, "One series per model alias (the 10 busiest)."),
    "order_by": (
        {"type": "string", "enum": ["requests", "cost", "errors", "prompt_tokens", "completion_tokens"]},
        "Largest first (default requests).",
    ),
    "limit": ({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Rows per answer."),
    "dim": (
        {"type": "string", "enum": ["model", "deployment", "endpoint", "key", "user", "team", "provider"]},
        "What to break the figures down by (required).",
    ),
    "cursor": ({"type": "string", "maxLength": 200}, "`next_cursor` of the previous page."),
    "format": ({"type": "string", "enum": ["csv", "json"], "default": "csv"}, "CSV or a JSON array."),
    "max_rows": (
        {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "default": DEFAULT_MAX_ROWS},
        "Stop after this many rows (newest first).",
    ),
}

_PCT = _obj({"avg": NUM, "p50": NUM, "p90": NUM, "p99": NUM})
_TOTALS = {
    "requests": INT,
    "errors": INT,
    "error_rate": NUM,
    "stream_requests": INT,
    "prompt_tokens": INT,
    "completion_tokens": INT,
    "cached_tokens": INT,
    "total_tokens": INT,
    "cost_usd": NUM,
    "cost_per_request_usd": NUM,
    "latency_ms": _ref("Percentiles"),
    "ttfb_ms": _ref("Percentiles"),
}
_WINDOW = {
    "start": {"type": "string", "format": "date-time"},
    "end": {"type": "string", "format": "date-time"},
    "grain": {"type": "string", "enum": ["minute", "hour", "day"]},
    "covered": _obj({"start": STR, "end": STR}),
    "filter": _nullable({"type": "object", "additionalProperties": STR}),
}
_ROW = {
    "id": STR,
    "created_at": {"type": "string", "format": "date-time"},
    "endpoint": STR,
    "alias": STR,
    "model": STR,
    "deployment_id": _nullable(INT),
    "key_id": _nullable(INT),
    "user_id": _nullable(INT),
    "team_id": _nullable(INT),
    "status": STR,
    "status_code": INT,
    "error_type": _nullable(STR),
    "stream": {"type": "boolean"},
    "prompt_tokens": INT,
    "completion_tokens": INT,
    "cached_tokens": INT,
    "cost_usd": NUM,
    "latency_ms": NUM,
    "ttfb_ms": _nullable(NUM),
    "attempts": INT,
    "end_user": _nullable(STR),
    "session_id": _nullable(STR),
    "tags": _nullable(STR),
    "prompt_version_id": _nullable(INT),
    "total_tokens": INT,
    "deployment_name": _nullable(STR),
    "key_name": _nullable(STR),
    "user_name": _nullable(STR),
    "team_name": _nullable(STR),
}
_SPEND = {
    "user_id": INT,
    "user": STR,
    "day_usd": NUM,
    "month_usd": NUM,
    "daily_budget_usd": _nullable(NUM),
    "monthly_budget_usd": _nullable(NUM),
    "day_share": _nullable(NUM),
    "month_share": _nullable(NUM),
    "status": {"type": "string", "enum": ["ok", "warning", "exceeded"]},
}
_SPAN = {"name": STR, "start_ms": NUM, "duration_ms": NUM, "status": STR, "attributes": {"type": "object"}}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


SCHEMAS: dict[str, Any] = {
    "Percentiles": _PCT,
    "Totals": _obj(_TOTALS),
    "Summary": _obj({**_WINDOW, "totals": _ref("Totals")}),
    "Point": _obj({"t": {"type": "string", "format": "date-time"}, **_TOTALS}),
    "Timeseries": {
        **_obj(_WINDOW),
        "properties": {
            **_WINDOW,
            "points": _list(_ref("Point")),
            "group_by": {"type": "string", "enum": ["model"]},
            "series": _list(_obj({"model": STR, "points": _list(_ref("Point"))})),
        },
        "description": "`points` without group_by; `group_by` and `series` with it.",
    },
    "ByModel": _obj({**_WINDOW, "data": _list(_obj({"model": STR, **_TOTALS}))}),
    "Breakdown": _obj({**_WINDOW, "dim": STR, "data": _list(_obj({"value": STR, "name": STR, **_TOTALS}))}),
    "UserSpend": _obj({"timezone": STR, "day_start": STR, "month_start": STR, "data": _list(_obj(_SPEND))}),
    "RequestRow": _obj(_ROW),
    "RequestPage": _obj({"data": _list(_ref("RequestRow")), "next_cursor": _nullable(STR)}),
    "RequestDetail": _obj(
        {
            "request": _ref("RequestRow"),
            "request_body": _nullable(STR),
            "response_body": _nullable(STR),
            "error_message": _nullable(STR),
            "client_ip": STR,
            "embedding_dims": _nullable(INT),
            "spans": _list(_obj(_SPAN)),
            "served_by": _nullable(
                _obj({"container_id": STR, "container_name": STR, "image": STR, "host": STR, "gpus": _list(STR)})
            ),
            "feedback": _list(
                _obj(
                    {
                        "id": INT,
                        "object": STR,
                        "created_at": INT,
                        "request_id": _nullable(STR),
                        "session_id": _nullable(STR),
                        "name": STR,
                        "value": _nullable(NUM),
                        "category": _nullable(STR),
                        "comment": _nullable(STR),
                        "source": STR,
                    }
                )
            ),
        }
    ),
}

OPERATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "summary": ("Totals for the range", "From rollups: one dimension filter at most.", _ref("Summary")),
    "timeseries": ("Points per bucket, zero-filled", "From rollups: one dimension filter at most.", _ref("Timeseries")),
    "by-model": ("Totals per model alias", "From rollups: `model` is the only dimension filter.", _ref("ByModel")),
    "breakdown": ("Totals per value of a dimension", "From rollups; names resolved.", _ref("Breakdown")),
    "user-spend": ("Today's and this month's spend per user, against budgets", "", _ref("UserSpend")),
    "requests": ("One keyset page of the request log (no bodies)", "Every filter applies.", _ref("RequestPage")),
    "requests/export": ("The request log as a CSV or JSON download (streamed)", "Every filter applies.", STR),
    "requests/{request_id}": ("One request with bodies and spans", "Needs the member role.", _ref("RequestDetail")),
}

ERRORS = {
    "400": "An unknown, repeated or invalid parameter, or a filter aggregates cannot apply.",
    "401": "No session cookie or admin key, or an invalid, revoked or expired one.",
    "403": "A key without the analytics scope, or a role too low for bodies.",
    "503": "The database did not answer.",
}


def _parameter(name: str) -> dict[str, Any]:
    schema, description = PARAMETERS[name]
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _operation(name: str) -> dict[str, Any]:
    summary, description, schema = OPERATIONS[name]
    params: list[dict[str, Any]] = [{"$ref": f"#/components/parameters/{p}"} for p in ENDPOINT_PARAMS[name]]
    if name == "requests/{request_id}":
        params.append(
            {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
        )
    if name == "requests/export":
        content = {"text/csv": {"schema": STR}, "application/json": {"schema": _list(_ref("RequestRow"))}}
    else:
        content = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {"200": {"description": summary, "content": content}}
    for status, text in ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if name == "requests/{request_id}":
        responses["404"] = {"description": "No request with this id.", "content": responses["400"]["content"]}
    return {
        "get": {
            "summary": summary,
            "description": description,
            "operationId": "analytics_" + name.replace("/{request_id}", "_detail").replace("/", "_").replace("-", "_"),
            "tags": ["analytics"],
            "security": SECURITY,
            "parameters": params,
            "responses": responses,
        }
    }


@lru_cache(maxsize=1)
def analytics_document() -> dict[str, Any]:
    used = sorted({p for names in ENDPOINT_PARAMS.values() for p in names})
    return {
        "paths": {f"{PREFIX}/{name}": _operation(name) for name in OPERATIONS},
        "components": {
            "schemas": SCHEMAS,
            "parameters": {name: _parameter(name) for name in used},
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "tags": [{"name": "analytics", "description": "Read-only usage analytics (docs/analytics-api.md)."}],
    }


@lru_cache(maxsize=1)
def console_document() -> dict[str, Any]:
    """The gateway's document plus the analytics API: what the console process serves."""
    return merge_documents(openapi_document(), analytics_document())
