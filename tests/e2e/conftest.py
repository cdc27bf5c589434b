"""One real console (`llm-console run`, prod build) per session, in front of the simulator; Debian Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import cli_env, free_port, missing_service, run_cli, spawn, stop, wait_http

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "e2e-admin-password"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Console:
    url: str
    key: str
    env: dict[str, str]
    data_dir: Path
    log: Path


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console")
    sim_port, port = free_port(), free_port()
    env = cli_env(data_dir, LLMC_ADMIN_PASSWORD=ADMIN_PASSWORD, LLMC_LOG_FLUSH_INTERVAL_S="0.2")
    sim = spawn(
        [sys.executable, "-m", "llm_console.simulator", "--port", str(sim_port), "--ttft-ms", "20", "--tps", "500"],
        env,
        data_dir / "simulator.log",
    )
    proc = None
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/health", 30, sim)
        for args in (
            ["migrate"],
            [
                "add-deployment",
                "e2e-model",
                f"http://127.0.0.1:{sim_port}/v1",
                "--model",
                "llama-3.1-8b-instruct",
                "--allow-private",
            ],
        ):
            done = run_cli(env, *args)
            assert done.returncode == 0, done.stderr
        minted = run_cli(env, "create-key", "--name", "e2e")
        assert minted.returncode == 0, minted.stderr
        log = data_dir / "console.log"
        proc = spawn([sys.executable, "-m", "llm_console.cli", "run", "--port", str(port)], env, log)
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", 600, proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"console did not start: {exc}\n{log.read_text()[-4000:]}") from exc
        yield Console(f"http://localhost:{port}", minted.stdout.strip(), env, data_dir, log)
    finally:
        if proc is not None:
            stop(proc, timeout_s=30)
        stop(sim)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: sync Playwright keeps an event loop running, which later asyncio tests must not see."""
    if not CHROMIUM.exists():
        missing_service(f"Debian Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
