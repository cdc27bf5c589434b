"""Fleet fixtures: one podman Docker Engine API per test session (see tests/fleet/podman.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fleet.podman import DockerEngine
from tests.fleet.podman import docker_engine as start_docker_engine


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with start_docker_engine(tmp_path_factory.mktemp("podman")) as engine:
        yield engine
