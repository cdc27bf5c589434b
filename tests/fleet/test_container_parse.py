"""Reading the Engine API's answers: command lines of the shapes vLLM deployments use, image versions (with the
base-image label trap), Docker's times, `docker stats`' CPU% from Docker-shaped counters, and event actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from llm_console.fleet.container_parse import (
    CpuSample,
    EngineCommand,
    cpu_percent,
    image_version,
    parse_command,
    parse_event,
    parse_time,
)


@pytest.mark.parametrize(
    ("argv", "model", "port"),
    [
        (
            ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8011"],
            "meta-llama/Llama-3.1-8B-Instruct",
            8011,
        ),
        (["/usr/local/bin/vllm", "serve", "Qwen/Qwen2.5-7B", "--tensor-parallel-size", "2"], "Qwen/Qwen2.5-7B", 8000),
        (
            ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model=facebook/opt-125m"],
            "facebook/opt-125m",
            8000,
        ),
        (["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m", "--port=9001"], "m", 9001),
        (["vllm", "serve", "--model", "from-flag", "--host", "0.0.0.0"], "from-flag", 8000),
        (["/bin/sh", "-c", "pip list && exec vllm serve 'org/my model' --port 8123"], "org/my model", 8123),
        (["bash", "-lc", "python -m vllm.entrypoints.openai.api_server --model x"], "x", 8000),
        (["python", "-m", "llm_console.simulator", "--port", "8002", "--models", "a,b"], "a", 8002),
        (["python", "-m", "llm_console.simulator"], "", 8001),
        (["text-generation-launcher", "--model-id", "m", "--port", "80"], "", 80),
        (["nginx", "-g", "daemon off;"], "", None),
        (["vllm", "serve", "m", "--port", "not-a-port"], "m", 8000),
        ([], "", None),
    ],
)
def test_parse_command(argv: list[str], model: str, port: int | None) -> None:
    assert parse_command(argv) == EngineCommand(model, port)


def test_version_and_times() -> None:
    ubuntu_base = {"org.opencontainers.image.ref.name": "ubuntu", "org.opencontainers.image.version": "22.04"}
    assert image_version(ubuntu_base, "vllm/vllm-openai:v0.6.3") == "v0.6.3"
    assert image_version(ubuntu_base, "vllm/vllm-openai") == "latest"
    own = {"org.opencontainers.image.version": "0.7.1"}
    assert image_version(own, "registry.local:5000/vllm:prod") == "0.7.1"
    assert image_version({**own, "llm-console.version": "0.7.1-patched"}, "x:1") == "0.7.1-patched"
    assert image_version({}, "registry.local:5000/vllm@sha256:abc") == ""
    assert image_version({}, "registry.local:5000/vllm") == "latest"
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("2026-01-02T03:04:05.123456789Z") == datetime(2026, 1, 2, 3, 4, 5, 123456, UTC)
    assert parse_time("2026-01-02T04:04:05+01:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("yesterday") is None


def test_cpu_percent_from_docker_precpu_and_from_an_earlier_round() -> None:
    # Docker's non-one-shot answer: 0.5 s of CPU while the host's 2 CPUs ran 2 s each -> a quarter of one core
    docker_answer = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_500_000_000},
            "system_cpu_usage": 14_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000},
    }
    now = CpuSample.of(docker_answer["cpu_stats"], "2026-01-01T00:00:02Z")
    before = CpuSample.of(docker_answer["precpu_stats"], "2026-01-01T00:00:00Z")
    assert cpu_percent(before, now) == pytest.approx(25.0)
    podman_empty = {"cpu_usage": {"total_usage": 0}, "cpu": 0}
    assert CpuSample.of(podman_empty, "0001-01-01T00:00:00Z") is None and cpu_percent(None, now) is None
    # wall-clock time between the reads: 1.5 s of CPU in 1 s is 150 %
    later = CpuSample(3_000_000_000, None, 2, datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC))
    assert cpu_percent(CpuSample(1_500_000_000, None, 2, now.read if now else None), later) == pytest.approx(150.0)
    assert cpu_percent(later, now) is None  # counters went back: a new run, not a negative figure
    # without read times, the host's CPU counter (Docker's formula)
    assert cpu_percent(replace(before, read=None), replace(now, read=None)) == pytest.approx(25.0)  # type: ignore[arg-type]


def event(action: str, **attributes: str) -> dict[str, object]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": "a" * 64, "Attributes": {"name": "vllm-1", **attributes}},
        "time": 1_767_225_600,
        "timeNano": 1_767_225_600_123_456_789,
    }


def test_parse_event_normalises_actions() -> None:
    wanted, deployments = {"a" * 64}, {"a" * 64: 3}
    health = parse_event(event("health_status: healthy"), wanted, deployments)
    assert health is not None and (health.action, health.detail, health.deployment_id) == (
        "health_status",
        "healthy",
        3,
    )
    assert health.at == datetime(2026, 1, 1, 0, 0, 0, 123456, UTC) and health.container_name == "vllm-1"
    died = parse_event(event("die", exitCode="137"), wanted, deployments)
    assert died is not None and (died.action, died.detail) == ("die", "exit code 137")
    killed = parse_event(event("kill", signal="15"), {"vllm-1"}, {})
    assert killed is not None and (killed.detail, killed.deployment_id) == ("signal 15", None)
    assert parse_event(event("start"), {"a" * 12}, {}) is not None  # a short id
    assert parse_event(event("exec_start: /bin/sh -c curl -f localhost:8000/health"), wanted, {}) is None
    assert parse_event(event("start"), {"someone-else"}, {}) is None
    assert parse_event({**event("start"), "Type": "image"}, wanted, {}) is None
