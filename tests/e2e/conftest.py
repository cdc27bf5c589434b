"""One real console (`llm-console run`, prod build) per session, in front of the simulator; Debian Chromium.

Before the console starts, its database gets eight days of seeded history (so the dashboards have figures
to change) and two aliases of its own: `e2e-model` on the simulator and `e2e-down` on a closed port, whose
calls fail (connection refused, then an open circuit). It also trusts a real OpenID provider for single
sign-on (pytest-iam's Canaille, started first); local password sign-in stays on for the other tests.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.conftest import cli_env, free_port, missing_service, run_cli, spawn, stop, wait_http
from tests.fleet.podman import DockerEngine, docker_engine

CHROMIUM = Path("/usr/bin/chromium")
MODEL = "e2e-model"
DOWN_MODEL = "e2e-down"
SEEDED_REQUESTS = 5000
SEEDED_DAYS = 8
ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "e2e-admin-password"
OIDC_CLIENT_ID = "llm-console-e2e"
OIDC_BUTTON = "Sign in with the test IdP"
OIDC_ROLE_MAP = "llm-admins=admin,llm-operators=operator,llm-members=member"
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
    idp: Any = None  # the pytest-iam server the console trusts for single sign-on
    docker: DockerEngine | None = None  # the podman Docker API its fleet collector watches
    docker_missing: str = ""  # why there is none (the fleet test skips, or fails under CI, with it)


def oidc_client_env(iam_server: Any, port: int) -> dict[str, str]:
    """Register the console at the IdP (redirect URI on localhost:`port`) and return its `LLMC_OIDC_*` settings."""
    secret = secrets.token_urlsafe(24)
    origin = f"http://localhost:{port}"
    client = iam_server.models.Client(
        client_id=OIDC_CLIENT_ID,
        client_secret=secret,
        client_name="LLM Console (e2e)",
        client_uri=origin,  # a localhost client is trusted by Canaille: no consent page
        redirect_uris=[f"{origin}/auth/oidc/callback"],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        scope=["openid", "email", "profile", "groups"],
    )
    iam_server.backend.save(client)
    iam_server.backend.update(client, audience=[client])
    iam_server.backend.save(client)
    return {
        "LLMC_OIDC_ISSUER": str(iam_server.url).rstrip("/"),
        "LLMC_OIDC_CLIENT_ID": OIDC_CLIENT_ID,
        "LLMC_OIDC_CLIENT_SECRET": secret,
        "LLMC_OIDC_SCOPES": "openid email profile groups",
        "LLMC_OIDC_ROLE_MAP": OIDC_ROLE_MAP,
        "LLMC_OIDC_DISPLAY_NAME": OIDC_BUTTON,
        "LLMC_OIDC_REDIRECT_URL": f"{origin}/auth/oidc/callback",
    }


@pytest.fixture(scope="session")
def fleet_docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine | str]:
    """podman's Docker Engine API for the console's fleet collector, or why it could not start: only the fleet
    test needs it, so its absence must not skip (or, under CI, fail) every other browser test."""
    with contextlib.ExitStack() as stack:
        try:
            found: DockerEngine | str = stack.enter_context(docker_engine(tmp_path_factory.mktemp("podman")))
        except (pytest.skip.Exception, pytest.fail.Exception) as exc:
            found = str(exc) or "podman's Docker API did not start"
        yield found


@pytest.fixture(scope="session")
def console(
    tmp_path_factory: pytest.TempPathFactory, iam_server: Any, fleet_docker: DockerEngine | str
) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console")
    sim_port, port, closed_port = free_port(), free_port(), free_port()
    docker = fleet_docker if isinstance(fleet_docker, DockerEngine) else None
    env = cli_env(
        data_dir,
        LLMC_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LLMC_LOG_FLUSH_INTERVAL_S="0.2",
        LLMC_FLEET_INTERVAL_S="1",
        LLMC_FLEET_ENGINE_INTERVAL_S="1",
        LLMC_FLEET_DOCKER_URL=docker.url if docker else "unix:///nonexistent/llmc-e2e-docker.sock",
        **oidc_client_env(iam_server, port),
    )
    sim = spawn(
        [sys.executable, "-m", "llm_console.simulator", "--port", str(sim_port), "--ttft-ms", "20", "--tps", "500"],
        env,
        data_dir / "simulator.log",
    )
    proc = None
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/health", 30, sim)
        sim_url, down_url = f"http://127.0.0.1:{sim_port}/v1", f"http://127.0.0.1:{closed_port}/v1"
        for args in (
            ["migrate"],
            ["seed", "--count", str(SEEDED_REQUESTS), "--days", str(SEEDED_DAYS)],
            ["add-deployment", MODEL, sim_url, "--model", "llama-3.1-8b-instruct", "--allow-private"],
            ["add-deployment", DOWN_MODEL, down_url, "--allow-private"],
            ["route", DOWN_MODEL, "--retries", "1", "--backoff-ms", "10", "--connect-timeout", "1"],
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
        missing = "" if docker else str(fleet_docker)
        yield Console(
            f"http://localhost:{port}", minted.stdout.strip(), env, data_dir, log, iam_server, docker, missing
        )
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


def sign_in(context: BrowserContext, console: Console) -> None:
    """Sign in through the login form; the httpOnly session cookie then serves every page of `context`."""
    page = context.new_page()
    page.goto(f"{console.url}/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^[^?]*://[^/]+/?$"), timeout=30_000)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=30_000)
    page.close()


@pytest.fixture(scope="module")
def admin(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """One signed-in browser context per module (desktop size, so the sidebar shows); tests open pages in it."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    sign_in(context, console)
    yield context
    context.close()


def choose(page: Page, trigger: str, option: str) -> None:
    """Pick `option` in the Radix select whose trigger matches `trigger`, by clicking, as a person would."""
    page.locator(trigger).click()
    page.get_by_role("option", name=option, exact=True).click()


def stat_number(page: Page, label: str) -> float:
    """A stat card's figure as a number ("4,375", "12.3k", "1.2M", "$3.40", "97.5%")."""
    text = page.locator(f'[data-stat="{label}"] .stat-value').inner_text().strip()
    scale = {"k": 1e3, "M": 1e6}.get(text[-1:], 1.0)
    return float(text.rstrip("kM%").lstrip("$").replace(",", "")) * scale
