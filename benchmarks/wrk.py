"""Throughput and latency cells with wrk (C, far faster than the servers under test), or aiohttp when it is missing.

wrk gets a generated Lua script: the POST body and headers, and a `done` hook that prints one JSON line
with the counts and latency percentiles, so nothing is scraped from its human-readable report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

WRK_TIMEOUT = "30s"  # a slow peer at c=64 must show as latency, not as timeouts
MARKER = "WRKJSON "
LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f,"mean":%.2f}\\n',
    "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
""".replace("MARKER", MARKER)


@dataclass
class LoadResult:
    """One timed run against one target: successful requests, error kinds and client-side latency in ms."""

    ok: int
    elapsed_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)
    tool: str = "wrk"

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())


def find_or_install_wrk(allow_install: bool) -> tuple[str | None, str]:
    """Path to wrk and a note for the output; installs the Debian package when missing and we may."""
    path = shutil.which("wrk")
    if path:
        return path, "wrk"
    if not allow_install:
        return None, "wrk not found and --no-install given: Python aiohttp load used (slower client)"
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None, "wrk not found and apt-get unavailable (or not root): Python aiohttp load used (slower client)"
    try:
        done = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`apt-get install wrk` failed ({exc}): Python aiohttp load used (slower client)"
    path = shutil.which("wrk")
    if done.returncode != 0 or not path:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"`apt-get install wrk` failed ({reason}): Python aiohttp load used (slower client)"
    return path, "wrk (installed now with apt-get)"


def lua_literal(text: str) -> str:
    """A Lua long-bracket string; the level is chosen so the text cannot close it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def write_script(path: Path, body: bytes, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_literal(body.decode())}"]
    lines += [f"wrk.headers[ {lua_literal(k)} ] = {lua_literal(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


def write_mixed_script(path: Path, bodies: list[bytes], headers: dict[str, str]) -> Path:
    """Requests that cycle through `bodies` (the soak: streaming and not, interleaved)."""
    hdr = ", ".join(f"[ {lua_literal(k)} ] = {lua_literal(v)}" for k, v in headers.items())
    reqs = ", ".join(f'wrk.format("POST", nil, {{{hdr}}}, {lua_literal(b.decode())})' for b in bodies)
    script = f"""
local reqs, i = nil, 0
init = function(args) reqs = {{{reqs}}} end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
"""
    path.write_text(script + LUA_DONE)
    return path


def wrk_command(wrk: str, url: str, script: Path, concurrency: int, seconds: int) -> list[str]:
    return [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, seconds)}s", "--timeout", WRK_TIMEOUT, "-s", str(script), url]


def start_wrk(cmd: list[str], cores: set[int] | None) -> subprocess.Popen[str]:
    """wrk in the background (the soak samples RSS while it runs), pinned to the client core."""

    def pin() -> None:
        if cores:
            os.sched_setaffinity(0, cores)

    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pin if cores else None
    )


def finish_wrk(proc: subprocess.Popen[str], timeout_s: float) -> LoadResult:
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("wrk did not finish in time") from None
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {stderr.strip()[-500:]}")
    return parse_output(stdout)


def run_wrk(wrk: str, url: str, script: Path, concurrency: int, seconds: int, cores: set[int] | None) -> LoadResult:
    proc = start_wrk(wrk_command(wrk, url, script, concurrency, seconds), cores)
    try:
        return finish_wrk(proc, seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def parse_output(stdout: str) -> LoadResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout[-2000:]}")
    d = json.loads(line[len(MARKER) :])
    errors = {k: int(d[k]) for k in ("connect", "read", "write", "timeout") if d[k]}
    if d["status"]:
        errors["non-2xx"] = int(d["status"])
    ok = int(d["requests"]) - int(d["status"])
    has = ok > 0

    def ms(key: str) -> float | None:
        return float(d[key]) / 1000 if has else None

    return LoadResult(ok, d["duration_us"] / 1e6, ms("p50"), ms("p90"), ms("p99"), ms("max"), ms("mean"), errors)
