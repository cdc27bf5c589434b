"""The systems under test and their upstreams, started one at a time on 127.0.0.1 and pinned to cores.

Core layout (two or more usable cores): the server under test on the first core; the upstreams, the load
generator and this script on the second, so "one core" for a server means one core.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import litellm_env
from benchmarks.load import Target, make_target
from benchmarks.servers import (
    ALIAS,
    REPO,
    UPSTREAM_MODEL,
    Server,
    add_deployment,
    bench_env,
    cli,
    create_key,
    free_port,
    spawn,
    wait_ready,
)

SLOW_ALIAS = "bench-slow"  # routed to the simulator with a token delay: the inter-chunk gap cell
CONSOLE_READY_S = 600.0  # the first `llm-console run` builds the frontend
LITELLM_READY_S = 180.0
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class Layout:
    server: set[int]
    client: set[int]
    usable: int  # cores this process could use before pinning itself to the client core

    @property
    def pinned(self) -> bool:
        return self.server != self.client

    def describe(self) -> str:
        if not self.pinned:
            return f"no pinning: only core(s) {sorted(self.server)} usable; server and client share them"
        return (
            f"core {min(self.server)}: server under test (bare / gateway / console / litellm); "
            f"core {min(self.client)}: upstream, slow simulator, load generator and this script"
        )


def core_layout() -> Layout:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return Layout(set(usable), set(usable), len(usable))
    return Layout({usable[0]}, {usable[1]}, len(usable))


@dataclass
class Sut:
    """One system under test: where to send requests, as which model, with which key, and whose CPU/RSS count."""

    name: str
    url: str
    model: str
    key: str | None
    server: Server
    slow_url: str | None = None
    slow_model: str | None = None

    def target(self) -> Target:
        return make_target(self.url, self.model, self.key)

    def slow_target(self) -> Target | None:
        if self.slow_url is None or self.slow_model is None:
            return None
        return make_target(self.slow_url, self.slow_model, self.key)


@dataclass
class Fleet:
    """Every process the benchmark starts; `close()` stops whatever is still running, newest first."""

    root: Path
    layout: Layout
    servers: dict[str, Server] = field(default_factory=dict)
    upstream: str = ""
    slow: str = ""
    key: str = ""
    limit_flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = bench_env(self.root / "data")
        self.env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + self.env.get("PATH", "")

    def _start(self, name: str, argv: list[str], health: str, *, cores: set[int] | None, cwd: Path | None = None,
               env: dict[str, str] | None = None, timeout_s: float = 30.0) -> Server:  # fmt: skip
        server = spawn(name, argv, cwd=cwd or self.root, env=env or self.env, log_dir=self.root, cores=cores)
        self.servers[name] = server
        wait_ready(server, health, timeout_s)
        return server

    def start_upstreams(self, tps: float) -> None:
        """The canned fast upstream, and the project's simulator with a token delay for the gap cell."""
        port, slow_port = free_port(), free_port()
        self.upstream, self.slow = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{slow_port}"
        up = [sys.executable, str(REPO / "benchmarks" / "upstream.py"), "--port", str(port)]
        self._start("upstream", up, f"{self.upstream}/health", cores=self.layout.client)
        sim = [sys.executable, "-m", "llm_console.simulator", "--port", str(slow_port), "--fast", "--tps", str(tps)]
        sim += ["--models", UPSTREAM_MODEL, "--seed", "1"]
        self._start("slow-simulator", sim, f"{self.slow}/health", cores=self.layout.client)

    def direct(self) -> Sut:
        return Sut(
            "direct", f"{self.upstream}/v1/chat/completions", UPSTREAM_MODEL, None, self.servers["upstream"],
            f"{self.slow}/v1/chat/completions", UPSTREAM_MODEL,
        )  # fmt: skip

    def setup_data(self) -> None:
        """Migrate the temp database, route both aliases, mint the key: through the public CLI only."""
        cli(self.root, self.env, "migrate")
        add_deployment(self.root, self.env, ALIAS, f"{self.upstream}/v1", UPSTREAM_MODEL)
        add_deployment(self.root, self.env, SLOW_ALIAS, f"{self.slow}/v1", UPSTREAM_MODEL)
        self.key, self.limit_flags = create_key(self.root, self.env)

    def start_bare(self) -> Sut:
        port = free_port()
        argv = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--http", "1",
            "--workers", "1", "--no-ws", "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port),
            "--factory", "benchmarks.bare_proxy:create_app",
        ]  # fmt: skip
        env = {**self.env, "BARE_PROXY_UPSTREAM": self.upstream, "PYTHONPATH": str(REPO)}
        server = self._start(
            "bare", argv, f"http://127.0.0.1:{port}/health", cores=self.layout.server, cwd=REPO, env=env
        )
        return Sut("bare", f"http://127.0.0.1:{port}/v1/chat/completions", UPSTREAM_MODEL, None, server)

    def start_gateway(self) -> Sut:
        port = free_port()
        argv = [sys.executable, "-m", "llm_console.cli", "gateway", "--host", "127.0.0.1", "--port", str(port)]
        server = self._start(
            "gateway", [*argv, "--workers", "1"], f"http://127.0.0.1:{port}/gateway/health", cores=self.layout.server
        )
        base = f"http://127.0.0.1:{port}/v1/chat/completions"
        return Sut("gateway", base, ALIAS, self.key, server, base, SLOW_ALIAS)

    def start_console(self) -> Sut:
        """`llm-console run` builds on every core, then the whole tree is pinned to the server core."""
        port = free_port()
        argv = [sys.executable, "-m", "llm_console.cli", "run", "--port", str(port)]
        health = f"http://127.0.0.1:{port}/gateway/health"
        server = self._start("console", argv, health, cores=None, timeout_s=CONSOLE_READY_S)
        server.pin(self.layout.server)
        base = f"http://127.0.0.1:{port}/v1/chat/completions"
        return Sut("console", base, ALIAS, self.key, server, base, SLOW_ALIAS)

    def start_litellm(self, env: litellm_env.LiteLLMEnv) -> Sut:
        port = free_port()
        models = {ALIAS: (f"{self.upstream}/v1", UPSTREAM_MODEL), SLOW_ALIAS: (f"{self.slow}/v1", UPSTREAM_MODEL)}
        config = litellm_env.write_config(self.root / "litellm.yaml", models)
        server = self._start(
            "litellm", litellm_env.command(env, config, port), f"http://127.0.0.1:{port}/health/liveliness",
            cores=self.layout.server, env=litellm_env.server_env(dict(os.environ)), timeout_s=LITELLM_READY_S,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/v1/chat/completions"
        return Sut("litellm", base, ALIAS, litellm_env.MASTER_KEY, server, base, SLOW_ALIAS)

    def stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop(STOP_GRACE_S)

    def close(self) -> None:
        for name in reversed(list(self.servers)):
            with contextlib.suppress(Exception):
                self.stop(name)
