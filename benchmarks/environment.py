"""What the run ran on, printed above the table: machine, core layout, load generator, server stacks."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from typing import Any

from benchmarks.targets import Layout


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def wrk_version(wrk: str | None) -> str:
    if wrk is None:
        return ""
    try:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" [")[0] if first else ""


def describe_environment(
    layout: Layout, wrk: str | None, load_note: str, litellm: str | None, load_before: float
) -> dict[str, Any]:
    cpus = os.cpu_count()
    load = os.getloadavg()[0]
    return {
        "machine": f"{cpus} CPU(s), {layout.usable} usable, load average {load_before:.2f} before, {load:.2f} after; "
        f"Python {sys.version.split()[0]}",
        "cores": layout.describe(),
        "load": f"{load_note}; {wrk_version(wrk)}".rstrip("; ")
        + (". Throughput and latency from wrk -t1 (c=1 too)" if wrk else ". Throughput and latency from aiohttp")
        + "; TTFB and gaps from the aiohttp client",
        "upstream": "benchmarks/upstream.py (canned responses, raw asyncio Protocol on uvloop, one process); "
        "gap cell: `python -m llm_console.simulator --fast --tps N`",
        "servers": f"granian {version('granian')}, uvloop {version('uvloop')}, aiohttp {version('aiohttp')}, "
        f"starlette {version('starlette')}; bare = benchmarks/bare_proxy.py on granian (1 worker, uvloop, HTTP/1); "
        f"LiteLLM {litellm or 'not run'} (1 worker, no database)",
    }
