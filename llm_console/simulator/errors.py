"""The one place errors become HTTP bodies, in the dialect (OpenAI, Anthropic, Azure) of the route that failed."""

from __future__ import annotations

import enum
from typing import Any

from starlette.responses import Response

from llm_console.simulator.wire import OrjsonResponse

# Anthropic names the error by its status; anything unlisted is a generic server error.
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class Dialect(enum.Enum):
    """Which provider's error shape a route answers with."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    AZURE = "azure"


class ApiError(Exception):
    """A client-visible failure; `type=None` marks Azure's own routing errors, which carry only code and message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code


def simulated_failure() -> ApiError:
    """The injected server error (`SimulatorConfig.error_rate`) of the OpenAI-shaped routes."""
    return ApiError(500, "Simulated upstream failure.", type="server_error", code="internal_error")


def error_body(exc: ApiError, dialect: Dialect) -> dict[str, Any]:
    """The JSON body a provider of this dialect would send for the error."""
    if dialect is Dialect.ANTHROPIC:
        kind = ANTHROPIC_ERROR_TYPES.get(exc.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": exc.message}}
    if dialect is Dialect.AZURE and exc.type is None:
        return {"error": {"code": exc.code or str(exc.status), "message": exc.message}}
    return {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}


def error_response(exc: ApiError, dialect: Dialect) -> Response:
    return OrjsonResponse(error_body(exc, dialect), status_code=exc.status)
