"""The Logs & traces page: a keyset page of requests, the opened request, retention status."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from llm_console.db.queries import logs
from llm_console.db.queries.filters import RequestFilters
from llm_console.db.queries.logs import Page, RequestDetail
from llm_console.db.queries.names import Directory
from llm_console.db.retention import RetentionRun, last_runs
from llm_console.fleet.serving import ServedBy, served_by
from llm_console.services.feedback import ScoreView, scores_for
from llm_console.services.filters import ParsedFilters
from llm_console.services.scope import Scope, visible_directory

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class LogsData:
    page: Page
    detail: RequestDetail | None
    detail_missing: bool
    directory: Directory
    retention: list[RetentionRun]
    as_of: datetime
    served_by: ServedBy | None = None  # the container and GPUs behind the opened request's deployment
    scores: list[ScoreView] = field(default_factory=list)  # feedback on the opened request and its session


def scoped(filters: RequestFilters, scope: Scope | None) -> RequestFilters:
    """`filters` narrowed to the rows `scope` may see (no change for org-wide users)."""
    if scope is None or scope.team_ids is None:
        return filters
    return replace(filters, visible_team_ids=scope.team_ids, visible_user_id=scope.user_id)


def visible_request(engine: Engine, request_id: str, scope: Scope | None) -> RequestDetail | None:
    """One request with bodies and spans, or None when it does not exist or lies outside `scope`."""
    detail = logs.get_request(engine, request_id)
    if detail is None or (scope is not None and not scope.sees(team_id=detail.row.team_id, user_id=detail.row.user_id)):
        return None
    return detail


def load_logs(
    engine: Engine,
    parsed: ParsedFilters,
    *,
    cursor: str | None,
    request_id: str | None,
    with_detail: bool = True,
    scope: Scope | None = None,
) -> LogsData:
    page = logs.list_requests(engine, scoped(parsed.filters, scope), cursor=cursor, limit=PAGE_SIZE)
    detail = visible_request(engine, request_id, scope) if request_id and with_detail else None
    directory = visible_directory(engine, scope)
    return LogsData(
        page=page,
        detail=detail,
        detail_missing=bool(request_id) and with_detail and detail is None,
        directory=directory,
        retention=last_runs(engine, limit=1),
        as_of=datetime.now(UTC),
        served_by=served_by(engine, detail.row.deployment_id, detail.row.created_at) if detail else None,
        scores=scores_for(engine, detail.row.id, detail.row.session_id) if detail else [],
    )
