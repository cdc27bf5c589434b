"""Hostile parameter values: quotes, LIKE wildcards, SQL fragments, 10k-character strings, invalid UTF-8 and
NUL escapes, negative and odd numbers. Each gets a correct (often empty) answer or an OpenAI-shaped 400, never a
500, and nothing stored changes (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from llm_console.api.params import ENDPOINT_PARAMS
from llm_console.db.models import RequestLog, VirtualKey
from tests.api.conftest import PREFIX, WINDOW, Client, World, assert_error

HOSTILE = [
    "' OR 1=1 --",
    "x'; DROP TABLE requests; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)",
    "%",
    "_",
    "%%_",
    "\\",
    "a" * 10_000,
    "-1",
    "1e309",
    "nan",
    "-inf",
    "²",
    "\uff11\uff12",
    "0x10",
    " 5",
    "\u202egpt",
    "🙂",
]
RAW_ESCAPES = ["%ff%fe", "%00", "a%00b", "%c3%28", "%ed%a0%80", "%0d%0aSet-Cookie:%20x=1", "%1b[31m"]
ENDPOINTS = ["summary", "timeseries", "by-model", "breakdown", "user-spend", "requests", "requests/export"]


def stored(world: World) -> tuple[int, int]:
    with world.engine.connect() as conn:
        requests = conn.execute(select(func.count()).select_from(RequestLog)).scalar_one()
        keys = conn.execute(select(func.count()).select_from(VirtualKey)).scalar_one()
    return requests, keys


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_hostile_values_never_500(api: Client, world: World, endpoint: str) -> None:
    before = stored(world)
    base = "dim=model&" if endpoint == "breakdown" else ""
    statuses: dict[int, int] = {}
    for name in ENDPOINT_PARAMS[endpoint]:
        if name == "dim":
            continue
        values = [quote(v, safe="") for v in HOSTILE] + RAW_ESCAPES
        for value in values:
            resp = await api.http.get(f"{PREFIX}/{endpoint}?{base}{name}={value}", headers=api.auth("analytics"))
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            assert resp.status_code in (200, 400), f"{name}={value[:40]}: {resp.status_code} {resp.text[:200]}"
            if resp.status_code == 400:
                assert_error(resp, 400)
    assert statuses.get(400, 0) > 0
    assert stored(world) == before


@pytest.mark.parametrize(
    "value",
    ["' OR 1=1 --", "x'; DROP TABLE requests; --", "%", "_", "gpt%", "gp_", "GPT", "gpt ", "\ufffdgpt", "%ff%fe"],
)
async def test_text_filters_match_literally(api: Client, value: str) -> None:
    summary = await api.ok("summary", model=value, **WINDOW)
    assert summary["totals"]["requests"] == 0
    assert (await api.ok("requests", model=value, **WINDOW))["data"] == []
    assert (await api.ok("by-model", model=value, **WINDOW))["data"] == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"key": "-1"}, "key"),
        ({"user": "1 OR 1=1"}, "user"),
        ({"team": "²"}, "team"),
        ({"deployment": "\uff11\uff12"}, "deployment"),
        ({"min_cost": "-0.5"}, "min_cost"),
        ({"min_latency": "nan"}, "min_latency"),
        ({"model": "a" * 10_000}, "model"),
        ({"q": "a" * 201}, "q"),
        ({"model": "a\x00b"}, "model"),
        ({"model": "\u202egpt"}, "model"),
        ({"endpoint": "/v1/chat/completions' --"}, "endpoint"),
        ({"status": "ok' OR '1'='1"}, "status"),
        ({"stream": "1"}, "stream"),
        ({"range": "1 day"}, "range"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-15T12:00", "to": "2026-03-15T11:00"}, None),
        ({"from": "2020-01-01T00:00", "to": "2026-01-01T00:00"}, None),
        ({"res": "second"}, "res"),
        ({"modle": "gpt"}, "modle"),
    ],
)
async def test_invalid_values_are_refused_with_a_reason(api: Client, params: dict[str, str], param: str | None) -> None:
    error = assert_error(await api.get("requests", **params), 400)
    assert error["code"] in ("invalid_parameter", "unknown_parameter")
    assert error["param"] == param
    assert "Ignored" not in error["message"] and "showing" not in error["message"]


async def test_a_parameter_given_twice_is_refused(api: Client) -> None:
    for query in ("model=gpt&model=llama", "model=&model=llama", "limit=5&limit=5"):
        resp = await api.http.get(f"{PREFIX}/requests?{query}", headers=api.auth("analytics"))
        assert assert_error(resp, 400, "invalid_parameter")["param"] == query.split("=")[0]


async def test_empty_values_mean_not_given(api: Client) -> None:
    body = await api.ok("summary", model="", key="", **WINDOW)
    assert body["filter"] is None and body["totals"]["requests"] == 5


async def test_unknown_paths_and_methods_stay_json(api: Client) -> None:
    for path in (PREFIX, f"{PREFIX}/", f"{PREFIX}/nope", f"{PREFIX}/requests/a/b", f"{PREFIX}/summary/x"):
        assert_error(await api.http.get(path), 404, "not_found")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        resp = await api.http.request(method, f"{PREFIX}/summary", headers=api.auth("analytics"))
        assert_error(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == "GET, HEAD"
