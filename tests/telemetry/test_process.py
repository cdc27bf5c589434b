"""The export pipeline in a child process (`LLMC_TELEMETRY_PROCESS`, the gateway's default): started only while
a sink is on, stopped when none is, every call handed over reaches the receiver, a full queue is counted in
the sinks' status, and stopping exports what was queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.records import LogRecord
from llm_console.services import telemetry_admin as admin
from llm_console.settings import Settings
from llm_console.telemetry.config import LANGFUSE, OTLP
from llm_console.telemetry.convert import DeploymentInfo
from llm_console.telemetry.pipeline import route_deployments
from llm_console.telemetry.process import ExportProcess
from llm_console.telemetry.status import read_status
from tests.telemetry.conftest import SECRET_KEY, make_settings
from tests.telemetry.receiver import Receiver
from tests.telemetry.test_convert import chat
from tests.telemetry.test_export import DEPLOYMENTS, LF_PATH, OTLP_PATH, save_langfuse, save_otlp


def calls(n: int, start: int = 0) -> list[LogRecord]:
    return [chat(id=f"019cbd9e-7a3a-7c51-9b2e-{i:012d}") for i in range(start, start + n)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The child builds its SecretBox from the settings, as the gateway's runtime does.
    return make_settings(tmp_path, secret_key=SecretStr(SECRET_KEY), telemetry_queue_size=10)


@pytest.fixture
async def exporter(engine: Engine, box: SecretBox, settings: Settings) -> AsyncIterator[ExportProcess]:
    exp = ExportProcess(engine, box, settings, lambda: DEPLOYMENTS)
    yield exp
    await exp.stop()


async def until(what: str, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_no_child_while_every_sink_is_off_and_one_once_a_sink_is_on(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: ExportProcess
) -> None:
    await exporter.start()
    assert exporter.active is False and exporter._proc is None
    exporter.offer(calls(3))  # nothing to do: dropped silently, nothing started
    assert exporter._proc is None

    save_otlp(engine, box, settings, receiver.url)
    exporter.config_changed()
    await until("the export process", lambda: exporter.active)
    child = exporter._proc
    assert child is not None and child.is_alive() and child.pid is not None
    exporter.offer(calls(4))
    spans = await asyncio.to_thread(receiver.wait_spans, OTLP_PATH, 4 * 4)  # each call and its three spans
    root = next(s for s in spans if s.parent_span_id == "")
    assert root.attributes["llm_console.deployment"] == "llama@sim"  # the parent's deployment names went along

    admin.save_otlp(engine, box, settings, "admin@x", enabled=False, endpoint=receiver.url, headers="",
                    service_name="gw-test", include_bodies=False, sample_rate=1.0)  # fmt: skip
    exporter.config_changed()
    await until("the export process to stop", lambda: not child.is_alive())
    assert exporter.active is False and child.exitcode == 0


async def test_both_sinks_get_every_call_and_stop_exports_what_was_queued(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: ExportProcess
) -> None:
    save_langfuse(engine, box, settings, receiver.url)
    save_otlp(engine, box, settings, receiver.url)
    await exporter.start()
    assert exporter.active  # started before the first call
    for start in range(0, 30, 6):  # under the queue bound once the child keeps up
        await until("room in the queue", lambda: exporter.wait_idle(0.01))
        exporter.offer(calls(6, start))
    await exporter.stop()  # the child exports the rest and flushes both SDKs before it exits
    assert len(receiver.spans_at(LF_PATH)) == 30
    assert len([s for s in receiver.spans_at(OTLP_PATH) if s.parent_span_id == ""]) == 30
    status = read_status(engine)
    assert (status[LANGFUSE].exported, status[OTLP].exported) == (30, 30)


async def test_calls_beyond_the_queue_bound_are_dropped_and_counted_in_the_status(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: ExportProcess
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    await exporter.start()
    exporter.offer(calls(25))  # the bound is 10 calls not yet handled by the child: 15 are dropped
    await until("the child to handle its 10", lambda: exporter.wait_idle(0.01))
    exporter.offer(calls(1, 100))  # the count goes along with the next batch
    await exporter.stop()
    roots = [s for s in receiver.spans_at(OTLP_PATH) if s.parent_span_id == ""]
    assert len(roots) == 11
    status = read_status(engine)[OTLP]
    assert (status.exported, status.dropped) == (11, 15)
    assert "queue (10 calls) was full" in status.last_error


async def test_a_child_that_dies_is_noticed_and_started_again(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llm_console.telemetry.process.RESTART_AFTER_S", 0.2)
    save_otlp(engine, box, settings, receiver.url)
    exp = ExportProcess(engine, box, settings, lambda: DEPLOYMENTS)
    await exp.start()
    try:
        first = exp._proc
        assert first is not None
        first.kill()
        await until("the child to die", lambda: not first.is_alive())
        exp.offer(calls(1))  # lost (the child is gone), and noticed
        await until("a new child", lambda: exp._proc is not None and exp._proc is not first and exp.active)
        exp.offer(calls(2, 50))
        await asyncio.to_thread(receiver.wait_spans, OTLP_PATH, 2 * 4)
    finally:
        await exp.stop()


def test_deployment_infos_pickle_for_the_child() -> None:
    import pickle

    info = DEPLOYMENTS[7]
    assert pickle.loads(pickle.dumps(info)) == info
    record = calls(1)[0]
    assert pickle.loads(pickle.dumps(record)) == record


async def test_stopping_after_the_child_died_does_not_wait_on_a_full_pipe(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: ExportProcess
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    await exporter.start()
    child = exporter._proc
    assert child is not None
    child.kill()
    await until("the child to die", lambda: not child.is_alive())
    for _ in range(20):  # ~1 MB for a pipe of 64 KB that nobody reads: the feeder thread blocks on it
        exporter._put(("calls", calls(30), 0))
    started = time.monotonic()
    await asyncio.wait_for(exporter.stop(), 20)
    assert time.monotonic() - started < 10


async def test_settings_unreadable_at_start_are_read_again_later(
    engine: Engine,
    box: SecretBox,
    settings: Settings,
    receiver: Receiver,
    exporter: ExportProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    monkeypatch.setattr("llm_console.telemetry.process.CONFIG_RETRY_S", 0.2)
    real, failures = ExportProcess._wanted, [1]

    def database_away_once(self: ExportProcess) -> bool:
        if failures:
            failures.pop()
            raise ConnectionError("database away")
        return real(self)

    monkeypatch.setattr(ExportProcess, "_wanted", database_away_once)
    await exporter.start()  # no audit event will follow: the retry alone must start the child
    assert exporter.active is False
    await until("the export process after the retry", lambda: exporter.active)
    exporter.offer(calls(1))
    await asyncio.to_thread(receiver.wait_spans, OTLP_PATH, 4)


async def test_a_change_announced_from_another_thread_starts_the_child(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver, exporter: ExportProcess
) -> None:
    await exporter.start()
    assert exporter.active is False
    save_otlp(engine, box, settings, receiver.url)
    await asyncio.to_thread(exporter.config_changed)  # as a console handler running in a worker thread would
    await until("the export process", lambda: exporter.active)


def test_route_deployments_gives_a_new_mapping_per_route_table() -> None:
    """The export process is sent the deployments again when the mapping object changes, so each reload of
    the route table must give a new one (it was one dict updated in place: the child kept the first names)."""

    def table(name: str) -> Any:
        target = SimpleNamespace(deployment=name, kind="openai", api_base="http://10.0.0.5:8001/v1")
        return SimpleNamespace(targets=lambda: {7: target})

    current = [table("llama@sim")]
    deployments = route_deployments(lambda: current[0])
    first = deployments()
    assert deployments() is first and first[7].name == "llama@sim"  # same table: same mapping, not rebuilt
    current[0] = table("llama@sim-2")
    second = deployments()
    assert second is not first and second[7].name == "llama@sim-2" and first[7].name == "llama@sim"


async def test_renamed_deployments_reach_the_child(
    engine: Engine, box: SecretBox, settings: Settings, receiver: Receiver
) -> None:
    save_otlp(engine, box, settings, receiver.url)
    current = [DEPLOYMENTS]
    exp = ExportProcess(engine, box, settings, lambda: current[0])
    await exp.start()
    try:
        exp.offer(calls(1))
        await asyncio.to_thread(receiver.wait_spans, OTLP_PATH, 4)
        current[0] = {7: DeploymentInfo.of("llama@renamed", "openai", "http://10.0.0.5:8001/v1")}
        exp.offer(calls(1, 1))
        spans = await asyncio.to_thread(receiver.wait_spans, OTLP_PATH, 8)
    finally:
        await exp.stop()
    names = {s.attributes["llm_console.deployment"] for s in spans if s.parent_span_id == ""}
    assert names == {"llama@sim", "llama@renamed"}
