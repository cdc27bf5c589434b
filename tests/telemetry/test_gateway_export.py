"""Through a real `llm-console gateway` and the simulator, called with the official openai SDK: every call
reaches Langfuse and the OTLP collector, and a slow collector does not slow the calls down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from sqlalchemy import select

from llm_console.db.engine import make_engine
from llm_console.db.models import RequestLog
from llm_console.db.telemetry_tables import TelemetryStatus
from tests.conftest import stop
from tests.integration.conftest import UPSTREAM_MODEL, Stack, start_gateway
from tests.integration.fixtures_gateway import simulator
from tests.telemetry.receiver import PUBLIC_KEY, SECRET_KEY, Receiver, Running

LF_PATH, OTLP_PATH = "/api/public/otel/v1/traces", "/v1/traces"
EXPORT_DELAY_S = 3.0  # how long the receiver takes to answer each export


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    running = Running(Receiver(delay_s=EXPORT_DELAY_S))
    yield running.receiver
    running.stop()


@pytest.fixture
def stack(tmp_path: Path, slow_receiver: Receiver) -> Iterator[Stack]:
    with simulator(tmp_path) as sim:
        stack, proc = start_gateway(
            tmp_path / "gw",
            (sim + "/v1", sim + "/v1"),
            LLMC_LANGFUSE_HOST=slow_receiver.url,
            LLMC_LANGFUSE_PUBLIC_KEY=PUBLIC_KEY,
            LLMC_LANGFUSE_SECRET_KEY=SECRET_KEY,
            LLMC_OTEL_EXPORTER_ENDPOINT=slow_receiver.url,
            LLMC_OTEL_SERVICE_NAME="gw-integration",
            LLMC_TELEMETRY_STATUS_INTERVAL_S="0.5",
        )
        try:
            yield stack
        finally:
            stop(proc)  # type: ignore[arg-type]


def rows(stack: Stack, ids: list[str]) -> dict[str, RequestLog]:
    engine = make_engine(stack.database_url)
    try:
        deadline = time.monotonic() + 15
        while True:
            with engine.connect() as conn:
                found = conn.execute(select(RequestLog).where(RequestLog.id.in_(ids))).all()  # type: ignore[attr-defined]
            if len(found) == len(ids) or time.monotonic() > deadline:
                return {r.id: RequestLog.model_validate(r._mapping) for r in found}
            time.sleep(0.1)
    finally:
        engine.dispose()


def exported(stack: Stack, calls: int) -> dict[str, TelemetryStatus]:
    engine = make_engine(stack.database_url)
    try:
        deadline = time.monotonic() + 20
        while True:
            with engine.connect() as conn:
                status = {
                    r.sink: TelemetryStatus.model_validate(r._mapping) for r in conn.execute(select(TelemetryStatus))
                }
            if all(s.exported >= calls for s in status.values()) or time.monotonic() > deadline:
                return status
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_calls_are_exported_to_both_sinks_off_the_hot_path(stack: Stack, slow_receiver: Receiver) -> None:
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.key, max_retries=0, timeout=30)
    ids, took = [], []
    with client:
        for i in range(3):
            t0 = time.perf_counter()
            raw = client.chat.completions.with_raw_response.create(
                model="chat",
                messages=[{"role": "user", "content": f"Question {i}?"}],
                max_tokens=12,
                user="alice",
                extra_headers={"X-LLMC-Session-Id": "conv-1", "X-LLMC-Tags": "integration,beta"},
            )
            raw.parse()
            took.append(time.perf_counter() - t0)
            ids.append(raw.headers["x-request-id"])
        t0 = time.perf_counter()
        with client.chat.completions.with_streaming_response.create(
            model="chat", messages=[{"role": "user", "content": "Stream?"}], max_tokens=12, stream=True
        ) as streamed:
            for _ in streamed.iter_lines():
                pass
            ids.append(streamed.headers["x-request-id"])
        took.append(time.perf_counter() - t0)
        # feedback through the gateway's own endpoint becomes a Langfuse score on the call's trace
        client.post("/feedback", cast_to=object, body={"request_id": ids[0], "name": "helpful", "value": 1})
        client.post("/feedback", cast_to=object, body={"session_id": "conv-1", "name": "mood", "value": "happy"})
    # Each export takes the receiver 3 s to answer; a call that waited for its export could not finish sooner.
    assert max(took) < EXPORT_DELAY_S - 0.5, took
    logged = rows(stack, ids)
    assert len(logged) == 4

    generations = {s.trace_id: s for s in slow_receiver.wait_spans(LF_PATH, 4, timeout_s=30)}
    for rid in ids:
        gen, row = generations[rid.replace("-", "")], logged[rid]
        usage = json.loads(gen.attributes["langfuse.observation.usage_details"])
        assert usage["input"] + usage.get("input_cached_tokens", 0) == row.prompt_tokens
        assert usage["output"] == row.completion_tokens and usage["total"] == row.prompt_tokens + row.completion_tokens
        assert json.loads(gen.attributes["langfuse.observation.cost_details"]) == {"total": row.cost_usd}
        assert gen.attributes["langfuse.observation.model.name"] == UPSTREAM_MODEL
        assert json.loads(gen.attributes["langfuse.trace.metadata.request_id"]) == rid
        # The generation spans the logged call: it ends latency_ms after it starts (to the microsecond).
        assert abs((gen.end_ns - gen.start_ns) / 1e6 - row.latency_ms) < 0.002
    first = generations[ids[0].replace("-", "")].attributes
    assert (first["user.id"], first["session.id"], first["langfuse.trace.tags"]) == (
        "alice",
        "conv-1",
        ["beta", "integration"],
    )
    assert first["langfuse.trace.name"] == "/v1/chat/completions chat"

    spans = slow_receiver.wait_spans(OTLP_PATH, 4 * 4, timeout_s=30)  # each call: itself, auth, route, upstream
    roots = {s.trace_id: s for s in spans if s.parent_span_id == ""}
    assert set(roots) == {rid.replace("-", "") for rid in ids}
    root = roots[ids[3].replace("-", "")]
    assert root.name == "chat chat" and root.resource["service.name"] == "gw-integration"
    assert root.attributes["gen_ai.provider.name"] == "openai"
    assert root.attributes["gen_ai.request.stream"] is True
    assert root.attributes["server.address"] == "127.0.0.1"
    assert root.attributes["gen_ai.usage.output_tokens"] == logged[ids[3]].completion_tokens
    children = sorted(s.name for s in spans if s.parent_span_id == root.span_id)
    assert children == ["auth", "route", "stream", "upstream"]

    try:
        scores = {sc["name"]: sc for sc in slow_receiver.wait_scores(2, timeout_s=30)}
    except AssertionError:
        status = {k: (v.exported, v.dropped, v.last_error) for k, v in exported(stack, 4).items()}
        raise AssertionError(([(m, p) for m, p, _ in slow_receiver.requests], status)) from None
    assert (scores["helpful"]["traceId"], scores["helpful"]["value"]) == (ids[0].replace("-", ""), 1)
    assert (scores["mood"]["sessionId"], scores["mood"]["value"]) == ("conv-1", "happy")

    status = exported(stack, 4)
    assert (status["langfuse"].exported, status["otlp"].exported) == (4, 4)
    assert status["langfuse"].dropped == status["otlp"].dropped == 0
