"""What every analytics endpoint shares: its dependencies, authentication first, and the one error mapper."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from llm_console.api.auth import Authenticator, Principal
from llm_console.gateway.errors import GatewayError
from llm_console.settings import get_settings

log = logging.getLogger("llm_console.api")

T = TypeVar("T")


def budget_timezone_setting() -> str:
    """LLMC_BUDGET_TIMEZONE: budget days and months start at its midnight."""
    return get_settings().budget_timezone


@dataclass(frozen=True, slots=True)
class Api:
    """The API's dependencies, injected so tests build it without the process-wide context."""

    get_engine: Callable[[], Engine]
    authenticate: Authenticator
    now: Callable[[], datetime]
    budget_timezone: Callable[[], str]  # LLMC_BUDGET_TIMEZONE: whose days and months budgets count in

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(engine, *args, **kwargs)` in a worker thread: no query ever blocks the event loop."""
        return await asyncio.to_thread(fn, self.get_engine(), *args, **kwargs)


Handler = Callable[[Api, Request, Principal], Awaitable[Response]]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


DB_UNAVAILABLE = "The database did not answer; try again shortly."


def endpoint(api: Api, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: authenticate, run, and map every failure to an OpenAI-shaped error."""

    async def run(request: Request) -> Response:
        try:
            principal = await api.authenticate(request)
            response = await handler(api, request, principal)
        except GatewayError as exc:
            response = exc.response()
        except SQLAlchemyError:
            log.exception("analytics query failed: %s", request.url.path[:200])
            response = GatewayError(503, DB_UNAVAILABLE, type="server_error", code="database_unavailable").response()
        except Exception:
            log.exception("analytics endpoint failed: %s", request.url.path[:200])
            response = GatewayError(
                500,
                "The analytics API hit an internal error; it has been logged.",
                type="server_error",
                code="internal_error",
            ).response()
        response.headers.setdefault("cache-control", "no-store")
        return response

    return run
