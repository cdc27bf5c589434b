"""Streamed exports of the request log as CSV or a JSON array, in flat memory for any number of rows.

Rows come from `iter_requests` (keyset pages) and are encoded a chunk at a time in a worker thread; only
one chunk is ever held. The first chunk is read before the response starts, so a failing query is still an
ordinary JSON error; a failure later cuts the stream short (the client sees a broken transfer).
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llm_console.api.auth import Principal
from llm_console.api.handler import Api
from llm_console.api.params import choice_param, int_param, read_query
from llm_console.api.request_log import check_search
from llm_console.api.shapes import ROW_FIELDS, row_json
from llm_console.db.queries.logs import RequestRow, iter_requests
from llm_console.db.queries.names import Directory
from llm_console.presenters.export import safe_cell
from llm_console.services.logs_page import scoped
from llm_console.services.scope import visible_directory

log = logging.getLogger("llm_console.api")

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
DEFAULT_MAX_ROWS = 100_000
MAX_ROWS = 1_000_000
PAGE_ROWS = 500
CHUNK_ROWS = 250
TEXT_FIELDS = frozenset({"endpoint", "alias", "model", "status", "error_type", "deployment_name", "key_name",
                         "user_name", "team_name"})  # fmt: skip


def _cell(name: str, value: Any) -> Any:
    """Text a spreadsheet would run as a formula is prefixed with an apostrophe (CSV injection)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in TEXT_FIELDS and isinstance(value, str):
        return safe_cell(value)
    return value


class Encoder:
    """Turns rows into the bytes of one export format, a chunk at a time; `take` runs in a worker thread."""

    def __init__(self, fmt: str, names: Directory) -> None:
        self.fmt = fmt
        self.names = names
        self.started = False

    def take(self, rows: Iterator[RequestRow], n: int) -> tuple[bytes, bool]:
        """The next `n` rows encoded (with the opening bytes first), and whether the rows ran out."""
        batch = [row_json(r, self.names) for r in itertools.islice(rows, n)]
        done = len(batch) < n
        data = self._csv(batch) if self.fmt == "csv" else self._json(batch, done)
        self.started = True
        return data, done

    def _csv(self, batch: list[dict[str, Any]]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if not self.started:
            writer.writerow(ROW_FIELDS)
        writer.writerows([_cell(k, row[k]) for k in ROW_FIELDS] for row in batch)
        return out.getvalue().encode()

    def _json(self, batch: list[dict[str, Any]], done: bool) -> bytes:
        # One row at a time into one buffer: each bytes object orjson returns carries kilobytes of spare capacity.
        out = bytearray(b"[\n" if not self.started else b"")
        for i, row in enumerate(batch):
            if i or self.started:
                out += b",\n"
            out += orjson.dumps(row)
        if done:
            out += b"\n]\n"
        return bytes(out)


async def _stream(first: bytes, done: bool, rows: Iterator[RequestRow], encoder: Encoder) -> AsyncIterator[bytes]:
    yield first
    try:
        while not done:
            chunk, done = await asyncio.to_thread(encoder.take, rows, CHUNK_ROWS)
            if chunk:
                yield chunk
    except Exception:
        log.exception("export stopped part-way")
        raise


async def export(api: Api, request: Request, principal: Principal) -> Response:
    now = api.now()
    q = read_query(request, "requests/export", now)
    check_search(q, principal)
    fmt = choice_param(q, "format", MEDIA_TYPES, "csv") or "csv"
    max_rows = int_param(q, "max_rows", DEFAULT_MAX_ROWS, 1, MAX_ROWS)
    engine = api.get_engine()
    names = await asyncio.to_thread(visible_directory, engine, principal.scope)
    rows = iter_requests(engine, scoped(q.filters, principal.scope), batch=PAGE_ROWS, limit=max_rows)
    encoder = Encoder(fmt, names)
    first, done = await asyncio.to_thread(encoder.take, rows, CHUNK_ROWS)
    filename = f"llm-console-requests-{now:%Y%m%dT%H%M%SZ}.{fmt}"
    return StreamingResponse(
        _stream(first, done, rows, encoder),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "x-content-type-options": "nosniff",
        },
    )
