"""Real processes for the SDK, fakeai and schemathesis tests: simulators, fakeai and `llm-console gateway`.

Plain helpers (not fixtures) so each test module keeps its own module-scoped fixtures and picks the routes it
needs; every process starts in its own session on a free 127.0.0.1 port and is stopped by process group.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlmodel import col, select

from llm_console.db.engine import make_engine
from llm_console.db.models import RequestLog
from tests.conftest import ROOT, cli_env, free_port, spawn, stop, wait_http

SIM_CHAT_MODEL = "llama-3.1-8b-instruct"
SIM_EMBED_MODEL = "bge-small-en"
SIM_RERANK_MODEL = "bge-reranker-base"


@dataclass(frozen=True)
class Deployment:
    """One `llm-console add-deployment` call: `alias` routed to `model` at `base_url`."""

    alias: str
    base_url: str
    model: str
    kind: str = "openai"
    api_version: str | None = None

    def cli_args(self) -> list[str]:
        args = ["add-deployment", self.alias, self.base_url, "--model", self.model, "--kind", self.kind]
        if self.api_version:
            args += ["--api-version", self.api_version]
        return [*args, "--allow-private"]


@dataclass
class Gateway:
    """A running standalone gateway: `url` is its root (no `/v1`); `key` may use every alias, `scoped_key` some."""

    url: str
    key: str
    scoped_key: str
    env: dict[str, str]
    data_dir: Path
    database_url: str
    proc: subprocess.Popen[bytes] = field(repr=False)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def wait_row(self, request_id: str, timeout_s: float = 10) -> RequestLog:
        """The log row of one request, once the batch writer has flushed it."""
        return self.wait_rows([request_id], timeout_s)[request_id]

    def wait_rows(self, request_ids: Sequence[str], timeout_s: float = 10) -> dict[str, RequestLog]:
        engine = make_engine(self.database_url)
        wanted = set(request_ids)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                with engine.connect() as conn:
                    found = conn.execute(select(RequestLog).where(col(RequestLog.id).in_(wanted))).all()
                rows = {r.id: RequestLog.model_validate(r._mapping) for r in found}
                if len(rows) == len(wanted) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            engine.dispose()
        missing = wanted - rows.keys()
        assert not missing, f"no log rows for {sorted(missing)} after {timeout_s}s"
        return rows

    def metrics(self) -> str:
        resp = httpx.get(self.url + "/metrics", timeout=10)
        resp.raise_for_status()
        return resp.text


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels` (0 when none matches)."""
    total = 0.0
    for line in exposition.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match is None:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


@contextlib.contextmanager
def simulator(log_dir: Path, *args: str) -> Iterator[str]:
    """The project's simulator in --fast mode; yields its root URL (no `/v1`)."""
    port = free_port()
    cmd = [sys.executable, "-m", "llm_console.simulator", "--port", str(port), "--fast", "--seed", "11", *args]
    proc = spawn(cmd, cli_env(log_dir), log_dir / f"simulator-{port}.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextlib.contextmanager
def fakeai(log_dir: Path) -> Iterator[str]:
    """The `fakeai` server (an OpenAI-compatible fake nobody here wrote), auth off, no artificial delay.

    Run from an empty folder so it auto-loads no `fakeai.yaml`; its root URL is yielded. A start failure is
    raised, not skipped: fakeai is a pinned test dependency.
    """
    exe = shutil.which("fakeai", path=str(Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("the `fakeai` console script is not installed next to this Python")
    port = free_port()
    workdir = log_dir / "fakeai-cwd"
    workdir.mkdir(exist_ok=True)
    cmd = [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--response-delay", "0", "--no-random-delay"]
    cmd += ["--ttft", "1:0", "--itl", "1:0"]
    env = {k: v for k, v in cli_env(log_dir).items() if not k.startswith("FAKEAI_")}
    log_path = log_dir / f"fakeai-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 60, proc)
        except (RuntimeError, TimeoutError) as exc:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"fakeai did not start: {exc}\n--- fakeai output ---\n{tail}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def run_cli_batch(env: dict[str, str], commands: Sequence[Sequence[str]]) -> list[str]:
    """Run several `llm-console` commands through `llm_console.cli.main` in one child process, in order.

    The same entry point as the console script, minus one interpreter start per command (each costs a second or
    two here); returns each command's stdout and fails on the first non-zero exit with its stderr.
    """
    script = (
        "import contextlib, io, json, sys\n"
        "from llm_console.cli import main\n"
        "outs = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        code = main(argv)\n"
        "    if code:\n"
        "        sys.exit(f'llm-console {argv[0]} exited with {code}')\n"
        "    outs.append(buf.getvalue())\n"
        "print(json.dumps(outs))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps([list(c) for c in commands])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    outs: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return outs


@contextlib.contextmanager
def gateway(
    data_dir: Path, deployments: Sequence[Deployment], *, scoped: Sequence[str] = (), **settings: str
) -> Iterator[Gateway]:
    """Migrate a fresh SQLite database, add `deployments`, mint keys, and serve `llm-console gateway`.

    `key` may use every alias; with `scoped`, `scoped_key` may use only those aliases.
    """
    env = cli_env(data_dir, LLMC_ENV="dev", LLMC_KEY_CACHE_TTL_S="0", LLMC_LOG_FLUSH_INTERVAL_S="0.1", **settings)
    commands = [["migrate"], *(d.cli_args() for d in deployments), ["create-key", "--name", "integration"]]
    if scoped:
        commands.append(["create-key", "--name", "scoped", "--models", ",".join(scoped)])
    outs = run_cli_batch(env, commands)
    key = outs[len(deployments) + 1].strip()
    scoped_key = outs[-1].strip() if scoped else ""
    port = free_port()
    cmd = [sys.executable, "-m", "llm_console.cli", "gateway", "--port", str(port)]
    proc = spawn(cmd, env, data_dir / "gateway.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/gateway/health", 60, proc)
        db = env.get("LLMC_DATABASE_URL", f"sqlite:///{data_dir}/llm_console.db")
        yield Gateway(f"http://127.0.0.1:{port}", key, scoped_key, env, data_dir, db, proc)
    finally:
        stop(proc)
