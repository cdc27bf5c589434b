"""The export pipeline against a local receiver: what Langfuse and an OTLP collector get, and how it fails."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langfuse import Langfuse
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.models import FeedbackScore
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.services import telemetry_admin as admin
from llm_console.settings import Settings
from llm_console.telemetry.convert import DeploymentInfo, ScoreRecord
from llm_console.telemetry.langfuse_sink import release_sdk_client
from llm_console.telemetry.pipeline import TelemetryExporter
from tests.conftest import free_port
from tests.telemetry.conftest import make_settings
from tests.telemetry.receiver import PUBLIC_KEY, SECRET_KEY, Receiver, Running
from tests.telemetry.test_convert import CREATED_NS, RID, chat

LF_PATH, OTLP_PATH = "/api/public/otel/v1/traces", "/v1/traces"
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT, STATUS_ERROR = 1, 3, 2
DEPLOYMENTS = {7: DeploymentInfo.of("llama@sim", "openai", "http://10.0.0.5:8001/v1")}


def save_langfuse(engine: Engine, box: SecretBox, settings: Settings, host: str, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "enabled": True,
        "host": host,
        "public_key": PUBLIC_KEY,
        "secret_key": SECRET_KEY,
        "include_bodies": True,
        "sample_rate": 1.0,
    }
    admin.save_langfuse(engine, box, settings, "admin@x", **(values | overrides))


def save_otlp(engine: Engine, box: SecretBox, settings: Settings, endpoint: str, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint": endpoint,
        "headers": "x-api-key=collector-token",
        "service_name": "gw-test",
        "include_bodies": False,
        "sample_rate": 1.0,
    }
    admin.save_otlp(engine, box, settings, "admin@x", **(values | overrides))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def exporter(engine: Engine, box: SecretBox, settings: Settings) -> AsyncIterator[TelemetryExporter]:
    """Started after the test saved its configuration (the worker loads it at start)."""
    exp = TelemetryExporter(engine, box, settings, lambda: DEPLOYMENTS)
    yield exp
    await exp.stop()


async def started(exp: TelemetryExporter, sinks: int) -> TelemetryExporter:
    await exp.start()
    deadline = time.monotonic() + 10
    while len(exp.sinks) < sinks:
        assert time.monotonic() < deadline, "the export worker did not open its sinks"
        await asyncio.sleep(0.02)
    return exp


def errored() -> LogRecord:
    return chat(
        id="019cbd9e-7a3a-7c51-9b2e-000000000002",
        status="error",
        status_code=502,
        error_type="upstream_error",
        error_message="The upstream answered HTTP 500.",
        prompt_tokens=0,
        completion_tokens=0,
        cached_tokens=0,
        cost_usd=0.0,
        ttfb_ms=None,
        response_body=None,
        spans=[
            SpanRecord("auth", 0.0, 1.0),
            SpanRecord("upstream", 1.5, 30.0, "error", {"deployment": "d1", "attempt": 1, "status_code": 500}),
        ],
    )


async def test_langfuse_gets_one_trace_with_one_generation(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    await started(exporter, 1)
    exporter.offer([chat(end_user="alice@example.com", session_id="conv-9", tags="beta,web"), errored()])
    spans = receiver.wait_spans(LF_PATH, 2)
    assert len(spans) == 2  # one generation per call, nothing else
    ok = next(s for s in spans if s.trace_id == RID.replace("-", ""))
    a = ok.attributes
    assert ok.name == "chat gpt-small" and ok.parent_span_id == "" and ok.kind == SPAN_KIND_CLIENT
    # Times from the record: arrival 1.5 ms (the auth span) before created_at, 812.5 ms long.
    assert ok.start_ns == CREATED_NS - 1_500_000
    assert ok.end_ns == CREATED_NS - 1_500_000 + 812_500_000
    assert a["langfuse.observation.type"] == "generation"
    assert a["langfuse.trace.name"] == "/v1/chat/completions gpt-small"
    assert (a["user.id"], a["session.id"], a["langfuse.trace.tags"]) == ("alice@example.com", "conv-9", ["beta", "web"])
    assert a["langfuse.observation.model.name"] == "llama-3.1-8b-instruct"
    # prompt 120 of which 20 cached: input 100 + cached 20, output 30, total 150; cost as priced.
    assert json.loads(a["langfuse.observation.usage_details"]) == {
        "input": 100,
        "input_cached_tokens": 20,
        "output": 30,
        "total": 150,
    }
    assert json.loads(a["langfuse.observation.cost_details"]) == {"total": 0.0042}
    # First byte 140 ms after arrival: 12:00:00.250 - 0.0015 + 0.140 = 12:00:00.3885
    assert json.loads(a["langfuse.observation.completion_start_time"]) == "2026-03-05T12:00:00.388500Z"
    assert json.loads(a["langfuse.trace.metadata.request_id"]) == RID
    assert json.loads(a["langfuse.trace.metadata.key_id"]) == 3
    assert json.loads(a["langfuse.trace.metadata.deployment"]) == "llama@sim"
    assert json.loads(a["langfuse.observation.input"])["messages"] == [{"role": "user", "content": "Hi?"}]
    assert json.loads(a["langfuse.observation.output"])["choices"][0]["message"]["content"] == "Hello."
    assert "langfuse.observation.level" not in a and ok.status_code != STATUS_ERROR
    bad = next(s for s in spans if s is not ok)
    assert bad.attributes["langfuse.observation.level"] == "ERROR"
    assert bad.attributes["langfuse.observation.status_message"] == "upstream_error: The upstream answered HTTP 500."
    assert bad.status_code == STATUS_ERROR
    assert "user.id" not in bad.attributes  # the call named no end user
    headers = receiver.traces_posts(LF_PATH)[0]
    assert headers["x-langfuse-ingestion-version"] == "4" and headers["x-langfuse-public-key"] == PUBLIC_KEY


async def test_otlp_gets_a_genai_client_span_with_the_calls_own_spans_as_children(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    await started(exporter, 1)
    exporter.offer([chat(end_user="alice", tags="beta")])
    spans = receiver.wait_spans(OTLP_PATH, 4)  # the call, and its auth, route and upstream spans
    root = next(s for s in spans if s.parent_span_id == "")
    assert root.name == "chat gpt-small" and root.kind == SPAN_KIND_CLIENT
    assert root.trace_id == RID.replace("-", "")
    assert root.resource["service.name"] == "gw-test"
    a = root.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"], a["gen_ai.system"]) == ("chat", "openai", "openai")
    assert (a["gen_ai.request.model"], a["gen_ai.response.model"]) == ("gpt-small", "llama-3.1-8b-instruct")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (120, 30)
    assert (a["server.address"], a["server.port"], a["http.response.status_code"]) == ("10.0.0.5", 8001, 200)
    assert a["llm_console.request_id"] == RID and a["llm_console.cost_usd"] == pytest.approx(0.0042)
    assert (a["llm_console.key_id"], a["llm_console.deployment"], a["llm_console.end_user"]) == (
        3,
        "llama@sim",
        "alice",
    )
    assert a["llm_console.tags"] == ["beta"]
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is opt-in
    children = {s.name: s for s in spans if s.parent_span_id == root.span_id}
    assert set(children) == {"auth", "route", "upstream"}
    assert all(c.trace_id == root.trace_id and c.kind == SPAN_KIND_INTERNAL for c in children.values())
    start = CREATED_NS - 1_500_000  # arrival
    assert (children["auth"].start_ns, children["auth"].end_ns) == (start, start + 1_500_000)
    assert (children["upstream"].start_ns, children["upstream"].end_ns) == (start + 2_000_000, start + 140_000_000)
    assert children["upstream"].attributes["llm_console.attempt"] == 1
    assert (root.start_ns, root.end_ns) == (start, start + 812_500_000)
    assert receiver.traces_posts(OTLP_PATH)[0]["x-api-key"] == "collector-token"


async def test_otlp_errors_and_opt_in_content(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_otlp(engine, box, settings, receiver.url, include_bodies=True)
    await started(exporter, 1)
    exporter.offer([errored(), chat()])
    spans = receiver.wait_spans(OTLP_PATH, 3 + 4)
    roots = {s.trace_id: s for s in spans if s.parent_span_id == ""}
    bad = roots["019cbd9e7a3a7c519b2e000000000002"]
    assert bad.status_code == STATUS_ERROR and bad.status_message == "upstream_error"
    assert bad.attributes["error.type"] == "upstream_error" and bad.attributes["http.response.status_code"] == 502
    assert "gen_ai.usage.input_tokens" not in bad.attributes
    failed_attempt = next(s for s in spans if s.parent_span_id == bad.span_id and s.name == "upstream")
    assert failed_attempt.status_code == STATUS_ERROR
    assert failed_attempt.attributes["http.response.status_code"] == 500
    good = roots[RID.replace("-", "")]
    assert json.loads(good.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}
    ]
    assert json.loads(good.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hello."


async def test_both_sinks_count_into_the_shared_status(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    save_otlp(engine, box, settings, receiver.url, sample_rate=0.0)
    await started(exporter, 2)
    records = [chat(id=f"019cbd9e-7a3a-7c51-9b2e-00000000001{i}") for i in range(3)]
    exporter.offer(records)
    receiver.wait_spans(LF_PATH, 3)
    await exporter.stop()  # flushes and writes the status
    lf, ot = admin.load_views(engine, box, settings)
    assert (lf.status.state, lf.status.exported, lf.status.dropped, lf.status.last_error) == ("ok", 3, 0, "")
    # Sampled at 0: nothing sent, nothing counted, still waiting for a first export.
    assert (ot.status.state, ot.status.exported, ot.status.dropped) == ("waiting", 0, 0)
    assert receiver.spans_at(OTLP_PATH) == []


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    running = Running(Receiver())
    yield running.receiver
    running.stop()


async def test_a_saved_change_is_picked_up_even_with_the_same_public_key(
    engine: Engine,
    box: SecretBox,
    settings: Settings,
    receiver: Receiver,
    second_receiver: Receiver,
    exporter: TelemetryExporter,
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    await started(exporter, 1)
    exporter.offer([chat(id="019cbd9e-7a3a-7c51-9b2e-0000000000a1")])
    receiver.wait_spans(LF_PATH, 1)
    first = exporter.sinks["langfuse"]
    save_langfuse(engine, box, settings, second_receiver.url)  # same key pair, another host
    exporter.config_changed()
    deadline = time.monotonic() + 10
    while exporter.sinks.get("langfuse") in (None, first):
        assert time.monotonic() < deadline, "the sink was not rebuilt"
        await asyncio.sleep(0.02)
    exporter.offer([chat(id="019cbd9e-7a3a-7c51-9b2e-0000000000a2")])
    spans = second_receiver.wait_spans(LF_PATH, 1)
    assert [s.trace_id for s in spans] == ["019cbd9e7a3a7c519b2e0000000000a2"]
    assert len(receiver.spans_at(LF_PATH)) == 1  # the old client is gone, not reused by the SDK


async def test_a_dead_collector_neither_blocks_nor_fails_and_the_status_says_why(
    engine: Engine, box: SecretBox, tmp_path: Path, exporter: TelemetryExporter
) -> None:
    settings = make_settings(tmp_path, telemetry_export_timeout_s=1.0)
    exporter._settings = settings
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    save_otlp(engine, box, settings, dead)
    await started(exporter, 1)
    batch = [chat(id=f"019cbd9e-7a3a-7c51-9b2e-{i:012x}") for i in range(200)]
    t0 = time.perf_counter()
    exporter.offer(batch)
    assert time.perf_counter() - t0 < 0.05  # the listener only queues
    assert exporter.wait_idle(10)
    await exporter.stop()
    _, ot = admin.load_views(engine, box, settings)
    assert ot.status.state == "error"
    assert ot.status.exported == 0 and ot.status.dropped == 200
    assert ot.status.last_error == f"Export to {dead}/v1/traces failed: cannot connect: Connection refused"


async def test_a_refusing_langfuse_puts_its_answer_in_the_status(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_langfuse(engine, box, settings, receiver.url, secret_key="sk-lf-wrong-secret")
    await started(exporter, 1)
    exporter.offer([chat()])
    assert exporter.wait_idle(5)
    await exporter.stop()
    lf, _ = admin.load_views(engine, box, settings)
    assert (lf.status.state, lf.status.exported, lf.status.dropped) == ("error", 0, 1)
    assert lf.status.last_error == f"Export to {receiver.url}{LF_PATH} failed: HTTP 401 Unauthorized"


async def test_a_full_queue_drops_and_counts_instead_of_waiting(
    engine: Engine, box: SecretBox, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, telemetry_queue_size=10)
    save_otlp(engine, box, settings, receiver.url)
    exp = TelemetryExporter(engine, box, settings)
    assert exp.apply_config() and exp.active  # the sink is open; the worker is not running yet
    exp.offer([chat(id=f"019cbd9e-7a3a-7c51-9b2e-{i:012x}") for i in range(25)])  # room for 10
    await exp.start()
    await exp.stop()
    _, ot = admin.load_views(engine, box, settings)
    assert (ot.status.exported, ot.status.dropped) == (10, 15)
    assert "queue (10 calls) was full" in ot.status.last_error
    assert len({s.trace_id for s in receiver.spans_at(OTLP_PATH)}) == 10


async def test_nothing_is_queued_while_no_sink_is_on(engine: Engine, box: SecretBox, settings: Settings) -> None:
    exp = TelemetryExporter(engine, box, settings)
    assert exp.apply_config() and not exp.active and exp.sinks == {}
    exp.offer([chat()])
    assert exp.wait_idle(0.1)


async def test_send_a_test_to_each_sink(engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    save_otlp(engine, box, settings, receiver.url)
    ok, message = await admin.test_sink(engine, box, settings, "langfuse")
    assert ok, message
    assert "test-project" in message and "accepted a test trace" in message
    ok, message = await admin.test_sink(engine, box, settings, "otlp")
    assert ok and f"{receiver.url}/v1/traces accepted a test span" in message
    names = [(s.path, s.name) for s in receiver.spans]
    assert names == [(LF_PATH, "llm-console connection test"), (OTLP_PATH, "llm-console connection test")]
    save_langfuse(engine, box, settings, receiver.url, secret_key="sk-lf-wrong")
    ok, message = await admin.test_sink(engine, box, settings, "langfuse")
    assert not ok and "refused the keys (HTTP 401)" in message


async def test_a_test_of_a_dead_or_refused_endpoint_says_why(
    engine: Engine, box: SecretBox, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, telemetry_export_timeout_s=1.0)
    dead = f"http://127.0.0.1:{free_port()}"
    save_otlp(engine, box, settings, dead)
    ok, message = await admin.test_sink(engine, box, settings, "otlp")
    assert (ok, message) == (False, f"Export to {dead}/v1/traces failed: cannot connect: Connection refused")
    save_langfuse(engine, box, settings, dead)
    ok, message = await admin.test_sink(engine, box, settings, "langfuse")
    assert not ok and "could not be reached" in message
    # The allow-list admitted the address when it was saved; without it, a test is refused before sending.
    strict = make_settings(tmp_path, upstream_allowlist=[])
    ok, message = await admin.test_sink(engine, box, strict, "otlp")
    assert not ok and message.startswith("Refused by the upstream guard") and "loopback" in message
    assert receiver.requests == []


async def test_calls_made_while_the_sinks_open_are_not_lost(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    await exporter.start()
    exporter.offer([chat()])  # before the worker has read the configuration and opened the sink
    spans = receiver.wait_spans(OTLP_PATH, 4)
    assert {s.trace_id for s in spans} == {RID.replace("-", "")}


async def test_scores_given_while_the_sinks_open_are_not_lost(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    await exporter.start()
    at = datetime(2026, 3, 5, 12, 5, tzinfo=UTC)
    early = FeedbackScore(id=21, created_at=at, request_id=RID, name="early", value=1.0)
    exporter.offer_scores([ScoreRecord.of(early)])  # before the worker has read the configuration
    await exporter.stop()  # hands the score to the SDK and flushes it
    (score,) = receiver.wait_scores(1)
    assert (score["name"], score["traceId"]) == ("early", RID.replace("-", ""))


async def test_a_second_langfuse_client_for_the_same_key_is_refused_with_a_reason(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    other = Langfuse(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, base_url=receiver.url, tracing_enabled=False)
    try:
        save_langfuse(engine, box, settings, receiver.url)
        await exporter.start()
        deadline = time.monotonic() + 10
        while exporter.active:  # until the worker read the configuration and failed to open the sink
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert exporter.sinks == {}
        await exporter.stop()  # writes the status
    finally:
        other.shutdown()
        release_sdk_client(PUBLIC_KEY, other._resources)
    lf, _ = admin.load_views(engine, box, settings)
    assert lf.status.state == "error"
    assert "could not start" in lf.status.last_error and "already running in this process" in lf.status.last_error


async def test_feedback_scores_become_langfuse_scores_on_the_calls_trace(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    await started(exporter, 1)
    at = datetime(2026, 3, 5, 12, 5, tzinfo=UTC)
    rows = [
        FeedbackScore(id=11, created_at=at, request_id=RID, name="helpful", value=1.0, comment="spot on", alias="gpt"),
        FeedbackScore(id=12, created_at=at, session_id="conv-1", name="mood", category="happy", source="console"),
    ]
    exporter.offer_scores([ScoreRecord.of(r) for r in rows])
    scores = {s["name"]: s for s in receiver.wait_scores(2)}
    helpful, mood = scores["helpful"], scores["mood"]
    assert (helpful["traceId"], helpful["value"], helpful["dataType"]) == (RID.replace("-", ""), 1.0, "NUMERIC")
    assert helpful["comment"] == "spot on" and helpful["id"] == "llmc-feedback-11"
    assert helpful["timestamp"].startswith("2026-03-05T12:05:00")
    assert helpful["metadata"] == {"source": "api", "alias": "gpt"}
    assert (mood["sessionId"], mood["value"], mood["dataType"]) == ("conv-1", "happy", "CATEGORICAL")
    assert "traceId" not in mood


async def test_unusable_settings_open_no_sink_and_say_why(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, otel_exporter_endpoint="http://c:4318", otel_exporter_headers=SecretStr("x"))
    exp = TelemetryExporter(engine, box, settings)
    await exp.start()
    deadline = time.monotonic() + 10
    while exp.active:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await exp.stop()
    assert exp.sinks == {}
    with engine.connect() as conn:
        error = conn.execute(text("SELECT last_error FROM telemetry_status WHERE sink = 'otlp'")).scalar()
    assert error == "LLMC_OTEL_EXPORTER_HEADERS: Header 'x' is not name=value (e.g. Authorization=Bearer x)."


async def test_exported_bodies_have_credentials_masked(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: TelemetryExporter
) -> None:
    """A prompt that carries a key (pasted by a user, or a tool's output) leaves masked, as the console shows it."""
    leaked = "sk-proj-abcdefghijklmnopqrstuvwx"
    body = json.dumps({"model": "gpt-small", "messages": [{"role": "user", "content": f"Why does {leaked} fail?"}]})
    save_langfuse(engine, box, settings, receiver.url)
    save_otlp(engine, box, settings, receiver.url, include_bodies=True)
    await started(exporter, 2)
    exporter.offer([chat(request_body=body)])
    generation = receiver.wait_spans(LF_PATH, 1)[0]
    root = next(s for s in receiver.wait_spans(OTLP_PATH, 4) if s.parent_span_id == "")
    sent = generation.attributes["langfuse.observation.input"] + root.attributes["gen_ai.input.messages"]
    assert leaked not in sent
    assert sent.count("Why does *** fail?") == 2
