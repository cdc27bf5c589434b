"""A logged call in telemetry terms: times from the record, ids, sampling, GenAI attributes, messages."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from llm_console.db.records import LogRecord, SpanRecord
from llm_console.telemetry.convert import (
    DeploymentInfo,
    child_attributes,
    child_times,
    console_attributes,
    ended_ns,
    first_token_at,
    genai_attributes,
    input_messages,
    operation,
    output_messages,
    response_object,
    sampled,
    span_name,
    started_ns,
    trace_id_for,
    trace_name,
)

# 2026-03-05 12:00:00.250000 UTC = 1772712000 s since the epoch (+ 0.25 s)
CREATED = datetime(2026, 3, 5, 12, 0, 0, 250_000, tzinfo=UTC)
CREATED_NS = 1_772_712_000_250_000_000
RID = "019cbd9e-7a3a-7c51-9b2e-5f0c1d2e3f40"


def chat(**fields: object) -> LogRecord:
    base: dict[str, object] = {
        "id": RID,
        "created_at": CREATED,
        "endpoint": "/v1/chat/completions",
        "alias": "gpt-small",
        "model": "llama-3.1-8b-instruct",
        "deployment_id": 7,
        "key_id": 3,
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "cached_tokens": 20,
        "cost_usd": 0.0042,
        "latency_ms": 812.5,
        "ttfb_ms": 140.0,
        "request_body": json.dumps(
            {
                "model": "gpt-small",
                "messages": [{"role": "user", "content": "Hi?"}],
                "max_tokens": 64,
                "temperature": 0.2,
            }
        ),
        "response_body": json.dumps(
            {
                "id": "chatcmpl-1",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}
                ],
            }
        ),
        "spans": [
            SpanRecord("auth", 0.0, 1.5),
            SpanRecord("route", 1.5, 0.25, attributes={"alias": "gpt-small"}),
            SpanRecord("upstream", 2.0, 138.0, attributes={"deployment": "d1", "attempt": 1, "status_code": 200}),
        ],
    }
    return LogRecord(**(base | fields))  # type: ignore[arg-type]


def test_times_come_from_the_record_and_start_before_authentication() -> None:
    rec = chat()
    assert CREATED_NS == int(datetime(2026, 3, 5, 12, tzinfo=UTC).timestamp()) * 10**9 + 250_000_000
    # created_at is stamped after the 1.5 ms "auth" span: the call began 1.5 ms = 1_500_000 ns earlier.
    assert started_ns(rec) == CREATED_NS - 1_500_000
    # It lasted latency_ms = 812.5 ms = 812_500_000 ns from there.
    assert ended_ns(rec) == CREATED_NS - 1_500_000 + 812_500_000
    # The upstream attempt starts 2.0 ms after arrival and lasts 138 ms.
    assert child_times(rec, rec.spans[2]) == (CREATED_NS - 1_500_000 + 2_000_000, CREATED_NS - 1_500_000 + 140_000_000)
    # First byte 140 ms after arrival: 12:00:00.250 - 0.0015 + 0.140 = 12:00:00.388500
    assert first_token_at(rec) == datetime(2026, 3, 5, 12, 0, 0, 388_500, tzinfo=UTC)
    assert first_token_at(chat(ttfb_ms=None)) is None


def test_a_record_without_an_auth_span_starts_at_created_at() -> None:
    rec = chat(spans=[SpanRecord("route", 0.0, 1.0)])
    assert started_ns(rec) == CREATED_NS


def test_operation_and_names_follow_the_genai_conventions() -> None:
    assert operation(chat()) == "chat"
    assert operation(chat(endpoint="/v1/completions")) == "text_completion"
    assert operation(chat(endpoint="/v1/embeddings")) == "embeddings"
    assert operation(chat(endpoint="/v1/messages")) == "chat"
    assert span_name(chat()) == "chat gpt-small"
    assert span_name(chat(endpoint="/v1/embeddings", alias="embed")) == "embeddings embed"
    assert trace_name(chat()) == "/v1/chat/completions gpt-small"


def test_trace_id_is_the_request_ids_128_bits() -> None:
    assert trace_id_for(RID) == uuid.UUID(RID).int
    assert f"{trace_id_for(RID):032x}" == RID.replace("-", "")
    other = trace_id_for("not-a-uuid")
    assert 0 < other < 2**128 and other == trace_id_for("not-a-uuid")


def test_sampling_is_deterministic_per_request_and_near_the_rate() -> None:
    ids = [str(uuid.UUID(int=(0x019CBD9E7A3A << 80) | (7 << 76) | i)) for i in range(4000)]
    assert all(sampled(i, 1.0) for i in ids) and not any(sampled(i, 0.0) for i in ids)
    kept = [i for i in ids if sampled(i, 0.25)]
    # 4000 x 0.25 = 1000 expected; a binomial standard deviation is sqrt(4000 x 0.25 x 0.75) ~= 27.4,
    # so 5 sigma is about 137 either way. Time-ordered ids sharing their high bits must still spread.
    assert 863 <= len(kept) <= 1137
    assert kept == [i for i in ids if sampled(i, 0.25)]
    # A call sampled at 25% is also sampled at 50% (the same hash against a higher threshold).
    assert set(kept) <= {i for i in ids if sampled(i, 0.5)}


def test_genai_attributes_of_a_successful_chat() -> None:
    dep = DeploymentInfo.of("llama@sim", "openai", "http://10.0.0.5:8001/v1")
    attrs = genai_attributes(chat(), dep)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-small"
    assert attrs["gen_ai.response.model"] == "llama-3.1-8b-instruct"
    assert attrs["gen_ai.usage.input_tokens"] == 120 and attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attrs["gen_ai.request.max_tokens"] == 64 and attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "10.0.0.5" and attrs["server.port"] == 8001
    assert attrs["http.response.status_code"] == 200
    assert "error.type" not in attrs


def test_an_error_names_its_type_and_an_azure_deployment_its_provider() -> None:
    rec = chat(status="error", status_code=429, error_type="rate_limited", prompt_tokens=0, completion_tokens=0)
    attrs = genai_attributes(rec, DeploymentInfo.of("az", "azure", "https://x.openai.azure.com"))
    assert attrs["error.type"] == "rate_limited"
    assert attrs["http.response.status_code"] == 429
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert "gen_ai.usage.input_tokens" not in attrs  # nothing was used
    assert "server.port" not in attrs  # the URL names none


def test_console_attributes_tie_the_span_to_the_request() -> None:
    rec = chat(end_user="alice", session_id="s-1", tags="beta,web", throttle=None)
    attrs = console_attributes(rec, DeploymentInfo.of("llama@sim", "openai", "http://sim"))
    assert attrs["llm_console.request_id"] == RID
    assert attrs["llm_console.cost_usd"] == pytest.approx(0.0042)
    assert attrs["llm_console.key_id"] == 3 and attrs["llm_console.deployment"] == "llama@sim"
    assert attrs["llm_console.end_user"] == "alice" and attrs["llm_console.session_id"] == "s-1"
    assert attrs["llm_console.tags"] == ["beta", "web"]
    assert "llm_console.throttle" not in attrs and "llm_console.user_id" not in attrs


def test_child_attributes_are_coerced_to_otel_types() -> None:
    span = SpanRecord("upstream", 0, 1, "error", {"attempt": 2, "status_code": 502, "error": "timeout", "x": [1]})
    attrs = child_attributes(span)
    assert attrs == {
        "llm_console.attempt": 2,
        "llm_console.status_code": 502,
        "llm_console.error": "timeout",
        "llm_console.x": "[1]",
        "http.response.status_code": 502,
    }


def test_messages_in_the_genai_shape() -> None:
    rec = chat()
    assert json.loads(input_messages(rec) or "") == [{"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}]
    assert json.loads(output_messages(rec) or "") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello."}], "finish_reason": "stop"}
    ]
    assert input_messages(chat(request_body="{cut off")) is None


def test_a_streamed_answer_is_reassembled_from_its_chunks() -> None:
    chunks = [
        {"id": "c-9", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"id": "c-9", "model": "m", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "length"}]},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    rec = chat(stream=True, response_body=body)
    obj = response_object(rec)
    assert obj is not None and obj["id"] == "c-9"
    assert obj["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"}
    ]
    attrs = genai_attributes(rec, None)
    assert attrs["gen_ai.response.finish_reasons"] == ["length"]
    assert attrs["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.14)  # 140 ms


def test_export_failures_are_put_in_plain_words() -> None:
    import requests

    from llm_console.telemetry.exporters import Captured, connection_problem, failure_reason, reason_of

    url = "http://c:4318/v1/traces"
    transient = (
        "Transient error HTTPConnectionPool(host='c', port=4318): [Errno 111] Connection refused encountered "
        "while exporting spans batch, retrying in 0.91s."
    )
    generic = "Failed to export spans batch due to timeout, max retries or shutdown."
    # From the exporter's log alone: the transient error's reason, not the generic give-up line.
    from_logs = Captured(logs=[transient, generic]).reason()
    assert from_logs == "HTTPConnectionPool(host='c', port=4318): [Errno 111] Connection refused"
    assert (
        Captured(logs=["Failed to export spans batch code: 401, reason: Unauthorized"]).reason()
        == "HTTP 401 Unauthorized"
    )
    assert Captured(logs=[generic]).reason() is None
    # What the HTTP session saw wins over the log.
    refused = requests.ConnectionError(
        "HTTPConnectionPool(...): Failed to establish: [Errno 111] Connection refused'))"
    )
    assert connection_problem(refused) == "cannot connect: Connection refused"
    assert connection_problem(requests.ReadTimeout("read timed out")) == "no answer before the timeout"
    assert (
        Captured(answers=["HTTP 503 Service Unavailable"], logs=[transient]).reason() == "HTTP 503 Service Unavailable"
    )
    line = failure_reason("HTTP 401 Unauthorized", url)
    assert line == f"Export to {url} failed: HTTP 401 Unauthorized"
    # A retry that ran out of time has no reason of its own: the previous one is repeated, once.
    again = failure_reason(None, url, reason_of(line))
    assert again == f"Export to {url} failed: HTTP 401 Unauthorized (still failing)"
    assert failure_reason(None, url, reason_of(again)) == again
    assert failure_reason(None, url).endswith("no answer within the export timeout, retries included")
