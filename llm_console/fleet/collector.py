"""The fleet's background loops, run from the app's lifespan under leader locks.

- `engines_loop` (lock `fleet-engines`, one process in the whole installation): scrapes every deployment's
  `/metrics` each `LLMC_FLEET_ENGINE_INTERVAL_S`, stores the readings, feeds this process's router at once
  (other processes read them from the database, see `GatewayRuntime`), and marks "model ready" on the
  containers of a deployment whose engine starts answering.
  It also folds old samples into 5-minute averages and prunes them, every host's at once.
- `host_loop` (lock `fleet-host:<hostname>`, one process per host: GPUs and a local Docker socket belong
  to a machine): containers and their events through the Docker Engine API, GPUs through NVML, each
  `LLMC_FLEET_INTERVAL_S`.

Each source may be absent: the loop records a plain status for the page and tries again next round.
Everything blocking (Docker SDK, NVML, the database) runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from llm_console.fleet import store
from llm_console.fleet.engines import EngineScraper
from llm_console.fleet.types import ContainerInfo, SourceStatus
from llm_console.gateway.balancer import EngineSample
from llm_console.gateway.routing import Target
from llm_console.settings import Settings

log = logging.getLogger("llm_console.fleet")

DOWNSAMPLE_EVERY_S = 600.0
FIRST_EVENTS_LOOKBACK = timedelta(hours=1)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "host.docker.internal"})


def host_name() -> str:
    return socket.gethostname()


def _now() -> datetime:
    return datetime.now(UTC)


def deployment_maps(targets: Mapping[int, Target], host: str) -> tuple[dict[str, int], dict[int, int]]:
    """Deployment name -> id (for the `llm-console.deployment` label) and local port -> id (to match a
    container listening on that port of this host)."""
    names = {t.deployment: dep_id for dep_id, t in targets.items()}
    ports: dict[int, int] = {}
    local = LOCAL_HOSTS | {host.lower()}
    for dep_id, t in sorted(targets.items()):
        parts = urlsplit(t.api_base)
        if (parts.hostname or "").lower() in local:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            ports.setdefault(port, dep_id)
    return names, ports


def engines_status(readings_ok: int, total: int, errors: list[str]) -> SourceStatus:
    if total == 0:
        return SourceStatus("engines", "", True, "No OpenAI-compatible deployment to scrape")
    message = f"{readings_ok} of {total} deployments report engine metrics"
    if errors:
        message += f"; last problem: {errors[0]}"
    return SourceStatus("engines", "", readings_ok > 0 or not errors, message)


async def engines_loop(engine: Engine, settings: Settings, runtime: Any) -> None:
    """Scrape, store, route. `runtime` is the process's GatewayRuntime (its routes, upstream and balancer)."""
    scraper = EngineScraper(runtime.upstream)
    last_downsample = 0.0
    while True:
        started = time.monotonic()
        try:
            if started - last_downsample >= DOWNSAMPLE_EVERY_S:  # every host's samples: one process does it
                last_downsample = started
                await asyncio.to_thread(store.downsample, engine, settings)
            targets = runtime.routes.targets()
            readings = await scraper.scrape(targets.values())
            at = _now()
            mono = time.monotonic()
            for r in readings:
                if r.ok:
                    runtime.balancer.signals.update(
                        r.deployment_id,
                        EngineSample(
                            waiting=r.waiting or 0.0,
                            running=r.running or 0.0,
                            kv_cache_usage=r.kv_cache_usage or 0.0,
                            at=mono,
                            inflight_at=runtime.balancer.state(r.deployment_id).inflight,
                        ),
                    )
            await asyncio.to_thread(store.save_engines, engine, readings, at)
            # Every good scrape, not only the first after a failure: the container may be stored by the host
            # loop after its engine already answered (mark_ready adds one event per observed start).
            answering = {r.deployment_id: r.models for r in readings if r.ok}
            await asyncio.to_thread(store.mark_ready, engine, answering, at)
            errors = [r.error for r in readings if not r.ok and r.error]
            status = engines_status(sum(r.ok for r in readings), len(readings), errors)
            await asyncio.to_thread(store.save_source, engine, status, at)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("engine metrics round failed")
        await asyncio.sleep(max(0.05, settings.fleet_engine_interval_s - (time.monotonic() - started)))


