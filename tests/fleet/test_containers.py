"""The container collector against a real Docker Engine API (podman's), the fleet being simulator containers,
and open_docker's words when there is no engine to reach."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from docker.models.containers import Container

from llm_console.fleet import containers
from llm_console.fleet.containers import ContainerCollector, open_docker
from llm_console.fleet.types import ContainerInfo
from llm_console.settings import Settings
from tests.conftest import free_port
from tests.fleet.podman import (
    FLEET_LABEL,
    SESSION,
    TEST_LABELS,
    TINY_IMAGE,
    DockerEngine,
    run_plain_container,
    run_simulator_container,
    wait_simulator,
)

GLOB_IMAGE = f"localhost/llmc-test-vllm:{SESSION}"


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def by_name(infos: list[ContainerInfo], name: str) -> ContainerInfo:
    matches = [info for info in infos if info.name == name]
    assert len(matches) == 1, f"{name} not listed once in {[i.name for i in infos]}"
    return matches[0]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Fleet:
    alpha: Container
    alpha_port: int
    beta: Container
    beta_port: int
    by_image: Container
    outsider: Container


@pytest.fixture(scope="module")
def fleet(docker_engine: DockerEngine) -> Iterator[Fleet]:
    client = docker_engine.client
    client.images.get(TINY_IMAGE).tag(GLOB_IMAGE.rpartition(":")[0], SESSION)
    alpha_port, beta_port = free_port(), free_port()
    alpha = run_simulator_container(
        client,
        f"llmc-{SESSION}-alpha",
        alpha_port,
        labels={"llm-console.deployment": "alpha"},
        extra_args=("--models", "sim-a,sim-b"),
        wait=False,
    )
    beta = run_simulator_container(
        client,
        f"llmc-{SESSION}-beta",
        beta_port,
        labels={"llm-console.model": "override-b", "llm-console.version": "v9"},
        wait=False,
    )
    by_image = client.containers.run(  # a member by its image name alone
        GLOB_IMAGE, ["/bin/busybox", "sleep", "600"], name=f"llmc-{SESSION}-glob", detach=True, labels=TEST_LABELS
    )
    outsider = run_plain_container(client, f"llmc-{SESSION}-outsider", ["/bin/busybox", "sleep", "600"])
    wait_simulator(alpha, alpha_port)
    wait_simulator(beta, beta_port)
    yield Fleet(alpha, alpha_port, beta, beta_port, by_image, outsider)
    for container in (alpha, beta, by_image, outsider):
        container.remove(force=True)
    client.images.remove(GLOB_IMAGE)


def test_list_reads_every_member_and_only_members(docker_engine: DockerEngine, fleet: Fleet) -> None:
    spin = ["/bin/busybox", "sh", "-c", "while :; do :; done"]
    busy_container = run_plain_container(docker_engine.client, f"llmc-{SESSION}-busy", spin, {FLEET_LABEL: "1"})
    collector = ContainerCollector(docker_engine.client, settings())
    deployments, ports = {"alpha": 1, "other": 7}, {fleet.beta_port: 2}
    try:
        first = collector.list(deployments, ports)
        time.sleep(1.0)
        second = collector.list(deployments, ports)
    finally:
        busy_container.remove(force=True)  # a spinning core slows every other test on a small machine
    names = {info.name for info in second}
    assert fleet.outsider.name not in names
    assert fleet.outsider.id not in {info.id for info in second}

    alpha, beta = by_name(second, fleet.alpha.name), by_name(second, fleet.beta.name)
    assert (alpha.id, alpha.image, alpha.status, alpha.health) == (fleet.alpha.id, TINY_IMAGE, "running", "")
    assert (alpha.model, alpha.version, alpha.ports, alpha.deployment_id) == ("sim-a", "1", (fleet.alpha_port,), 1)
    assert (beta.model, beta.version, beta.ports, beta.deployment_id) == ("override-b", "v9", (fleet.beta_port,), 2)
    for info in (alpha, beta):
        assert info.started_at is not None and now() - timedelta(minutes=5) < info.started_at <= now()
        assert (info.finished_at, info.exit_code, info.restart_count) == (None, None, 0)
        assert info.mem_bytes is not None and 10 * 2**20 < info.mem_bytes < 2**31  # a Python server: tens of MiB
        assert info.mem_limit_bytes is not None and info.mem_limit_bytes >= info.mem_bytes
        assert info.cpu_pct is not None and info.cpu_pct >= 0
        pid = docker_engine.client.api.inspect_container(info.id)["State"]["Pid"]
        assert pid in info.pids and all(Path(f"/proc/{p}").exists() for p in info.pids)
    assert alpha.labels["llm-console.deployment"] == "alpha"

    # podman's stats carry no earlier sample: CPU% needs the collector's previous round
    assert by_name(first, busy_container.name).cpu_pct is None
    busy = by_name(second, busy_container.name)
    assert busy.cpu_pct is not None and 10 < busy.cpu_pct < 130, busy.cpu_pct  # one spinning core is ~100
    assert (busy.model, busy.ports, busy.deployment_id) == ("", (), None)

    glob = by_name(second, fleet.by_image.name)
    assert FLEET_LABEL not in glob.labels and (glob.image, glob.version) == (GLOB_IMAGE, SESSION)

    narrow = ContainerCollector(docker_engine.client, settings(fleet_images=["nothing-*"]))
    assert fleet.by_image.name not in {info.name for info in narrow.list({}, {})}


def test_stop_start_restart_and_policy_restart(docker_engine: DockerEngine) -> None:
    """One container through an operator's stop, start and restart, then a crash the restart policy answers:
    times move, the restart count rises each time (podman's own RestartCount only counts the last one, and its
    restart reset it to 0), and the events tell the story in order."""
    client, port = docker_engine.client, free_port()
    since = now() - timedelta(seconds=1)
    name = f"llmc-{SESSION}-cycle"
    container = run_simulator_container(client, name, port, restart_policy={"Name": "on-failure"})
    collector = ContainerCollector(client, settings())
    ports = {port: 5}
    running = by_name(collector.list({}, ports), name)
    assert (running.status, running.restart_count, running.deployment_id) == ("running", 0, 5)
    assert running.started_at is not None

    container.stop(timeout=10)
    stopped = by_name(collector.list({}, ports), name)
    assert (stopped.status, stopped.exit_code, stopped.restart_count) == ("exited", 0, 0)  # uvicorn exits cleanly
    assert stopped.finished_at is not None and stopped.finished_at > running.started_at
    assert (stopped.started_at, stopped.cpu_pct, stopped.mem_bytes, stopped.pids) == (
        running.started_at,
        None,
        None,
        (),
    )

    container.start()
    wait_simulator(container, port)
    started = by_name(collector.list({}, ports), name)
    assert started.status == "running" and started.started_at is not None
    assert started.started_at > stopped.finished_at
    assert (started.restart_count, started.finished_at, started.exit_code) == (1, None, None)

    container.restart(timeout=10)
    wait_simulator(container, port)
    restarted = by_name(collector.list({}, ports), name)
    assert restarted.started_at is not None and restarted.started_at > started.started_at
    assert restarted.restart_count == 2

    pid = client.api.inspect_container(container.id)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while client.api.inspect_container(container.id)["State"]["Pid"] in (pid, 0):
        assert time.monotonic() < deadline, "the restart policy did not restart the container"
        time.sleep(0.1)
    crashed = by_name(collector.list({}, ports), name)
    assert crashed.started_at is not None and crashed.started_at > restarted.started_at
    assert (crashed.status, crashed.restart_count) == ("running", 3)
    until = now() + timedelta(seconds=1)

    events = collector.events(since, until, [container.id])
    actions = [e.action for e in events]
    assert [e.at for e in events] == sorted(e.at for e in events) and all(since <= e.at < until for e in events)
    assert {e.container_id for e in events} == {container.id} and {e.container_name for e in events} == {name}
    assert {e.deployment_id for e in events} == {5}
    assert actions[0] == "create" and "restart" in actions
    assert [a for a in actions if a in ("start", "die")] == ["start", "die", "start", "die", "start", "die", "start"]
    assert [e.detail for e in events if e.action == "die"] == ["exit code 0", "exit code 0", "exit code 137"]

    assert collector.events(since, until, [name]) == events
    assert collector.events(since, until, [container.id[:12]]) == events
    assert collector.events(since, until, ["not-a-container"]) == []
    assert collector.events(until, until + timedelta(seconds=1), [container.id]) == []
    assert collector.events_read_until == until + timedelta(seconds=1)


def test_remember_continues_a_stored_count(docker_engine: DockerEngine, fleet: Fleet) -> None:
    client = docker_engine.client
    current = by_name(ContainerCollector(client, settings()).list({}, {}), fleet.alpha.name)
    assert current.started_at is not None

    same_run = ContainerCollector(client, settings())
    same_run.remember([replace(current, restart_count=5)])
    assert by_name(same_run.list({}, {}), fleet.alpha.name).restart_count == 5

    later_run = ContainerCollector(client, settings())
    later_run.remember([replace(current, restart_count=5, started_at=current.started_at - timedelta(hours=1))])
    assert by_name(later_run.list({}, {}), fleet.alpha.name).restart_count == 6


def test_open_docker_names_the_engine(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    client, status = open_docker(settings(fleet_docker_url=docker_engine.url), "local")
    assert client is not None and status.ok and status.name == "docker@local"
    assert re.fullmatch(
        rf"Docker API at {re.escape(docker_engine.url)} \(Podman Engine \d+\.\d+\.\d+\)", status.message
    )
    assert status.detail["engine"] == "Podman Engine" and client.ping()
    client.close()

    monkeypatch.setenv("DOCKER_HOST", docker_engine.url)
    client, status = open_docker(settings(), "gpu-1")
    assert client is not None and status.ok, status
    assert status.message.startswith(f"Docker API at {docker_engine.url} (")
    client.close()


def test_open_docker_failures_are_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(containers, "DEFAULT_SOCKET", tmp_path / "docker.sock")
    assert open_docker(settings(), "local") == (
        None,
        containers.SourceStatus(
            "docker", "local", False, "Docker API not configured: set LLMC_FLEET_DOCKER_URL or DOCKER_HOST"
        ),
    )

    missing = f"unix://{tmp_path}/nothing.sock"
    client, status = open_docker(settings(fleet_docker_url=missing), "local")
    assert client is None and not status.ok
    assert status.message == f"Docker API at {missing} unreachable: No such file or directory"

    refused = f"tcp://127.0.0.1:{free_port()}"
    client, status = open_docker(settings(fleet_docker_url=refused), "local")
    assert client is None and status.message == f"Docker API at {refused} unreachable: Connection refused"

    client, status = open_docker(settings(fleet_docker_url="not a url::"), "local")
    assert client is None and status.message.startswith("Docker API at not a url:: unreachable: ")
