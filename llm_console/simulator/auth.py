"""Optional upstream API-key check, answering a wrong or missing key the way each provider does.

OpenAI clients send `Authorization: Bearer`, Anthropic's `x-api-key` and Azure's `api-key`; any of them may
carry the key on any route, so a gateway that translates between dialects is not tripped by header choice.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.errors import ApiError, Dialect

AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
    "an active subscription and use a correct regional API endpoint for your resource."
)
OPENAI_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def presented_keys(headers: Headers) -> list[str]:
    """Every key the request carries, in the order Authorization, x-api-key, api-key."""
    keys: list[str] = []
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        keys.append(credentials.strip() if scheme.lower() == "bearer" else authorization)
    keys.extend(value for name in ("x-api-key", "api-key") if (value := headers.get(name)) is not None)
    return keys


def check_api_key(headers: Headers, config: SimulatorConfig, dialect: Dialect) -> None:
    """Pass when no key is configured or any presented key matches; otherwise raise a 401 in the dialect."""
    if config.api_key is None:
        return
    expected = config.api_key.encode()
    keys = presented_keys(headers)
    if any(hmac.compare_digest(key.encode(), expected) for key in keys):
        return
    presented = keys[0] if keys else None
    raise _unauthorized(presented, dialect, echo=config.echo_key_in_errors)


def _unauthorized(presented: str | None, dialect: Dialect, *, echo: bool) -> ApiError:
    # Real providers quote the rejected key back; the gateway must strip it before a client sees the body.
    echoed = f"Incorrect API key provided: {presented}" if echo and presented is not None else None
    if dialect is Dialect.ANTHROPIC:
        fallback = "x-api-key header is required" if presented is None else "invalid x-api-key"
        return ApiError(401, echoed or fallback, type="authentication_error")
    if dialect is Dialect.AZURE:
        return ApiError(401, echoed or AZURE_DENIED, type=None, code="401")
    if presented is None:
        return ApiError(401, OPENAI_MISSING)
    return ApiError(401, echoed or "Incorrect API key provided.", code="invalid_api_key")
