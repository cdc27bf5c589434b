"""The analytics router: read-only GET endpoints under /api/v1/analytics/, and the console's OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from llm_console.api import analytics, export, request_log
from llm_console.api.auth import KEY_TTL_S, Authenticator, SessionResolver
from llm_console.api.handler import Api, Handler, budget_timezone_setting, endpoint, json_response
from llm_console.api.openapi import PREFIX, console_document
from llm_console.gateway.errors import GatewayError

OPENAPI_PATH = "/api/v1/openapi.json"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ENDPOINTS: tuple[tuple[str, Handler], ...] = (
    ("summary", analytics.summary),
    ("timeseries", analytics.timeseries),
    ("by-model", analytics.by_model),
    ("breakdown", analytics.breakdown_by),
    ("user-spend", analytics.user_spend),
    ("requests", request_log.list_page),
    ("requests/export", export.export),  # before requests/{request_id}, which would match it
    ("requests/{request_id}", request_log.detail),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def openapi(_request: Request) -> Response:
    return json_response(console_document())


def make_analytics_routes(
    get_engine: Callable[[], Engine],
    get_sessions: Callable[[], SessionResolver],
    *,
    now: Callable[[], datetime] = _utcnow,
    key_ttl_s: float = KEY_TTL_S,
    budget_timezone: Callable[[], str] = budget_timezone_setting,
) -> list[Route]:
    """The routes, bound to an engine and a session resolver (callables, so nothing is built at import)."""
    api = Api(get_engine, Authenticator(get_engine, get_sessions, key_ttl_s=key_ttl_s), now, budget_timezone)
    table = [
        Route(f"{PREFIX}/{path}", endpoint(api, handler), methods=["GET"], name="analytics_" + path)
        for path, handler in ENDPOINTS
    ]
    known = list(table)

    async def unmatched(request: Request) -> Response:
        """Wrong method or unknown path under the prefix: OpenAI-shaped, whatever app this is mounted in."""
        if any(route.matches(request.scope)[0] is Match.PARTIAL for route in known):
            return GatewayError(
                405,
                f"{request.method} is not allowed here; the analytics API is read-only (GET).",
                code="method_not_allowed",
                headers={"Allow": "GET, HEAD"},
            ).response()
        return GatewayError(404, f"Unknown path {request.url.path[:200]}", code="not_found").response()

    table += [
        Route(PREFIX, unmatched, methods=ALL_METHODS),
        Route(PREFIX + "/{rest:path}", unmatched, methods=ALL_METHODS),
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
    ]
    return table
