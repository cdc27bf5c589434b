"""The Logs & traces page: a keyset page of requests, the opened request, retention status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from llm_console.db.queries import logs
from llm_console.db.queries.logs import Page, RequestDetail
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.retention import RetentionRun, last_runs
from llm_console.services.filters import ParsedFilters

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class LogsData:
    page: Page
    detail: RequestDetail | None
    detail_missing: bool
    directory: Directory
    retention: list[RetentionRun]
    as_of: datetime


def load_logs(
    engine: Engine, parsed: ParsedFilters, *, cursor: str | None, request_id: str | None, with_detail: bool = True
) -> LogsData:
    page = logs.list_requests(engine, parsed.filters, cursor=cursor, limit=PAGE_SIZE)
    detail = logs.get_request(engine, request_id) if request_id and with_detail else None
    return LogsData(
        page=page,
        detail=detail,
        detail_missing=bool(request_id) and with_detail and detail is None,
        directory=load_directory(engine),
        retention=last_runs(engine, limit=1),
        as_of=datetime.now(UTC),
    )
