"""Request body reading with a hard size cap, and strict JSON parsing."""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request

from llm_console.gateway.errors import GatewayError, bad_request


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body is larger than {limit} bytes.", code="request_too_large")


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing before buffering when Content-Length is over `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request("Content-Length is not a number.")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise bad_request("Request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON (or not UTF-8): {exc.msg}.") from exc
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object.")
    return data


# pydantic names the member of a union it tried (`prompt.str`, `input.list[int]`): not part of the field path.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|(dict|list|literal|tuple)\[.*\])$", re.IGNORECASE)


def validation_error(exc: ValidationError) -> GatewayError:
    """The first pydantic error as one readable OpenAI-style message with its `param`."""
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(p) for p in first["loc"] if not _UNION_TAG.match(str(p))) or None
    return bad_request(f"Invalid value for '{param}': {first['msg']}." if param else first["msg"], param=param)
