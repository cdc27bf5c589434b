"""`POST /v1/feedback`: a score for one of the caller's requests or sessions (llm-console's own endpoint).

Body: `{"request_id" | "session_id": ..., "name": "helpfulness", "value": 0.8 | "category": "correct",
"comment": "..."}` (a string `value` is taken as the category). The request id is the `x-request-id` header
of the scored call. Rows reach the database a moment after the answer: the endpoint first lets this process's
log writer catch up, and a request id issued within the last minute that is still not found (another replica
may hold it) is looked for again for a couple of seconds before the 404. Answers 201 with the stored score.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llm_console.gateway.body import parse_json_object, read_body
from llm_console.gateway.errors import GatewayError, bad_request
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.services.feedback import FeedbackError, Owner, ScoreView, find_target, parse, store
from llm_console.telemetry.convert import ScoreRecord

MAX_BODY = 16 * 1024
POLL_S = 0.2
RECENT_S = 60.0


def _runtime(request: Request) -> GatewayRuntime:
    return request.app.state.llmc_runtime


async def _caught_up(rt: GatewayRuntime, target: int, deadline: float) -> None:
    while rt.log.written + rt.log.spilled < target and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def _recent(request_id: str) -> bool:
    """A request id this gateway could have issued within the last RECENT_S (ids are UUIDv7: their first
    48 bits are Unix milliseconds), so one worth waiting for; anything else is answered at once."""
    try:
        value = uuid.UUID(request_id)
    except ValueError:
        return False
    if value.version != 7:
        return False
    age_s = time.time() - (value.int >> 80) / 1000
    return -RECENT_S < age_s < RECENT_S


async def post_feedback(request: Request) -> Response:
    rt = _runtime(request)
    key = await rt.authenticate(request.headers, request.client.host if request.client else "")
    data = parse_json_object(await read_body(request, MAX_BODY))
    try:
        item = parse(data)
    except FeedbackError as exc:
        raise bad_request(exc.message, param=exc.param, code=exc.code) from None
    owner = Owner(key_id=key.id, user_id=key.user_id, team_id=key.team_id)
    deadline = time.monotonic() + max(3 * rt.settings.log_flush_interval_s, 2.0)
    await _caught_up(rt, rt.log.submitted, deadline)  # this process's calls made before now are written
    found = await asyncio.to_thread(find_target, rt.engine, item, owner)
    if found is None and item.request_id is not None and _recent(item.request_id):
        while found is None and time.monotonic() < deadline:  # another replica may still be writing it
            await asyncio.sleep(POLL_S)
            found = await asyncio.to_thread(find_target, rt.engine, item, owner)
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
    rt.telemetry.offer_scores([_score_record(view)])  # to Langfuse, when that export is on
    return JSONResponse(view.to_api(), status_code=201)


def _score_record(v: ScoreView) -> ScoreRecord:
    return ScoreRecord(
        v.id, v.created_at, v.name, v.value, v.category, v.comment, v.request_id, v.session_id, v.source, v.alias
    )
