"""The request log: filtered keyset pages, one request with its spans, streamed exports, slow requests.

Pages are keyset-paginated on (created_at, id) newest first, so page N costs what page 1 costs; every
filter is a bound parameter, and the search is a LIKE with its wildcards escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, tuple_
from sqlalchemy.engine import Engine

from llm_console.db.models import RequestLog, Span
from llm_console.db.prompt_tables import Prompt, PromptVersion
from llm_console.db.queries.filters import RequestFilters, utc

R = RequestLog.__table__  # type: ignore[attr-defined]
S = Span.__table__  # type: ignore[attr-defined]
P = Prompt.__table__  # type: ignore[attr-defined]
PV = PromptVersion.__table__  # type: ignore[attr-defined]

LIST_COLUMNS = (
    "id",
    "created_at",
    "endpoint",
    "alias",
    "model",
    "deployment_id",
    "key_id",
    "user_id",
    "team_id",
    "status",
    "status_code",
    "error_type",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "ttfb_ms",
    "attempts",
    "end_user",
    "session_id",
    "tags",
    "prompt_version_id",
)


@dataclass(frozen=True, slots=True)
class RequestRow:
    id: str
    created_at: datetime
    endpoint: str
    alias: str
    model: str
    deployment_id: int | None
    key_id: int | None
    user_id: int | None
    team_id: int | None
    status: str
    status_code: int
    error_type: str | None
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    latency_ms: float
    ttfb_ms: float | None
    attempts: int
    end_user: str | None = None
    session_id: str | None = None
    tags: str | None = None
    prompt_version_id: int | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class SpanRow:
    name: str
    start_ms: float
    duration_ms: float
    status: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestDetail:
    row: RequestRow
    request_body: str | None
    response_body: str | None
    error_message: str | None
    client_ip: str
    embedding_dims: int | None
    spans: list[SpanRow]
    prompt: tuple[str, int] | None = None  # the prompt (name, version) the gateway rendered the call from


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[RequestRow]
    next_cursor: str | None


def encode_cursor(row: RequestRow) -> str:
    raw = f"{utc(row.created_at).isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The (created_at, id) a cursor points after, or None when it is not one of ours."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, request_id = raw.split("|", 1)
        if not request_id.isprintable():
            return None
        return utc(datetime.fromisoformat(stamp)), request_id[:36]
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's own wildcards and the escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Filters that are plain equality on the column of the same name.
EQUALS = (
    "alias", "endpoint", "deployment_id", "status", "key_id", "user_id", "team_id", "stream", "end_user", "session_id",
)  # fmt: skip


def _has_nul(f: RequestFilters) -> bool:
    """PostgreSQL refuses text with NUL characters; no stored value holds one, so such a filter matches nothing."""
    texts = (f.alias, f.endpoint, f.status, f.search, f.end_user, f.session_id, f.tag, f.prompt)
    return any(isinstance(v, str) and "\x00" in v for v in texts)


def conditions(f: RequestFilters) -> list[ColumnElement[bool]]:
    if _has_nul(f):
        return [false()]
    where: list[ColumnElement[bool]] = [R.c.created_at >= f.start, R.c.created_at < f.end]
    for attr in EQUALS:
        value = getattr(f, attr)
        if value is not None:
            where.append(R.c[attr] == value)
    if f.tag is not None:  # tags are stored sorted and comma-joined: match one whole
        where.append(("," + R.c.tags + ",").like(like_pattern("," + f.tag + ","), escape="\\"))
    if f.prompt is not None:  # the prompt's version ids (a handful): the requests index on prompt_version_id
        versions = select(PV.c.id).join(P, P.c.id == PV.c.prompt_id).where(P.c.name == f.prompt)
        if f.prompt_version is not None:
            versions = versions.where(PV.c.version == f.prompt_version)
        where.append(R.c.prompt_version_id.in_(versions.scalar_subquery()))
    if f.min_latency_ms is not None:
        where.append(R.c.latency_ms >= f.min_latency_ms)
    if f.min_cost_usd is not None:
        where.append(R.c.cost_usd >= f.min_cost_usd)
    if f.visible_team_ids is not None:
        mine = R.c.user_id == f.visible_user_id if f.visible_user_id is not None else false()
        teams = R.c.team_id.in_(sorted(f.visible_team_ids)) if f.visible_team_ids else false()
        where.append(or_(teams, mine))
    if f.search:
        pattern = like_pattern(f.search)
        where.append(or_(R.c.request_body.ilike(pattern, escape="\\"), R.c.response_body.ilike(pattern, escape="\\")))
    return where


def _row(r: Any) -> RequestRow:
    values = dict(r._mapping)
    values["created_at"] = utc(values["created_at"])
    values["stream"] = bool(values["stream"])
    return RequestRow(**{name: values[name] for name in LIST_COLUMNS})


def list_requests(engine: Engine, f: RequestFilters, *, cursor: str | None = None, limit: int = 50) -> Page:
    """One page of requests, newest first, and the cursor of the next page (None on the last)."""
    where = conditions(f)
    after = decode_cursor(cursor) if cursor else None
    if after is not None:
        where.append(tuple_(R.c.created_at, R.c.id) < tuple_(*after))
    stmt = (
        select(*[R.c[name] for name in LIST_COLUMNS])
        .where(and_(*where))
        .order_by(R.c.created_at.desc(), R.c.id.desc())
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)


def iter_requests(
    engine: Engine, f: RequestFilters, *, batch: int = 2000, limit: int | None = None
) -> Iterator[RequestRow]:
    """Every matching request, newest first, fetched page by page (flat memory for exports of any size)."""
    cursor: str | None = None
    sent = 0
    while True:
        size = batch if limit is None else min(batch, limit - sent)
        if size <= 0:
            return
        page = list_requests(engine, f, cursor=cursor, limit=size)
        yield from page.rows
        sent += len(page.rows)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def get_request(engine: Engine, request_id: str) -> RequestDetail | None:
    """One request with its bodies and spans (spans in start order)."""
    if not request_id or len(request_id) > 36 or not request_id.isprintable():
        return None
    cols = [R.c[name] for name in LIST_COLUMNS]
    extra = [R.c.request_body, R.c.response_body, R.c.error_message, R.c.client_ip, R.c.embedding_dims]
    with engine.connect() as conn:
        r = conn.execute(select(*cols, *extra).where(R.c.id == request_id)).first()
        if r is None:
            return None
        spans = conn.execute(
            select(S.c.name, S.c.start_ms, S.c.duration_ms, S.c.status, S.c.attributes)
            .where(S.c.request_id == request_id)
            .order_by(S.c.start_ms, S.c.id)
        ).all()
        prompt = None
        if r.prompt_version_id is not None:
            prompt = conn.execute(
                select(P.c.name, PV.c.version).join(P, P.c.id == PV.c.prompt_id).where(PV.c.id == r.prompt_version_id)
            ).first()
    return RequestDetail(
        row=_row(r),
        request_body=r.request_body,
        response_body=r.response_body,
        error_message=r.error_message,
        client_ip=r.client_ip,
        embedding_dims=r.embedding_dims,
        spans=[
            SpanRow(s.name, float(s.start_ms), float(s.duration_ms), s.status, dict(s.attributes or {})) for s in spans
        ],
        prompt=None if prompt is None else (prompt.name, int(prompt.version)),
    )


def slow_requests(engine: Engine, f: RequestFilters, *, limit: int = 20) -> list[RequestRow]:
    """The slowest requests in the range, slowest first.

    Over more than a day with only a time filter, a (true) condition on latency steers SQLite to walk the
    latency index from the top (PostgreSQL does so by itself) instead of sorting every row in the range:
    7 days of a million-row month went from ~95 ms to under 1 ms.
    """
    where = conditions(f)
    if f.end - f.start > timedelta(days=1) and not f.dimensions() and f.status is None:
        where += [R.c.latency_ms >= 0, R.c.latency_ms < 1e12]
    stmt = (
        select(*[R.c[name] for name in LIST_COLUMNS])
        .where(and_(*where))
        .order_by(R.c.latency_ms.desc(), R.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(stmt)]


def latest(engine: Engine, *, limit: int = 15, endpoint: str | None = None) -> list[RequestRow]:
    """The newest requests (of one endpoint when given), from the time index."""
    stmt = select(*[R.c[name] for name in LIST_COLUMNS])
    if endpoint is not None:
        stmt = stmt.where(R.c.endpoint == endpoint)
    stmt = stmt.order_by(R.c.created_at.desc(), R.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(stmt)]
