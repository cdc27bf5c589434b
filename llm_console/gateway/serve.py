"""Serve the standalone gateway with granian (Rust HTTP server, uvloop), one or many worker processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from llm_console.settings import Settings

TARGET = "llm_console.gateway.asgi:create_app"


def serve_gateway(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Blocks until SIGINT/SIGTERM; each worker drains its log queue on the way out (ASGI lifespan).

    With several workers, Prometheus metrics are aggregated across them through prometheus_client's
    multiprocess mode: a fresh directory under the data folder (or `PROMETHEUS_MULTIPROC_DIR` if set).
    """
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        prom = Path(tempfile.mkdtemp(prefix="prometheus-", dir=settings.data_dir))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    else:
        prom = None
    try:
        Server(
            TARGET,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            http=HTTPModes.http1,
            websockets=False,
            factory=True,
            log_level=LogLevels.warning,
            log_access=False,
            respawn_failed_workers=True,
            backlog=2048,
        ).serve()
    finally:
        if prom is not None:
            shutil.rmtree(prom, ignore_errors=True)
