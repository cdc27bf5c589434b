"""A real Docker Engine API for the fleet tests: podman's, started per test session (TESTING.md's recipe).

Containers run the project's simulator from the host's Python (read-only binds, host networking), so a test
gets "vLLM" containers that answer /health and /metrics on 127.0.0.1 within a second or two. Every container
made here carries `llmc-test.session=<this session>` and is removed at the end; other sessions sharing the same
podman storage are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from tests.conftest import ROOT, missing_service, wait_http

TINY_IMAGE = "localhost/llmc-tiny:1"
SESSION = uuid.uuid4().hex[:10]
TEST_LABELS = {"llmc-test": "1", "llmc-test.session": SESSION}
FLEET_LABEL = "llm-console.fleet"

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@dataclass(frozen=True)
class DockerEngine:
    """The running service: its socket URL and an SDK client on it."""

    url: str
    client: docker.DockerClient


def _podman(podman: str, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([podman, *args], env=dict(env), capture_output=True, text=True, timeout=60)


def _ensure_image(podman: str, env: Mapping[str, str], workdir: Path) -> None:
    """A registry-free image: just busybox, for the odd shell command; the simulator comes from the binds."""
    if _podman(podman, env, "image", "exists", TINY_IMAGE).returncode == 0:
        return
    busybox = shutil.which("busybox")
    if busybox is None:
        missing_service("busybox is not installed: apt-get install podman runc busybox-static")
    rootfs = workdir / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
    result = _podman(podman, env, "import", str(rootfs), TINY_IMAGE)
    if result.returncode != 0:
        raise RuntimeError(f"podman import failed: {result.stderr.strip()}")


@contextlib.contextmanager
def docker_engine(workdir: Path) -> Iterator[DockerEngine]:
    """Start `podman system service` on a socket in `workdir`; stop it and remove this session's containers after."""
    podman = shutil.which("podman")
    if podman is None:
        missing_service("podman is not installed: apt-get install podman runc busybox-static")
        return
    conf = workdir / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    _ensure_image(podman, env, workdir)
    socket = workdir / "engine.sock"
    url = f"unix://{socket}"
    with (workdir / "service.log").open("wb") as service_log:
        service = subprocess.Popen(
            [podman, "system", "service", "--time=0", url],
            env=env,
            stdout=service_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client: docker.DockerClient | None = None
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "service.log").read_text(errors="replace")[-2000:]
                missing_service(f"podman system service did not start: {log}")
            time.sleep(0.05)
        client = docker.DockerClient(base_url=url, timeout=30)
        yield DockerEngine(url=url, client=client)
    finally:
        if client is not None:
            for container in client.containers.list(all=True, filters={"label": f"llmc-test.session={SESSION}"}):
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
            client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()


def _binds() -> dict[str, dict[str, str]]:
    """The host's Python and this checkout, read-only at the same paths, so `sys.executable` runs inside."""
    paths = ["/usr", "/lib", "/lib64", str(Path(sys.base_prefix).resolve()), sys.prefix, str(ROOT)]
    return {p: {"bind": p, "mode": "ro"} for p in dict.fromkeys(paths) if os.path.exists(p)}


def run_simulator_container(
    client: docker.DockerClient,
    name: str,
    port: int,
    *,
    labels: Mapping[str, str] | None = None,
    image: str = TINY_IMAGE,
    extra_args: Sequence[str] = (),
    restart_policy: Mapping[str, Any] | None = None,
    wait: bool = True,
) -> Container:
    """A fleet member (`llm-console.fleet=1`) serving the simulator on 127.0.0.1:`port` (host networking),
    returned once /health answers unless `wait` is False."""
    command = [sys.executable, "-m", "llm_console.simulator", "--port", str(port), "--seed", "11", *extra_args]
    container = client.containers.run(
        image,
        command,
        name=name,
        detach=True,
        network_mode="host",
        volumes=_binds(),
        working_dir=str(ROOT),
        environment={"PYTHONPATH": str(ROOT)},
        labels={FLEET_LABEL: "1", **TEST_LABELS, **(labels or {})},
        restart_policy=dict(restart_policy) if restart_policy else None,
    )
    if wait:
        wait_simulator(container, port)
    return container


def wait_simulator(container: Container, port: int, timeout_s: float = 30) -> None:
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout_s)
    except TimeoutError as exc:
        logs = container.logs(tail=30).decode(errors="replace")
        raise TimeoutError(f"{exc}; container {container.name} logs:\n{logs}") from exc


def run_plain_container(
    client: docker.DockerClient, name: str, command: Sequence[str], labels: Mapping[str, str] | None = None
) -> Container:
    """A busybox container with the test labels plus `labels` only: no fleet label unless given."""
    return client.containers.run(
        TINY_IMAGE, list(command), name=name, detach=True, network_mode="host", labels={**TEST_LABELS, **(labels or {})}
    )
