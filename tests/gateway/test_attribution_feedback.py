"""Calls carry their end user, session and tags; feedback scores the caller's own requests and sessions;
the limiter's refusals and refused credentials are counted for the rate-limit analytics."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import FeedbackScore
from llm_console.gateway.attribution import attribution
from llm_console.gateway.errors import GatewayError
from llm_console.services.keys import create_key

from .fakes import ALIAS, MESSAGES, Gateway, GatewayFactory, completion
from .test_limits import set_limits


def test_headers_win_over_the_body_and_tags_are_sorted_and_distinct() -> None:
    body = {"user": "body-user", "metadata": {"session_id": "body-session", "tags": ["b", "a", "b"]}}
    assert attribution({}, body) == ("body-user", "body-session", "a,b")
    headers = {"x-llmc-user": " alice ", "x-llmc-session-id": "s-1", "x-llmc-tags": "prod, beta,prod,"}
    assert attribution(headers, body) == ("alice", "s-1", "beta,prod")
    # Anthropic's Messages API names the user in metadata.user_id; a list tag holding a comma cannot split
    assert attribution({}, {"metadata": {"user_id": "u-7", "tags": ["x,y"]}}) == ("u-7", None, "x y")
    assert attribution({}, {"user": 42, "metadata": "not a dict"}) == ("42", None, None)
    assert attribution({}, {"user": "u" * 500}) == ("u" * 200, None, None)  # a body value is cut, not refused


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-llmc-user": "u" * 201}, "Header X-LLMC-User: at most 200 characters, got 201."),
        ({"x-llmc-session-id": "a\tb"}, "Header X-LLMC-Session-Id: printable characters only."),
        ({"x-llmc-tags": ",".join(f"t{i}" for i in range(11))}, "Header X-LLMC-Tags: at most 10 tags, got 11."),
        ({"x-llmc-tags": "x" * 51}, "Header X-LLMC-Tags: each tag printable and at most 50 characters."),
    ],
)
def test_a_bad_header_is_refused_with_a_readable_message(headers: dict[str, str], message: str) -> None:
    with pytest.raises(GatewayError) as err:
        attribution(headers, {})
    assert (err.value.status, err.value.message, err.value.code) == (400, message, "invalid_attribution")


async def test_calls_are_logged_with_their_end_user_session_and_tags(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(200, json=completion()))
    headers = {"x-llmc-session-id": "conv-1", "x-llmc-tags": "beta,checkout"}
    r1 = await gw.chat({"model": ALIAS, "messages": MESSAGES, "user": "alice"}, headers=headers)
    r2 = await gw.chat({"model": ALIAS, "messages": MESSAGES, "metadata": {"session_id": "conv-2", "tags": "x"}})
    bad = await gw.chat({"model": ALIAS, "messages": MESSAGES}, headers={"x-llmc-user": "u" * 300})
    assert (r1.status_code, r2.status_code, bad.status_code) == (200, 200, 400)
    assert bad.json()["error"]["param"] == "X-LLMC-User"
    assert gw.upstream.last_json["metadata"] == {"session_id": "conv-2", "tags": "x"}  # forwarded untouched
    rows = {r.id: r for r in await gw.rows()}
    one, two = rows[r1.headers["x-request-id"]], rows[r2.headers["x-request-id"]]
    assert (one.end_user, one.session_id, one.tags) == ("alice", "conv-1", "beta,checkout")
    assert (two.end_user, two.session_id, two.tags) == (None, "conv-2", "x")
    with session(gw.rt.engine) as s:
        principals = dict(
            s.execute(text("SELECT value, requests FROM usage_rollups WHERE grain = 'd' AND dim = 'principal'")).all()
        )
        tags = dict(
            s.execute(text("SELECT value, requests FROM usage_rollups WHERE grain = 'h' AND dim = 'tag'")).all()
        )
    # alice by name; the other two calls (the refused one included) count as the key's owner, or the key itself
    assert principals == {"e:alice": 1, f"k:{gw.key.id}": 2}
    assert tags == {"beta": 1, "checkout": 1, "x": 1}


async def feedback(gw: Gateway, body: object, secret: str | None = None) -> httpx.Response:
    auth = {"authorization": f"Bearer {secret or gw.key.secret}"}
    return await gw.client.post("/v1/feedback", headers=auth, json=body)


async def test_feedback_scores_a_request_and_a_session_of_the_caller(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(200, json=completion()))
    call = await gw.chat({"model": ALIAS, "messages": MESSAGES}, headers={"x-llmc-session-id": "conv-9"})
    request_id = call.headers["x-request-id"]

    # at once: the row may not be written yet, and the endpoint waits for it
    numeric = await feedback(gw, {"request_id": request_id, "name": "helpfulness", "value": 0.75, "comment": "ok"})
    assert numeric.status_code == 201, numeric.text
    assert numeric.json() | {"id": 0, "created_at": 0} == {
        "id": 0,
        "object": "feedback",
        "created_at": 0,
        "request_id": request_id,
        "session_id": None,
        "name": "helpfulness",
        "value": 0.75,
        "category": None,
        "comment": "ok",
        "source": "api",
    }
    categorical = await feedback(gw, {"session_id": "conv-9", "name": "outcome", "value": "resolved"})
    assert categorical.status_code == 201, categorical.text
    assert (categorical.json()["category"], categorical.json()["value"]) == ("resolved", None)

    with session(gw.rt.engine) as s:
        stored = list(s.exec(select(FeedbackScore).order_by(FeedbackScore.id)))
    assert [(f.name, f.value, f.category, f.alias, f.deployment_id, f.key_id) for f in stored] == [
        ("helpfulness", 0.75, None, ALIAS, gw.deployment_id, gw.key.id),
        ("outcome", None, "resolved", "", None, gw.key.id),  # a session's score belongs to no single model
    ]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"name": "x", "value": 1}, "request_id", "Give exactly one of 'request_id' or 'session_id'."),
        ({"request_id": "a", "session_id": "b", "name": "x", "value": 1}, "request_id", "Give exactly one"),
        ({"request_id": "a", "value": 1}, "name", "'name' is required."),
        ({"request_id": "a", "name": "x"}, "value", "Give a numeric 'value' or a 'category'."),
        ({"request_id": "a", "name": "x", "value": True}, "value", "'value' must be a number (use 1 or 0"),
        (
            {"request_id": "a", "name": "x", "value": 1, "category": "c"},
            "value",
            "Give a numeric 'value' or a 'category', not both.",
        ),
        ({"request_id": "a", "name": "x", "value": [1]}, "value", "'value' must be a number or a category"),
        ({"request_id": "a", "name": "n" * 101, "value": 1}, "name", "'name' must be at most 100 characters"),
        (
            {"request_id": "a", "name": "x", "value": 1, "comment": "c" * 2001},
            "comment",
            "'comment' must be at most 2000",
        ),
        ({"request_id": "a", "name": "x", "value": 1, "score": 2}, "score", "Unknown field 'score'."),
    ],
)
async def test_bad_feedback_gets_a_400_naming_the_field(gw: Gateway, body: object, param: str, message: str) -> None:
    resp = await feedback(gw, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, "invalid_feedback")
    assert error["message"].startswith(message)


async def test_feedback_on_someone_elses_request_or_an_unknown_one_is_a_404(gw: Gateway) -> None:
    gw.upstream.reply(lambda: httpx.Response(200, json=completion()))
    call = await gw.chat({"model": ALIAS, "messages": MESSAGES}, headers={"x-llmc-session-id": "mine"})
    await gw.rows()
    other = create_key(gw.rt.engine, name="other", actor="test")  # no owner or team in common
    for body in (
        {"request_id": call.headers["x-request-id"], "name": "x", "value": 1},
        {"session_id": "mine", "name": "x", "value": 1},
    ):
        resp = await feedback(gw, body, other.secret)
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "not_found"
    unknown = await feedback(gw, {"request_id": "no-such-request", "name": "x", "value": 1})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == (
        "No request 'no-such-request' was made with this key, its owner or its team."
    )
    with session(gw.rt.engine) as s:
        assert list(s.exec(select(FeedbackScore))) == []
    no_key = await gw.client.post("/v1/feedback", json={"request_id": "a", "name": "x", "value": 1})
    assert no_key.status_code == 401


async def test_a_limiter_refusal_is_logged_with_what_blocked_it(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gw:
        gw.upstream.reply(lambda: httpx.Response(200, json=completion()))
        set_limits(gw, "key", gw.key.id, rpm=1)
        first, second = await gw.chat(), await gw.chat()
        assert (first.status_code, second.status_code) == (200, 429)
        rows = await gw.rows()
        assert [r.throttle for r in rows] == [None, f"key:{gw.key.id}|rpm"]
        with session(gw.rt.engine) as s:
            counted = s.execute(
                text("SELECT dim, value, requests FROM usage_rollups WHERE grain = 'm' AND dim = 'throttle'")
            ).all()
            keys = s.execute(text("SELECT value FROM usage_rollups WHERE grain = 'h' AND dim = 'throttled_key'")).all()
        assert [tuple(r) for r in counted] == [("throttle", f"key:{gw.key.id}|rpm", 1)]
        assert [r[0] for r in keys] == [str(gw.key.id)]


async def test_refused_credentials_are_counted_per_address_and_never_logged_as_calls(gw: Gateway) -> None:
    for secret in ("sk-wrong-1", "sk-wrong-2", ""):
        resp = await gw.client.post(
            "/v1/chat/completions", headers={"authorization": f"Bearer {secret}"}, json={"model": ALIAS}
        )
        assert resp.status_code == 401
    assert gw.rt.auth_failures.total == 3
    await gw.rt._flush_auth_failures()
    await asyncio.wait_for(gw.rt.log.flush(), 5)
    assert await gw.rows() == []
    with session(gw.rt.engine) as s:
        counted = s.execute(
            text("SELECT grain, value, requests, errors FROM usage_rollups WHERE dim = 'auth_fail_ip' ORDER BY grain")
        ).all()
    # httpx's ASGI transport reports the client as 127.0.0.1
    assert [tuple(r) for r in counted] == [("d", "127.0.0.1", 3, 3), ("h", "127.0.0.1", 3, 3), ("m", "127.0.0.1", 3, 3)]
