"""Request-body checks every endpoint shares; each failure is an `ApiError` naming the offending field."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from llm_console.simulator.errors import ApiError


async def read_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def require_model(body: dict[str, Any], known: list[str]) -> str:
    """The requested model name; 400 when missing, 404 (`model_not_found`) when not served here."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "`model` is required and must be a string.", param="model")
    if model not in known:
        raise ApiError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")
    return model


def is_int(value: Any) -> bool:
    """True for JSON integers; `True`/`False` are ints to Python but not to a JSON schema."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def optional_positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ApiError(400, f"`{name}` must be a positive integer, got {value!r}.", param=name)
    return int(value)


def optional_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"`{name}` must be a boolean.", param=name)
    return value