class HostCollector:
    """Containers and GPUs of one host; `round()` is synchronous (run it in a thread)."""

    def __init__(self, engine: Engine, settings: Settings, host: str, nvml: Any | None = None) -> None:
        from llm_console.fleet.gpus import NvmlSampler

        self.engine = engine
        self.settings = settings
        self.host = host
        self.docker: Any = None
        self.containers: Any = None
        self.docker_status: SourceStatus | None = None
        self.nvml = NvmlSampler(nvml=nvml, host=host)
        self.nvml_status: SourceStatus | None = None
        self.events_since: datetime | None = None

    def _docker(self) -> None:
        from llm_console.fleet.containers import ContainerCollector, open_docker

        if self.containers is None:
            client, status = open_docker(self.settings, self.host)
            self.docker_status = status
            if client is not None:
                self.docker, self.containers = client, ContainerCollector(client, self.settings)
                self.containers.remember(store.known_containers(self.engine, self.host))

    def round(self, targets: Mapping[int, Target]) -> None:
        from llm_console.fleet.containers import ContainerSourceError

        at = _now()
        seen: list[ContainerInfo] = []
        self._docker()
        if self.containers is not None:
            names, ports = deployment_maps(targets, self.host)
            try:
                seen = self.containers.list(names, ports)
                store.save_containers(self.engine, self.host, seen, at, interval_s=self.settings.fleet_interval_s)
                since = self.events_since or at - FIRST_EVENTS_LOOKBACK
                ids = {c.id for c in seen}
                events = self.containers.events(since, at, ids)
                by_id = {c.id: c for c in seen}
                if events:
                    store.save_events(
                        self.engine,
                        [
                            e
                            if e.deployment_id is not None or e.container_id not in by_id
                            else replace(e, deployment_id=by_id[e.container_id].deployment_id)
                            for e in events
                        ],
                    )
                self.events_since = at
                version = (self.docker_status.detail.get("version") if self.docker_status else None) or ""
                self.docker_status = SourceStatus(
                    "docker",
                    self.host,
                    True,
                    f"{len(seen)} model-serving container{'s' if len(seen) != 1 else ''} seen",
                    {"version": version} if version else {},
                )
            except Exception as exc:  # the engine went away: reconnect next round
                log.info("Docker API round failed: %s", exc)
                message = str(exc) if isinstance(exc, ContainerSourceError) else f"Docker API unreachable: {exc}"
                self.docker_status = SourceStatus("docker", self.host, False, message[:300])
                self.close_docker()
        if self.docker_status is not None:
            store.save_source(self.engine, self.docker_status, at)
        self.nvml_status = self.nvml.start()
        if self.nvml_status.ok:
            gpus = self.nvml.read(seen)
            store.save_gpus(self.engine, self.host, gpus, at)
            store.save_container_gpus(self.engine, gpus)
        store.save_source(self.engine, self.nvml_status, at)

    def close_docker(self) -> None:
        client, self.docker, self.containers = self.docker, None, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a client whose engine is gone
                client.close()

    def close(self) -> None:
        self.nvml.stop()
        self.close_docker()


async def host_loop(engine: Engine, settings: Settings, runtime: Any, host: str) -> None:
    collector = HostCollector(engine, settings, host)
    try:
        while True:
            started = time.monotonic()
            try:
                await asyncio.to_thread(collector.round, runtime.routes.targets())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fleet round failed")
            await asyncio.sleep(max(0.05, settings.fleet_interval_s - (time.monotonic() - started)))
    finally:
        await asyncio.to_thread(collector.close)
