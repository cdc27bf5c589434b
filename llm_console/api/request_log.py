"""Row endpoints: keyset pages of the request log (never bodies) and one request with bodies and spans."""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from llm_console.api.auth import Principal, require
from llm_console.api.handler import Api, json_response
from llm_console.api.params import Query, int_param, not_found, read_query
from llm_console.api.shapes import detail_json, row_json
from llm_console.db.queries.filters import RequestFilters
from llm_console.db.queries.logs import Page, RequestDetail, decode_cursor, list_requests
from llm_console.db.queries.names import Directory
from llm_console.fleet.serving import ServedBy, served_by
from llm_console.gateway.errors import bad_request
from llm_console.services.feedback import ScoreView, scores_for
from llm_console.services.logs_page import scoped, visible_request
from llm_console.services.scope import Scope, visible_directory

REQUEST_ID = re.compile(r"[0-9A-Za-z-]{1,36}")
BODIES_ROLE = "member"


def check_search(q: Query, principal: Principal) -> None:
    """Searching bodies reveals what they hold, one guess at a time: it needs the right to read them."""
    if q.filters.search:
        require(principal, BODIES_ROLE, "Searching request bodies (q)")


def _page(
    engine: Engine, f: RequestFilters, cursor: str | None, limit: int, scope: Scope | None
) -> tuple[Page, Directory]:
    return list_requests(engine, scoped(f, scope), cursor=cursor, limit=limit), visible_directory(engine, scope)


async def list_page(api: Api, request: Request, principal: Principal) -> Response:
    q = read_query(request, "requests", api.now())
    check_search(q, principal)
    limit = int_param(q, "limit", 50, 1, 500)
    cursor = q.values.get("cursor")
    if cursor is not None:
        after = decode_cursor(cursor)
        if after is None or not REQUEST_ID.fullmatch(after[1]):
            raise bad_request("cursor is not one this API returned.", param="cursor", code="invalid_parameter")
    page, names = await api.db(_page, q.filters, cursor, limit, principal.scope)
    return json_response({"data": [row_json(r, names) for r in page.rows], "next_cursor": page.next_cursor})


def _detail(
    engine: Engine, request_id: str, scope: Scope | None
) -> tuple[RequestDetail | None, Directory, ServedBy | None, list[ScoreView]]:
    found = visible_request(engine, request_id, scope)
    served = served_by(engine, found.row.deployment_id, found.row.created_at) if found else None
    scores = scores_for(engine, found.row.id, found.row.session_id) if found else []
    return found, visible_directory(engine, scope), served, scores


async def detail(api: Api, request: Request, principal: Principal) -> Response:
    require(principal, BODIES_ROLE, "Reading a request with its bodies")
    read_query(request, "requests/{request_id}", api.now())
    request_id = str(request.path_params.get("request_id", ""))
    if not REQUEST_ID.fullmatch(request_id):
        raise not_found("No request with this id.")
    found, names, served, scores = await api.db(_detail, request_id, principal.scope)
    if found is None:
        raise not_found("No request with this id.")
    return json_response(detail_json(found, names, served, scores))
