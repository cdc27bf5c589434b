"""The official `openai` SDK against the standalone gateway in front of the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time

import openai
import pytest
from sqlalchemy import select

from llm_console.db.engine import make_engine
from llm_console.db.models import RequestLog, Span
from llm_console.db.rollups import usage_rollups
from tests.conftest import run_cli
from tests.integration.conftest import UPSTREAM_MODEL, Stack


def wait_row(stack: Stack, request_id: str, timeout_s: float = 10) -> RequestLog:
    engine = make_engine(stack.database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                row = conn.execute(select(RequestLog).where(RequestLog.id == request_id)).first()
            if row is not None:
                return RequestLog.model_validate(row._mapping)
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise AssertionError(f"no log row for {request_id} after {timeout_s}s")


def client(stack: Stack, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key or stack.key, max_retries=0, timeout=30)


def test_non_streaming_call_is_logged_with_tokens_and_cost(gateway: Stack) -> None:
    with client(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=20
        )
        completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    row = wait_row(gateway, raw.headers["x-request-id"])
    assert row.status == "ok" and row.status_code == 200 and not row.stream
    assert row.alias == "chat" and row.model == UPSTREAM_MODEL
    assert row.prompt_tokens == completion.usage.prompt_tokens
    assert row.completion_tokens == completion.usage.completion_tokens
    assert row.latency_ms > 0 and row.ttfb_ms is not None
    assert "capital of France" in (row.request_body or "")
    assert gateway.key not in (row.request_body or "")


def test_streaming_usage_is_captured_though_the_client_did_not_ask(gateway: Stack) -> None:
    with client(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Count to ten."}], max_tokens=30, stream=True
        )
        chunks = list(raw.parse())
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    assert all(ch.choices for ch in chunks), "the usage-only chunk the gateway asked for must not reach the client"
    row = wait_row(gateway, raw.headers["x-request-id"])
    assert row.stream and row.status == "ok"
    assert row.completion_tokens > 0 and row.prompt_tokens > 0
    engine = make_engine(gateway.database_url)
    with engine.connect() as conn:
        spans = [s.name for s in conn.execute(select(Span).where(Span.request_id == row.id))]
        t = usage_rollups
        minutes = conn.execute(select(t).where(t.c.grain == "m", t.c.dim == "alias", t.c.value == "chat")).all()
    engine.dispose()
    assert spans == ["auth", "route", "upstream", "stream"]
    assert sum(m.requests for m in minutes) >= 1


def test_stream_chunks_arrive_as_the_upstream_produces_them(gateway: Stack) -> None:
    """At 25 tokens/s upstream, a buffering gateway would deliver everything at the end in one burst."""
    arrivals: list[float] = []
    with client(gateway) as c:
        start = time.perf_counter()
        for chunk in c.chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=40, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter() - start)
    assert len(arrivals) >= 8
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.2, f"chunks arrived in a burst ({spread:.3f}s apart)"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sorted(gaps)[len(gaps) // 2] > 0.01, "median inter-chunk gap too small: the stream was buffered"


def test_streaming_with_usage_requested_passes_it_on(gateway: Stack) -> None:
    with client(gateway) as c:
        chunks = list(
            c.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "Hi"}],
                max_tokens=10,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_models_lists_the_alias(gateway: Stack) -> None:
    with client(gateway) as c:
        assert sorted(m.id for m in c.models.list()) == ["chat", "slow"]


def test_unknown_model_and_bad_input_get_openai_errors(gateway: Stack) -> None:
    with client(gateway) as c:
        with pytest.raises(openai.NotFoundError) as nf:
            c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        assert nf.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as bad:
            c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=-1)
        assert bad.value.body["param"] == "max_tokens"  # type: ignore[index]


def test_revoked_key_gets_401(gateway: Stack) -> None:
    minted = run_cli(gateway.env, "create-key", "--name", "to-revoke")
    key = minted.stdout.strip()
    with client(gateway, key) as c:
        assert c.models.list().data
    engine = make_engine(gateway.database_url)
    from llm_console.services.keys import find_by_hash, hash_key, revoke_key

    row = find_by_hash(engine, hash_key(key))
    assert row is not None and row.id is not None
    assert revoke_key(engine, row.id, actor="test")
    engine.dispose()
    with client(gateway, key) as c, pytest.raises(openai.AuthenticationError):
        c.models.list()
    with client(gateway, "sk-llmc-' OR 1=1 --aaaaaaaaaaaa") as c, pytest.raises(openai.AuthenticationError):
        c.models.list()


def test_end_user_session_and_tags_then_feedback_through_the_sdk(gateway: Stack) -> None:
    """What docs/analytics.md shows: `user` and X-LLMC-* headers on a call, then POST /feedback with the SDK."""
    with client(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "Where is my order?"}],
            max_tokens=8,
            user="customer-4711",
            extra_headers={"X-LLMC-Session-Id": "support-chat-981", "X-LLMC-Tags": "prod,support"},
        )
        request_id = raw.headers["x-request-id"]
        # at once, before the log row is necessarily written: the endpoint waits for it
        score = c.post(
            "/feedback",
            cast_to=object,
            body={"request_id": request_id, "name": "helpfulness", "value": 4, "comment": "right answer"},
        )
        session_score = c.post(
            "/feedback", cast_to=object, body={"session_id": "support-chat-981", "name": "outcome", "value": "resolved"}
        )
        with pytest.raises(openai.BadRequestError) as bad:
            c.post("/feedback", cast_to=object, body={"request_id": request_id, "name": "thumbs", "value": True})
        with pytest.raises(openai.NotFoundError):
            c.post("/feedback", cast_to=object, body={"session_id": "nobody's", "name": "x", "value": 1})
    assert isinstance(score, dict) and isinstance(session_score, dict)
    assert (score["request_id"], score["value"], score["comment"]) == (request_id, 4, "right answer")
    assert (session_score["session_id"], session_score["category"]) == ("support-chat-981", "resolved")
    assert bad.value.body["param"] == "value"  # type: ignore[index]
    row = wait_row(gateway, request_id)
    assert (row.end_user, row.session_id, row.tags) == ("customer-4711", "support-chat-981", "prod,support")
