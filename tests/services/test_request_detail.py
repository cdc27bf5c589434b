"""The request detail: credentials masked, conversations read from every body shape, the waterfall."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from llm_console.db.queries.logs import Page, RequestDetail, RequestRow, SpanRow
from llm_console.db.queries.names import Directory
from llm_console.presenters.logs import BODIES_HIDDEN, logs_view
from llm_console.services.logs_page import LogsData
from llm_console.services.request_detail import Message, conversation, mask_secrets, pretty, waterfall
from llm_console.settings import Settings

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def detail(request: object = None, response: str | None = None, spans: list[SpanRow] | None = None) -> RequestDetail:
    row = RequestRow(
        id="01a2-x", created_at=AT, endpoint="/v1/chat/completions", alias="m", model="up", deployment_id=None,
        key_id=None, user_id=None, team_id=None, status="ok", status_code=200, error_type=None, stream=False,
        prompt_tokens=3, completion_tokens=4, cached_tokens=0, cost_usd=0.0, latency_ms=200.0, ttfb_ms=50.0,
        attempts=1,
    )  # fmt: skip
    body = request if isinstance(request, str) or request is None else orjson.dumps(request).decode()
    return RequestDetail(row, body, response, None, "127.0.0.1", None, spans or [])


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ('{"api_key": "sk-live-abcdef0123456789"}', "abcdef0123456789"),
        ('{"Authorization": "Bearer abc.def.ghi-jkl-0123"}', "abc.def"),
        ('{"x-api-key": "anthropic-secret-value"}', "anthropic-secret-value"),
        ('{"password":"hunter2hunter2"}', "hunter2"),
        ("please use sk-llmc-AAAAAAAAAAAAAAAAAAAA for this", "AAAAAAAAAAAA"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGci"),
    ],
)
def test_credentials_are_masked(text: str, leaked: str) -> None:
    masked = mask_secrets(text)
    assert leaked not in masked and "***" in masked
    assert leaked not in pretty(text)


def test_plain_text_is_left_alone() -> None:
    assert mask_secrets('{"model": "gpt-4o", "messages": []}') == '{"model": "gpt-4o", "messages": []}'
    assert mask_secrets(None) == ""


def test_chat_request_and_answer() -> None:
    req = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi <script>x</script>"}, {"type": "image_url"}]},
        ],
    }
    resp = orjson.dumps({"choices": [{"message": {"role": "assistant", "content": "hello"}}]}).decode()
    assert conversation(detail(req, resp)) == [
        Message("system", "be brief"),
        Message("user", "hi <script>x</script>\n[image_url]"),
        Message("assistant", "hello"),
    ]


def test_streamed_answers_are_reassembled_from_sse() -> None:
    sse = "".join(
        f"data: {orjson.dumps({'choices': [{'delta': {'content': piece}}]}).decode()}\n\n" for piece in ("Hel", "lo")
    )
    anthropic = (
        'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"type": "text_delta", '
        '"text": "Hi"}}\n\n'
    )
    assert conversation(detail({"messages": []}, sse + "data: [DONE]\n\n")) == [Message("assistant", "Hello")]
    assert conversation(detail({"messages": []}, anthropic)) == [Message("assistant", "Hi")]


def test_other_shapes_and_broken_bodies() -> None:
    assert conversation(detail({"model": "m", "prompt": "Once"}, '{"choices": [{"text": " upon"}]}')) == [
        Message("prompt", "Once"),
        Message("completion", " upon"),
    ]
    assert conversation(detail({"system": "sys", "messages": [{"role": "user", "content": "q"}]})) == [
        Message("system", "sys"),
        Message("user", "q"),
    ]
    assert conversation(detail({"input": ["a", "b"]})) == [Message("input", "a\nb")]
    assert conversation(detail('{"messages": [{"role": "user", "content": "cut sh', "not json")) == []
    assert pretty('{"cut": "sh') == '{"cut": "sh'
    assert pretty('{"a":1}') == '{\n  "a": 1\n}'


def test_waterfall_positions_spans_on_the_request_timeline() -> None:
    spans = [
        SpanRow("auth", 0.0, 1.0, "ok", {}),
        SpanRow("upstream", 1.0, 49.0, "error", {"attempt": 1, "deployment": "d1", "status_code": 503}),
        SpanRow("upstream", 50.0, 150.0, "ok", {"attempt": 2, "deployment": "d2", "status_code": 200}),
    ]
    bars = waterfall(detail(spans=spans))
    assert [b.label for b in bars] == ["auth", "upstream #1 d1 → 503", "upstream #2 d2 → 200"]
    assert [(b.offset_pct, b.width_pct) for b in bars] == [(0.0, 0.5), (0.5, 24.5), (25.0, 75.0)]


def test_viewers_do_not_get_bodies() -> None:
    d = detail({"messages": [{"role": "user", "content": "secret plan"}]}, '{"choices": []}')
    data = LogsData(Page([], None), d, False, Directory(), [], AT)
    hidden = logs_view(data, Settings(), show_bodies=False)
    shown = logs_view(data, Settings(), show_bodies=True)
    assert hidden.messages == [] and hidden.request_body == BODIES_HIDDEN and hidden.response_body == BODIES_HIDDEN
    assert "secret plan" in shown.request_body and shown.messages == [{"role": "user", "content": "secret plan"}]
    assert hidden.detail["tokens"] == shown.detail["tokens"]
