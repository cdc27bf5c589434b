"""The processes under test: a temp data dir, the simulator and the standalone gateway, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ALIAS = "bench-model"
UPSTREAM_MODEL = "llama-3.1-8b-instruct"
READY_TIMEOUT_S = 30.0


class BenchError(Exception):
    """Setup failed (a server did not start, a CLI step failed); printed as one message, exit 2."""


@dataclass
class Server:
    """One started server process, with its log file and a psutil handle for CPU and memory readings."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    ps: psutil.Process

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process and its children (uvicorn may fork workers)."""
        total = 0.0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace_s: float) -> None:
        """SIGINT (uvicorn's graceful shutdown, which drains the gateway's log queue), then SIGKILL."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    """Temp data dir, simulator and gateway subprocesses, and the virtual key; `close()` ends both servers."""

    root: Path
    env: dict[str, str]
    servers: dict[str, Server] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    key: str = ""

    def cli(self, *args: str) -> str:
        cmd = [sys.executable, "-m", "llm_console.cli", *args]
        done = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"`llm-console {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def spawn(self, name: str, args: list[str], health_url: str) -> Server:
        log = self.root / f"{name}.log"
        with log.open("wb") as fh:
            # own session: a Ctrl-C in the terminal reaches only us, and we stop the servers in order
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=self.root, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        server = self.servers[name] = Server(name, proc, log, psutil.Process(proc.pid))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with status {proc.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(health_url, timeout=1) as resp:
                if resp.status == 200:
                    return server
            time.sleep(0.1)
        raise BenchError(f"{name} not ready after {READY_TIMEOUT_S:.0f}s at {health_url}:\n{server.log_tail()}")

    def start(self) -> None:
        sim_port, gw_port = free_port(), free_port()
        sim = f"http://127.0.0.1:{sim_port}"
        gw = f"http://127.0.0.1:{gw_port}"
        self.cli("migrate")
        self.cli("add-deployment", ALIAS, f"{sim}/v1", "--model", UPSTREAM_MODEL)
        self.key = self.cli("create-key", "--name", "bench").splitlines()[0].strip()
        sim_args = ["-m", "llm_console.simulator", "--host", "127.0.0.1", "--port", str(sim_port), "--fast"]
        self.spawn("simulator", [*sim_args, "--models", UPSTREAM_MODEL, "--seed", "1"], f"{sim}/health")
        gw_args = ["-m", "llm_console.cli", "gateway", "--host", "127.0.0.1", "--port", str(gw_port), "--workers", "1"]
        self.spawn("gateway", gw_args, f"{gw}/gateway/health")
        self.urls = {"direct": f"{sim}/v1/chat/completions", "gateway": f"{gw}/v1/chat/completions"}

    def close(self) -> None:
        for name in ("gateway", "simulator"):
            if name in self.servers:
                self.servers[name].stop(grace_s=15.0)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="llmc-bench-") as tmp:
        root = Path(tmp)
        # only our settings: no LLMC_* from the caller, and cwd=root so no stray .env is read
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_")}
        env.update(LLMC_ENV="dev", LLMC_DATA_DIR=str(root / "data"), PYTHONUNBUFFERED="1")
        stack = Stack(root, env)
        try:
            stack.start()
            yield stack
        finally:
            stack.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
