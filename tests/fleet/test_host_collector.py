"""One host's fleet round end to end: podman's Docker Engine API with simulator containers, an NVML-shaped
GPU driver holding one container's process, the route table from the database, and what lands in the
fleet tables (containers tied to deployments, events, GPUs mapped to containers, source statuses)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.fleet_tables import FleetContainer, FleetContainerEvent, FleetGpu, FleetSource
from llm_console.db.migrate import upgrade
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, Provider
from llm_console.fleet.collector import HostCollector
from llm_console.fleet.serving import served_by
from llm_console.gateway.routing import load_route_table
from llm_console.settings import Settings
from tests.conftest import free_port
from tests.fleet.fake_nvml import FakeGpu, FakeNvml, FakeProcess, GiB
from tests.fleet.podman import SESSION, DockerEngine, run_simulator_container

MODEL = ("--models", "sim-model")
BOX = SecretBox("fleet-test-secret-key-0123456789abcdef")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'fleet.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def add_deployment(engine: Engine, name: str, port: int) -> int:
    with session(engine) as s:
        prov = Provider(name=f"p-{name}", kind="openai", api_base=f"http://127.0.0.1:{port}/v1")
        s.add(prov)
        s.flush()
        dep = Deployment(name=name, provider_id=prov.id or 0, model="sim-model")
        alias = ModelAlias(alias=f"a-{name}")
        s.add(dep)
        s.add(alias)
        s.flush()
        s.add(AliasDeployment(alias_id=alias.id or 0, deployment_id=dep.id or 0))
        s.commit()
        return dep.id or 0


def test_a_host_round_ties_containers_to_deployments_and_gpus(engine: Engine, docker_engine: DockerEngine) -> None:
    port_a, port_b = free_port(), free_port()
    dep_a, dep_b = add_deployment(engine, "dep-a", port_a), add_deployment(engine, "dep-b", port_b)
    alpha = run_simulator_container(docker_engine.client, f"host-alpha-{SESSION}", port_a, extra_args=MODEL)
    beta = run_simulator_container(docker_engine.client, f"host-beta-{SESSION}", port_b, extra_args=MODEL)
    alpha.reload()
    gpu = FakeGpu(
        "GPU-aaaa",
        memory_used=30 * GiB,
        util_gpu=55,
        compute=[FakeProcess(alpha.attrs["State"]["Pid"], 29 * GiB), FakeProcess(999_999, 1 * GiB)],
    )
    settings = Settings(_env_file=None, fleet_docker_url=docker_engine.url)  # type: ignore[call-arg]
    collector = HostCollector(engine, settings, "gpu-host", nvml=FakeNvml([gpu, FakeGpu("GPU-bbbb")]))
    try:
        targets = load_route_table(engine, BOX).targets()
        collector.round(targets)
        with session(engine) as s:
            rows = {r.name: r for r in s.exec(select(FleetContainer)).all()}
            gpus = {g.uuid: g for g in s.exec(select(FleetGpu)).all()}
            sources = {src.name: src for src in s.exec(select(FleetSource)).all()}
        mine = {n: r for n, r in rows.items() if n.endswith(SESSION)}
        assert mine[alpha.name].deployment_id == dep_a and mine[beta.name].deployment_id == dep_b  # by port
        assert mine[alpha.name].status == "running" and mine[alpha.name].model == "sim-model"
        assert mine[alpha.name].gpu_uuids == ["GPU-aaaa"] and mine[beta.name].gpu_uuids == []
        procs = gpus["GPU-aaaa"].processes
        held = next(p for p in procs if p["container_id"] == alpha.id)
        assert (held["deployment_id"], held["used_bytes"]) == (dep_a, 29 * GiB)
        assert next(p for p in procs if p["pid"] == 999_999)["container_id"] == ""  # not a fleet process
        assert gpus["GPU-aaaa"].utilization_pct == 55 and gpus["GPU-bbbb"].processes == []
        assert sources["docker@gpu-host"].ok and "model-serving container" in sources["docker@gpu-host"].message
        assert sources["nvml@gpu-host"].message == "NVML: 2 GPUs, driver 550.54.15, CUDA 12.4"
        trace = served_by(engine, dep_a, mine[alpha.name].seen_at)
        assert trace is not None and trace.container_name == alpha.name
        assert trace.gpus == ("GPU 0 · NVIDIA H100 80GB HBM3 (gpu-host)",)

        beta.stop(timeout=5)
        time.sleep(0.5)
        collector.round(targets)
        with session(engine) as s:
            stopped = s.get(FleetContainer, beta.id)
            events = s.exec(select(FleetContainerEvent).where(FleetContainerEvent.container_id == beta.id)).all()
        assert stopped is not None and stopped.status == "exited" and stopped.finished_at is not None
        actions = [e.action for e in sorted(events, key=lambda e: e.at)]
        assert actions == ["create", "start", "die"], actions
        assert all(e.deployment_id == dep_b for e in events)
    finally:
        collector.close()
        for c in (alpha, beta):
            c.remove(force=True)


def test_without_docker_or_driver_the_round_records_plain_statuses(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, fleet_docker_url=f"unix://{tmp_path}/absent.sock")  # type: ignore[call-arg]
    collector = HostCollector(engine, settings, "bare-host", nvml=None)
    try:
        collector.round({})
    finally:
        collector.close()
    with session(engine) as s:
        sources = {src.name: src for src in s.exec(select(FleetSource)).all()}
    assert not sources["docker@bare-host"].ok and "unreachable" in sources["docker@bare-host"].message
    nvml = sources["nvml@bare-host"]
    if nvml.ok:
        pytest.skip("this machine has an NVIDIA driver: the no-driver status cannot be shown here")
    assert nvml.message == "No NVIDIA driver on this host (NVML library not found)"
