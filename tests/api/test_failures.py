"""When the database fails: a JSON 503 before the answer starts, a cut-off transfer after (never a fake end)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from llm_console.api import analytics, export
from llm_console.db.queries.logs import RequestRow
from tests.api.conftest import PREFIX, World, assert_error, make_app, open_client
from tests.api.test_export import drain


def db_down(*_args: Any, **_kwargs: Any) -> Any:
    raise OperationalError("SELECT 1", {}, Exception("connection refused"))


async def test_a_failing_query_is_a_503(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analytics, "totals", db_down)
    monkeypatch.setattr(export, "iter_requests", db_down)
    async with open_client(sqlite_world) as api:
        for path in ("summary", "requests/export"):
            resp = await api.get(path)
            error = assert_error(resp, 503, "database_unavailable")
            assert error["type"] == "server_error" and "connection refused" not in resp.text
            assert resp.headers["cache-control"] == "no-store"


async def test_a_bug_is_a_json_500_without_details(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError("secret internals")

    monkeypatch.setattr(analytics, "totals", broken)
    async with open_client(sqlite_world) as api:
        resp = await api.get("summary")
    assert_error(resp, 500, "internal_error")
    assert "secret internals" not in resp.text


async def test_an_export_failing_part_way_is_cut_off(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    real = export.iter_requests

    def fails_later(*args: Any, **kwargs: Any) -> Iterator[RequestRow]:
        rows = list(real(*args, **kwargs))
        yield from rows * 200  # more than the first chunk
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(export, "iter_requests", fails_later)
    headers = {"authorization": f"Bearer {sqlite_world.keys['analytics']}"}
    with pytest.raises(OperationalError):
        await drain(make_app(sqlite_world.engine), f"{PREFIX}/requests/export", "range=24h&format=json", headers)
