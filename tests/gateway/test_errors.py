"""Bad input, bad keys and failing upstreams all get OpenAI-shaped errors with the right status, never a 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import Provider
from llm_console.gateway import create_gateway
from llm_console.services.deployments import add_deployment
from llm_console.services.keys import create_key, looks_like_key, revoke_key

from .fakes import (
    ALIAS,
    DONE,
    MESSAGES,
    PROVIDER_KEY,
    ChunkStream,
    Gateway,
    GatewayFactory,
    QueryLog,
    content_chunk,
    usage_chunk,
)


def assert_openai_error(
    resp: httpx.Response, status: int, *, type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The response is `{"error": {message, type, param, code}}` with `status`; returns the inner object."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if type is not None:
        assert err["type"] == type
    if code is not None:
        assert err["code"] == code
    return err  # type: ignore[no-any-return]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": ALIAS, "messages": MESSAGES, **fields}


BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("truncated-json", b'{"model": "m", "messages": [{"role": "user", "con', None),
    ("not-json", b"model=m&messages=hi", None),
    ("empty", b"", None),
    ("json-array", b'[{"model": "m"}]', None),
    ("json-string", b'"hello"', None),
    ("json-null", b"null", None),
    ("invalid-utf8", b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}', None),
    ("deeply-nested", b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    ("model-int", orjson.dumps(chat(model=1)), "model"),
    ("model-null", orjson.dumps(chat(model=None)), "model"),
    ("model-empty", orjson.dumps(chat(model="")), "model"),
    ("messages-string", orjson.dumps(chat(messages="x")), "messages"),
    ("stream-string", orjson.dumps(chat(stream="yes")), "stream"),
    ("max-tokens-string", orjson.dumps(chat(max_tokens="5")), "max_tokens"),
    ("max-tokens-negative", orjson.dumps(chat(max_tokens=-1)), "max_tokens"),
    ("max-tokens-zero", orjson.dumps(chat(max_tokens=0)), "max_tokens"),
    ("max-completion-negative", orjson.dumps(chat(max_completion_tokens=-5)), "max_completion_tokens"),
    ("n-zero", orjson.dumps(chat(n=0)), "n"),
    ("missing-model", orjson.dumps({"messages": MESSAGES}), "model"),
    ("missing-messages", orjson.dumps({"model": ALIAS}), "messages"),
    ("empty-messages", orjson.dumps(chat(messages=[])), "messages"),
    ("bad-role", orjson.dumps(chat(messages=[{"role": "wizard", "content": "hi"}])), "messages.0.role"),
    ("message-not-object", orjson.dumps(chat(messages=["hi"])), "messages.0"),
    ("include-usage-string", orjson.dumps(chat(stream=True, stream_options={"include_usage": "y"})), None),
]


@pytest.mark.parametrize(("body", "param"), [(b, p) for _, b, p in BAD_BODIES], ids=[i for i, _, _ in BAD_BODIES])
async def test_bad_request_bodies_get_400_and_are_logged(gw: Gateway, body: bytes, param: str | None) -> None:
    resp = await gw.chat(body, headers={"content-type": "application/json"})

    err = assert_openai_error(resp, 400, type="invalid_request_error")
    if param is not None:
        assert err["param"] == param
    assert gw.upstream.requests == []
    row = await gw.row()
    assert row.id == resp.headers["x-request-id"]
    assert (row.status, row.status_code, row.key_id) == ("error", 400, gw.key.id)
    assert row.error_message == err["message"]


async def test_unknown_model_is_404_model_not_found(gw: Gateway) -> None:
    resp = await gw.chat(chat(model="no-such-model"))

    err = assert_openai_error(resp, 404, type="invalid_request_error", code="model_not_found")
    assert err["param"] == "model"
    assert "no-such-model" in err["message"]
    row = await gw.row()
    assert (row.status, row.status_code, row.alias, row.error_type) == (
        "error",
        404,
        "no-such-model",
        "model_not_found",
    )


async def test_key_scoped_to_other_aliases_gets_403(make_gateway: GatewayFactory) -> None:
    async with make_gateway(allowed_aliases=["other"]) as gw:
        resp = await gw.chat()

        assert_openai_error(resp, 403, type="permission_error", code="model_not_allowed")
        assert gw.upstream.requests == []
        row = await gw.row()
        assert (row.status, row.status_code, row.error_type) == ("error", 403, "model_not_allowed")


async def test_key_scoped_to_the_alias_is_allowed(make_gateway: GatewayFactory) -> None:
    async with make_gateway(allowed_aliases=[ALIAS]) as gw:
        assert (await gw.chat()).status_code == 200


async def test_content_length_over_the_limit_is_413_before_reading(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_request_body_bytes=1024) as gw:
        resp = await gw.chat(chat(padding="x" * 2000))

        err = assert_openai_error(resp, 413, code="request_too_large")
        assert "1024" in err["message"]
        assert gw.upstream.requests == []
        row = await gw.row()
        assert (row.status, row.status_code) == ("error", 413)


async def test_chunked_body_over_the_limit_is_413(make_gateway: GatewayFactory) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m", "messages": [], "padding": "'
        for _ in range(100):
            sent.append(1)
            yield b"x" * 512
        yield b'"}'

    async with make_gateway(max_request_body_bytes=4096) as gw:
        resp = await gw.client.post("/v1/chat/completions", content=body(), headers=gw.auth)

        assert_openai_error(resp, 413, code="request_too_large")
        assert len(sent) < 20  # stopped reading soon after the limit, long before the end of the body
        assert gw.upstream.requests == []
        assert (await gw.row()).status_code == 413


async def test_body_just_under_the_limit_is_accepted(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_request_body_bytes=1024) as gw:
        body = orjson.dumps(chat(padding=""))
        body = orjson.dumps(chat(padding="x" * (1024 - len(body))))
        assert len(body) == 1024
        assert (await gw.chat(body)).status_code == 200


async def test_non_numeric_content_length_is_400(gw: Gateway) -> None:
    # httpx would fix a bad header, so speak ASGI directly.
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": orjson.dumps(chat()), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {gw.key.secret}".encode()), (b"content-length", b"12abc")],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
    }
    await create_gateway(runtime=gw.rt)(scope, receive, send)

    assert messages[0]["status"] == 400
    assert orjson.loads(messages[1]["body"])["error"]["type"] == "invalid_request_error"


def key_headers(token: str, via: str) -> dict[str, bytes]:
    value = token.encode()  # bytes, so non-ASCII junk reaches the gateway as sent
    return {"authorization": b"Bearer " + value} if via == "bearer" else {"x-api-key": value}


BAD_TOKENS = {
    "malformed": "not-a-key",
    "sql": "' OR 1=1 --",
    "sql-with-prefix": "sk-llmc-' OR 1=1 -- padding",
    "unknown": "sk-llmc-" + "A" * 43,
    "non-ascii": "sk-llmc-" + "é" * 20,
    "too-long": "sk-llmc-" + "a" * 200,
}


@pytest.mark.parametrize("via", ["bearer", "x-api-key"])
@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_bad_keys_get_401_and_no_log_row(gw: Gateway, query_log: QueryLog, token: str, via: str) -> None:
    headers = key_headers(token, via)
    resp = await gw.client.post("/v1/chat/completions", json=chat(), headers=headers)

    assert_openai_error(resp, 401, type="authentication_error", code="invalid_api_key")
    assert gw.upstream.requests == []
    assert await gw.rows() == []
    # Looked up by hash only: the token never reaches SQL, as text or as a parameter.
    for statement, params in query_log.statements:
        assert token not in statement
        assert token not in repr(params)
    key_queries = [s for s, _ in query_log.statements if "virtual_keys" in s]
    assert len(key_queries) == (1 if looks_like_key(token) else 0)  # junk never reaches the database


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer "},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"x-api-key": ""},
    ],
    ids=["none", "empty-authorization", "empty-bearer", "basic-scheme", "empty-x-api-key"],
)
async def test_missing_key_gets_401(gw: Gateway, headers: dict[str, str]) -> None:
    resp = await gw.client.post("/v1/chat/completions", json=chat(), headers=headers)

    assert_openai_error(resp, 401, type="authentication_error")
    assert await gw.rows() == []


@pytest.mark.parametrize("via", ["bearer", "x-api-key"])
async def test_valid_key_works_via_either_header(gw: Gateway, via: str) -> None:
    resp = await gw.client.post("/v1/chat/completions", json=chat(), headers=key_headers(gw.key.secret, via))
    assert resp.status_code == 200


@pytest.mark.parametrize("via", ["bearer", "x-api-key"])
async def test_revoked_key_gets_401_at_once_without_cache(make_gateway: GatewayFactory, via: str) -> None:
    async with make_gateway(key_cache_ttl_s=0) as gw:
        headers = key_headers(gw.key.secret, via)
        assert (await gw.client.post("/v1/chat/completions", json=chat(), headers=headers)).status_code == 200
        assert revoke_key(gw.rt.engine, gw.key.id, actor="test") is True

        resp = await gw.client.post("/v1/chat/completions", json=chat(), headers=headers)

        assert_openai_error(resp, 401, type="authentication_error", code="invalid_api_key")
        assert len(gw.upstream.requests) == 1
        assert [r.status for r in await gw.rows()] == ["ok"]


@pytest.mark.parametrize("via", ["bearer", "x-api-key"])
async def test_expired_key_gets_401(gw: Gateway, via: str) -> None:
    key = create_key(gw.rt.engine, name="old", actor="test", expires_at=datetime.now(UTC) - timedelta(minutes=1))

    resp = await gw.client.post("/v1/chat/completions", json=chat(), headers=key_headers(key.secret, via))

    assert_openai_error(resp, 401, type="authentication_error", code="expired_api_key")
    assert gw.upstream.requests == []
    assert await gw.rows() == []


async def test_key_expiring_later_still_works(gw: Gateway) -> None:
    key = create_key(gw.rt.engine, name="new", actor="test", expires_at=datetime.now(UTC) + timedelta(minutes=5))
    resp = await gw.client.post("/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key.secret}"})
    assert resp.status_code == 200


async def test_key_expiry_does_not_depend_on_the_server_time_zone(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as mp:
        mp.setenv("TZ", "JST-9")  # UTC+9 as a POSIX rule: needs no tzdata
        time.tzset()
        try:
            expires = datetime.now(UTC) + timedelta(hours=1)
            key = create_key(gw.rt.engine, name="k", actor="test", expires_at=expires)
            resp = await gw.client.post(
                "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key.secret}"}
            )
        finally:
            mp.undo()
            time.tzset()
    assert resp.status_code == 200, resp.text


async def test_upstream_500_with_openai_body_is_passed_on(gw: Gateway) -> None:
    body = {"error": {"message": "model crashed", "type": "server_error", "param": None, "code": "boom"}}
    gw.upstream.reply(lambda: httpx.Response(500, json=body))

    resp = await gw.chat()

    assert resp.status_code == 500
    assert resp.json() == body
    row = await gw.row()
    assert row.id == resp.headers["x-request-id"]
    assert (row.status, row.status_code, row.error_type) == ("error", 500, "upstream_error")
    assert "model crashed" in (row.error_message or "")
    spans = gw.spans(row.id)
    # a 5xx is retried (LLMC_RETRY_ATTEMPTS=2 by default): three attempts, each its own span
    assert [s.name for s in spans] == ["auth", "route", "upstream", "upstream", "upstream"]
    assert all(s.status == "error" for s in spans[2:])
    assert len(gw.upstream.requests) == 3
    assert row.attempts == 3


async def test_upstream_400_with_openai_body_keeps_its_status(gw: Gateway) -> None:
    body = {"error": {"message": "context too long", "type": "invalid_request_error", "param": None, "code": None}}
    gw.upstream.reply(lambda: httpx.Response(400, json=body))

    resp = await gw.chat()

    assert resp.status_code == 400
    assert resp.json() == body


async def test_upstream_503_with_html_becomes_a_502_openai_error(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(503, content=b"<html><body>Bad Gateway</body></html>"))

    resp = await gw.chat()

    err = assert_openai_error(resp, 502, type="server_error", code="upstream_error")
    assert "503" in err["message"]
    assert "<html>" not in resp.text
    row = await gw.row()
    assert (row.status, row.status_code) == ("error", 502)


async def test_upstream_429_passes_retry_after_on(make_gateway: GatewayFactory) -> None:
    body = {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limited"}}
    async with make_gateway(retry_after_cap_s=1) as gw:  # 7 s is over the cap: no waiting, passed on at once
        gw.upstream.reply(lambda: httpx.Response(429, json=body, headers={"retry-after": "7"}))
        resp = await gw.chat()
        assert len(gw.upstream.requests) == 1
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "7"
        assert resp.json() == body
        row = await gw.row()
        assert (row.status, row.status_code) == ("error", 429)


async def test_upstream_429_without_openai_body_is_still_an_openai_429(make_gateway: GatewayFactory) -> None:
    async with make_gateway(retry_after_cap_s=1) as gw:
        gw.upstream.reply(lambda: httpx.Response(429, content=b"Too Many Requests", headers={"retry-after": "3"}))
        resp = await gw.chat()

    assert_openai_error(resp, 429, code="upstream_error")
    assert resp.headers["retry-after"] == "3"


async def test_upstream_error_echoing_the_provider_key_is_redacted(gw: Gateway) -> None:
    body = {
        "error": {"message": f"Incorrect API key provided: {PROVIDER_KEY}", "type": "x", "param": None, "code": None}
    }
    gw.upstream.reply(lambda: httpx.Response(401, json=body))

    resp = await gw.chat()

    assert resp.status_code == 401
    assert PROVIDER_KEY not in resp.text
    assert resp.json()["error"]["message"] == "Incorrect API key provided: ***"
    row = await gw.row()
    assert PROVIDER_KEY not in (row.error_message or "")
    assert "***" in (row.error_message or "")


async def test_non_json_upstream_error_echoing_the_key_is_redacted(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(502, content=f"proxy: bad key {PROVIDER_KEY}".encode()))

    resp = await gw.chat()

    assert_openai_error(resp, 502)
    rows = await gw.rows()
    assert PROVIDER_KEY not in resp.text
    assert all(PROVIDER_KEY not in (r.error_message or "") for r in rows)


async def test_mid_stream_upstream_failure_ends_with_an_error_event(gw: Gateway) -> None:
    stream = ChunkStream(
        [content_chunk("A"), content_chunk("B")], fail_with=httpx.ReadError("connection reset by peer")
    )
    gw.upstream.reply(lambda: httpx.Response(200, stream=stream))

    resp = await gw.chat(chat(stream=True))

    assert resp.status_code == 200
    events = [e for e in resp.content.split(b"\n\n") if e]
    assert events[:2] == [content_chunk("A").strip(), content_chunk("B").strip()]
    assert len(events) == 3
    final = orjson.loads(events[2].removeprefix(b"data: "))
    assert set(final["error"]) == {"message", "type", "param", "code"}
    assert final["error"]["code"] == "upstream_disconnected"
    assert stream.closed
    row = await gw.row()
    assert row.id == resp.headers["x-request-id"]
    assert (row.status, row.error_type, row.stream) == ("incomplete", "upstream_disconnected", True)
    assert row.completion_tokens == 2  # partial usage: one per content chunk
    assert gw.spans(row.id)[-1].status == "error"


async def test_stream_without_done_is_incomplete(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([content_chunk("A"), usage_chunk(3, 1)])))

    resp = await gw.chat(chat(stream=True))

    assert resp.content == content_chunk("A")
    row = await gw.row()
    assert row.status == "incomplete"
    assert (row.prompt_tokens, row.completion_tokens) == (3, 1)  # the usage it did report is kept


async def test_upstream_error_event_followed_by_done_marks_the_row_error(gw: Gateway) -> None:
    error_event = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([content_chunk("A"), error_event + DONE])))

    resp = await gw.chat(chat(stream=True))

    assert error_event in resp.content
    row = await gw.row()
    assert (row.status, row.error_type) == ("error", "upstream_error_event")


async def test_upstream_error_event_alone_marks_the_row_error(gw: Gateway) -> None:
    error_event = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([content_chunk("A"), error_event])))

    resp = await gw.chat(chat(stream=True))

    assert error_event in resp.content
    row = await gw.row()
    assert (row.status, row.error_type) == ("error", "upstream_error_event")


async def test_upstream_error_status_on_a_stream_request_is_json_not_sse(gw: Gateway) -> None:
    body = {"error": {"message": "no capacity", "type": "server_error", "param": None, "code": None}}
    gw.upstream.reply(lambda: httpx.Response(500, json=body))

    resp = await gw.chat(chat(stream=True))

    assert resp.status_code == 500
    assert resp.json() == body
    row = await gw.row()
    assert (row.status, row.stream) == ("error", True)


async def test_unknown_path_is_404_json(gw: Gateway) -> None:
    resp = await gw.client.get("/v1/nope", headers=gw.auth)
    err = assert_openai_error(resp, 404, code="not_found")
    assert "/v1/nope" in err["message"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/chat/completions"), ("POST", "/v1/models")])
async def test_wrong_method_is_405_json(gw: Gateway, method: str, path: str) -> None:
    resp = await gw.client.request(method, path, headers=gw.auth)
    err = assert_openai_error(resp, 405, code="method_not_allowed")
    assert method in err["message"]


async def test_405_names_the_allowed_methods(gw: Gateway) -> None:
    resp = await gw.client.get("/v1/chat/completions", headers=gw.auth)
    assert resp.status_code == 405
    assert "POST" in resp.headers.get("allow", "")


async def test_many_concurrent_bad_requests_never_500(gw: Gateway) -> None:
    bodies = [body for _, body, _ in BAD_BODIES if len(body) < 10_000]
    responses = await asyncio.gather(*(gw.chat(b) for b in bodies * 3))
    assert {r.status_code for r in responses} == {400}
    assert len(await gw.rows()) == len(bodies) * 3


async def test_a_failed_call_does_not_leak_into_the_next(gw: Gateway) -> None:
    calls = 0

    async def handler(_request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(400, json={"error": {"message": "bad", "type": "invalid_request_error"}})
        return httpx.Response(200, stream=ChunkStream([content_chunk("ok"), DONE]))

    gw.upstream.handler = handler
    first = await gw.chat()
    second = await gw.chat(chat(stream=True))

    assert first.status_code == 400
    assert second.status_code == 200
    statuses = {r.id: r.status for r in await gw.rows()}
    assert statuses == {first.headers["x-request-id"]: "error", second.headers["x-request-id"]: "ok"}


async def test_a_deployment_url_httpx_rejects_is_a_502_not_a_500(gw: Gateway) -> None:
    # Validation now refuses such a URL; a row written before that (or by hand) must still not cause a 500.
    add_deployment(gw.rt.engine, gw.rt.box, alias="badport", base_url="http://badport.test/v1", actor="test")
    with session(gw.rt.engine) as s:
        provider = s.exec(select(Provider).where(Provider.api_base == "http://badport.test/v1")).one()
        provider.api_base = "http://upstream.test:abc/v1"
        s.add(provider)
        s.commit()
    await gw.rt.reload_routes()
    transport = httpx.ASGITransport(app=create_gateway(runtime=gw.rt), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        resp = await client.post("/v1/chat/completions", json=chat(model="badport"), headers=gw.auth)

    assert_openai_error(resp, 502, type="server_error")
    assert (await gw.row()).status == "error"
