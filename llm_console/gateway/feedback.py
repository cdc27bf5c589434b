"""`POST /v1/feedback`: a score for one of the caller's requests or sessions (llm-console's own endpoint).

Body: `{"request_id" | "session_id": ..., "name": "helpfulness", "value": 0.8 | "category": "correct",
"comment": "..."}` (a string `value` is taken as the category). The request id is the `x-request-id` header
of the scored call. Rows reach the database a moment after the answer, so an id not found yet is looked for
again for a short while before the 404. Answers 201 with the stored score.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llm_console.gateway.body import parse_json_object, read_body
from llm_console.gateway.errors import GatewayError, bad_request
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.services.feedback import FeedbackError, Owner, find_target, parse, store

MAX_BODY = 16 * 1024
POLL_S = 0.2


def _runtime(request: Request) -> GatewayRuntime:
    return request.app.state.llmc_runtime


async def post_feedback(request: Request) -> Response:
    rt = _runtime(request)
    key = await rt.authenticate(request.headers, request.client.host if request.client else "")
    data = parse_json_object(await read_body(request, MAX_BODY))
    try:
        item = parse(data)
    except FeedbackError as exc:
        raise bad_request(exc.message, param=exc.param, code=exc.code) from None
    owner = Owner(key_id=key.id, user_id=key.user_id, team_id=key.team_id)
    wait_s = max(3 * rt.settings.log_flush_interval_s, 2.0)
    deadline = time.monotonic() + wait_s
    while True:
        found = await asyncio.to_thread(find_target, rt.engine, item, owner)
        if found is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    if found is None:
        what, param = (
            (f"request '{item.request_id}'", "request_id")
            if item.request_id is not None
            else (f"session '{item.session_id}'", "session_id")
        )
        raise GatewayError(
            404,
            f"No {what} was made with this key, its owner or its team.",
            param=param,
            code="not_found",
        )
    view = await asyncio.to_thread(store, rt.engine, item, owner, found)
    return JSONResponse(view.to_api(), status_code=201)
