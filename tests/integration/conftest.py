"""A real simulator and a real standalone gateway (`llm-console gateway`) on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import cli_env, free_port, run_cli, spawn, stop, wait_http

UPSTREAM_MODEL = "llama-3.1-8b-instruct"


@dataclass
class Stack:
    base_url: str
    key: str
    env: dict[str, str]
    data_dir: Path
    database_url: str


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two simulators: a fast one, and a slow one (25 tokens/s) for checking that streams are not buffered."""
    logs = tmp_path_factory.mktemp("sim")
    procs, urls = [], []
    try:
        for name, tps in (("fast", "2000"), ("slow", "25")):
            port = free_port()
            args = ["--port", str(port), "--ttft-ms", "5", "--tps", tps, "--seed", "7"]
            procs.append(spawn([sys.executable, "-m", "llm_console.simulator", *args], cli_env(logs), logs / name))
            wait_http(f"http://127.0.0.1:{port}/health", 30, procs[-1])
            urls.append(f"http://127.0.0.1:{port}/v1")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            stop(proc)


def start_gateway(data_dir: Path, simulators: tuple[str, str], **settings: str) -> tuple[Stack, object]:
    env = cli_env(data_dir, LLMC_ENV="dev", LLMC_KEY_CACHE_TTL_S="0", LLMC_LOG_FLUSH_INTERVAL_S="0.1", **settings)
    for args in (
        ["migrate"],
        ["add-deployment", "chat", simulators[0], "--model", UPSTREAM_MODEL, "--allow-private"],
        ["add-deployment", "slow", simulators[1], "--model", UPSTREAM_MODEL, "--allow-private"],
    ):
        done = run_cli(env, *args)
        assert done.returncode == 0, done.stderr
    minted = run_cli(env, "create-key", "--name", "integration")
    assert minted.returncode == 0, minted.stderr
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "llm_console.cli", "gateway", "--port", str(port)], env, data_dir / "gateway.log"
    )
    wait_http(f"http://127.0.0.1:{port}/gateway/health", 60, proc)
    db = env.get("LLMC_DATABASE_URL", f"sqlite:///{data_dir}/llm_console.db")
    return Stack(f"http://127.0.0.1:{port}/v1", minted.stdout.strip(), env, data_dir, db), proc


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(
    request: pytest.FixtureRequest, simulator: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp(f"gw-{request.param}")
    extra: dict[str, str] = {}
    if request.param == "postgres":
        extra["LLMC_DATABASE_URL"] = request.getfixturevalue("postgres_module_database")
    stack, proc = start_gateway(data_dir, simulator, **extra)
    try:
        yield stack
    finally:
        stop(proc)  # type: ignore[arg-type]
