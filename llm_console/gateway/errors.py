"""The one place gateway failures become OpenAI-shaped error responses."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response


class GatewayError(Exception):
    """An error the client should see, in OpenAI's `{"error": {...}}` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers
        self.extra = extra  # more fields for the error object (a 429 names the entity and limit that blocked)

    def body(self, anthropic: bool = False) -> dict[str, object]:
        """OpenAI's shape; for Anthropic-style endpoints, Anthropic's (`type: error`, `error.type` from the
        status) carrying OpenAI's `param` and `code` too, so either SDK reads it."""
        if anthropic:
            kind = ANTHROPIC_TYPES.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error")
            error: dict[str, object] = {"type": kind, "message": self.message, "param": self.param, "code": self.code}
            return {"type": "error", "error": {**error, **(self.extra or {})}}
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": {**error, **(self.extra or {})}}

    def response(self, anthropic: bool = False) -> Response:
        return Response(
            orjson.dumps(self.body(anthropic)),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def is_anthropic_path(path: str) -> bool:
    return path.endswith("/v1/messages")


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def unauthorized(message: str = "Invalid or missing API key.") -> GatewayError:
    return GatewayError(401, message, type="authentication_error", code="invalid_api_key")


def model_not_found(model: str) -> GatewayError:
    return GatewayError(404, f"The model `{model[:200]}` does not exist.", param="model", code="model_not_found")


def model_not_allowed(model: str) -> GatewayError:
    return GatewayError(
        403,
        f"This key may not use the model `{model[:200]}`.",
        type="permission_error",
        param="model",
        code="model_not_allowed",
    )


def upstream_error(status: int, message: str, code: str) -> GatewayError:
    return GatewayError(status, message, type="server_error" if status >= 500 else "invalid_request_error", code=code)


async def gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response(is_anthropic_path(request.url.path))


async def not_found_handler(request: Request, _exc: Exception) -> Response:
    return GatewayError(404, f"Unknown path {request.url.path[:200]}", code="not_found").response()


async def method_not_allowed_handler(request: Request, exc: Exception) -> Response:
    allow = dict(getattr(exc, "headers", None) or {})  # Starlette puts the Allow header here
    return GatewayError(
        405, f"{request.method} is not allowed on {request.url.path[:200]}", code="method_not_allowed", headers=allow
    ).response()


async def internal_error_handler(_request: Request, _exc: Exception) -> Response:
    return GatewayError(
        500, "The gateway hit an internal error; it has been logged.", type="server_error", code="internal_error"
    ).response()
