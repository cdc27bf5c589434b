"""Processes under test: spawn on 127.0.0.1 in their own process group, pin to cores, read CPU and RSS, stop.

`Stack` (temp data dir + simulator + standalone gateway) is what gateway_overhead.py runs; gateway_compare.py
spawns its own set through `spawn` and `data_dir_setup`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ALIAS = "bench-model"
UPSTREAM_MODEL = "llama-3.1-8b-instruct"
READY_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[1]
HUGE_LIMIT = "1000000000"  # a limit that is on (checked on every request) but never reached


class BenchError(Exception):
    """Setup failed (a server did not start, a CLI step failed); printed as one message, exit 2."""


@dataclass
class Server:
    """One started server process (and its children), with its log file and psutil handle."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    ps: psutil.Process

    def tree(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [self.ps, *self.ps.children(recursive=True)]
        return []

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process and its children (granian and uvicorn fork workers)."""
        total = 0.0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss_bytes(self) -> int:
        """Resident memory of the whole process tree."""
        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def worker_rss_bytes(self) -> int:
        """RSS of the process that serves requests: the largest leaf of the tree (the worker under a supervisor)."""
        sizes = []
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                if not p.children():
                    sizes.append(p.memory_info().rss)
        return max(sizes, default=0)

    def pin(self, cores: set[int]) -> None:
        """Pin every thread of every process in the tree (sched_setaffinity on a pid moves only its main thread)."""
        for p in self.tree():
            with contextlib.suppress(psutil.Error, OSError):
                for t in p.threads():
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(t.id, cores)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace_s: float) -> None:
        """SIGINT to the leader (a graceful shutdown drains the gateway's log queue), then SIGKILL to stragglers.

        Descendants are listed first, by pid, so a child that left the process group is ended too."""
        pids = [p.pid for p in self.tree()[1:]]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_dir: Path,
    cores: set[int] | None = None,
) -> Server:
    """Start `argv` in its own session (a Ctrl-C in the terminal reaches only the benchmark, which then stops
    the servers in order), pinned to `cores` from its first instruction when given."""
    log = log_dir / f"{name}.log"

    def pin() -> None:
        if cores:
            os.sched_setaffinity(0, cores)

    with log.open("wb") as fh:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=pin if cores else None,
        )  # fmt: skip
    return Server(name, proc, log, psutil.Process(proc.pid))


def wait_ready(server: Server, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200; raise BenchError with the log tail when the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited with status {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{server.name} not ready after {timeout_s:.0f}s at {url}:\n{server.log_tail()}")


def cli(root: Path, env: dict[str, str], *args: str) -> str:
    """Run `llm-console ARGS` (the public CLI, never its internals) in `root`; stdout, or BenchError."""
    cmd = [sys.executable, "-m", "llm_console.cli", *args]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise BenchError(f"`llm-console {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def offered_flags(root: Path, env: dict[str, str], command: str, pattern: str) -> list[str]:
    """Flags of `llm-console COMMAND --help` matching `pattern`, so the benchmark follows the CLI as it grows."""
    help_text = cli(root, env, command, "--help")
    return sorted(set(re.findall(rf"(--[a-z0-9-]*(?:{pattern})[a-z0-9-]*)", help_text)))


def add_deployment(root: Path, env: dict[str, str], alias: str, base_url: str, model: str) -> None:
    """Loopback upstreams need `--allow-private` once the SSRF guard exists; pass it only when offered."""
    extra = ["--allow-private"] if offered_flags(root, env, "add-deployment", "allow-private") else []
    cli(root, env, "add-deployment", alias, base_url, "--model", model, *extra)


def create_key(root: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """Mint the benchmark key with every limit the CLI offers set on but out of reach; returns (key, flags)."""
    limits = offered_flags(root, env, "create-key", "rpm|tpm|rps|budget|parallel|concurren|rate")
    args = [arg for flag in limits for arg in (flag, HUGE_LIMIT)]
    return cli(root, env, "create-key", "--name", "bench", *args).splitlines()[0].strip(), limits


def bench_env(data_dir: Path) -> dict[str, str]:
    """Only our settings: no LLMC_* from the caller's shell; servers run in a temp cwd so no stray .env is read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_")}
    env.update(LLMC_ENV="dev", LLMC_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


@dataclass
class Stack:
    """Temp data dir, simulator and gateway subprocesses, and the virtual key; `close()` ends both servers."""

    root: Path
    env: dict[str, str]
    servers: dict[str, Server] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    key: str = ""

    def start_server(self, name: str, args: list[str], health_url: str) -> Server:
        server = self.servers[name] = spawn(
            name, [sys.executable, *args], cwd=self.root, env=self.env, log_dir=self.root
        )
        wait_ready(server, health_url)
        return server

    def start(self) -> None:
        sim_port, gw_port = free_port(), free_port()
        sim = f"http://127.0.0.1:{sim_port}"
        gw = f"http://127.0.0.1:{gw_port}"
        cli(self.root, self.env, "migrate")
        add_deployment(self.root, self.env, ALIAS, f"{sim}/v1", UPSTREAM_MODEL)
        self.key, _ = create_key(self.root, self.env)
        sim_args = ["-m", "llm_console.simulator", "--host", "127.0.0.1", "--port", str(sim_port), "--fast"]
        self.start_server("simulator", [*sim_args, "--models", UPSTREAM_MODEL, "--seed", "1"], f"{sim}/health")
        gw_args = ["-m", "llm_console.cli", "gateway", "--host", "127.0.0.1", "--port", str(gw_port), "--workers", "1"]
        self.start_server("gateway", gw_args, f"{gw}/gateway/health")
        self.urls = {"direct": f"{sim}/v1/chat/completions", "gateway": f"{gw}/v1/chat/completions"}

    def close(self) -> None:
        for name in ("gateway", "simulator"):
            if name in self.servers:
                self.servers[name].stop(grace_s=15.0)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="llmc-bench-") as tmp:
        root = Path(tmp)
        stack = Stack(root, bench_env(root / "data"))
        try:
            stack.start()
            yield stack
        finally:
            stack.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
