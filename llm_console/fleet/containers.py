"""The container collector: the fleet's model-serving containers as the Docker Engine API (Docker or podman) shows them.

A container is a fleet member when it carries the `LLMC_FLEET_LABEL` label key or its image matches one of the
`LLMC_FLEET_IMAGES` globs. Labels override what its command line says: `llm-console.deployment=<name>` ties it
to a deployment (else a published or `--port` port that a deployment's api_base names), `llm-console.model` and
`llm-console.version` replace the parsed model and version.

Restarts. `restart_count` is the number of times a container started again after its first start, as far as the
console can tell. The engines' own `RestartCount` counts only restart-policy restarts, and podman even resets it
to 0 on an operator's restart (`POST /containers/{id}/restart`), so the collector counts for itself: it starts
from `RestartCount` when it first sees a container (or from the figure handed to `remember`, the last one
stored), then adds, each round, the starts since the round before: the rise of `RestartCount` when the policy
restarted it, else 1 when only `State.StartedAt` moved (an operator's restart, or a stop then a start). Several
operator restarts between two rounds count as one; the events timeline shows each of them.

Podman quirks handled here: its stats leave `precpu_stats` empty, so CPU% comes from the previous round's
counters (a container's first round has none); its events endpoint with the `file` events logger answers
nothing at all when `until` is in the past (podman#29579), so for podman the request carries `stream=false`
instead of `until` and the window is cut here.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import docker
from docker.constants import DEFAULT_DOCKER_API_VERSION, MINIMUM_DOCKER_API_VERSION
from docker.errors import DockerException
from docker.utils import kwargs_from_env, version_gte
from requests.exceptions import RequestException

from llm_console.fleet.container_parse import (
    MODEL_LABEL,
    CpuSample,
    cpu_percent,
    image_version,
    parse_command,
    parse_event,
    parse_time,
    published_ports,
    repository,
    unix_time,
)
from llm_console.fleet.types import ContainerEventInfo, ContainerInfo, SourceStatus
from llm_console.settings import Settings

log = logging.getLogger(__name__)

DEPLOYMENT_LABEL = "llm-console.deployment"
DEFAULT_SOCKET = Path("/var/run/docker.sock")
TIMEOUT_S = 5.0
_PODMAN_STATUS = {"stopped": "exited", "configured": "created", "initialized": "created"}
_FAILURES = (DockerException, RequestException, OSError, ValueError)


class ContainerSourceError(RuntimeError):
    """The Engine API did not answer a whole round; the message is fit for the fleet page."""


def docker_url(settings: Settings) -> str:
    """`LLMC_FLEET_DOCKER_URL`, else `DOCKER_HOST`, else the default socket when it exists; "" when none."""
    if settings.fleet_docker_url:
        return settings.fleet_docker_url
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    return f"unix://{DEFAULT_SOCKET}" if DEFAULT_SOCKET.exists() else ""


def open_docker(settings: Settings, host_label: str) -> tuple[docker.DockerClient | None, SourceStatus]:
    """Connect, ping and read the engine's version; any failure is a status for the page, never an exception."""
    url = docker_url(settings)
    if not url:
        message = "Docker API not configured: set LLMC_FLEET_DOCKER_URL or DOCKER_HOST"
        return None, SourceStatus("docker", host_label, False, message)
    client = None
    try:
        if url.startswith("unix://"):
            _probe_socket(url.removeprefix("unix://"))
        # DOCKER_HOST comes with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, which kwargs_from_env reads too.
        kwargs = kwargs_from_env() if not settings.fleet_docker_url else {"base_url": url}
        # One /version call, not the SDK's "auto" one plus ours: podman's takes a second or more.
        with docker.APIClient(version=MINIMUM_DOCKER_API_VERSION, timeout=TIMEOUT_S, **kwargs) as probe:
            version = probe.version(api_version=False)
        api_version = str(version.get("ApiVersion") or MINIMUM_DOCKER_API_VERSION)
        if version_gte(api_version, DEFAULT_DOCKER_API_VERSION):
            api_version = DEFAULT_DOCKER_API_VERSION
        client = docker.DockerClient(version=api_version, timeout=TIMEOUT_S, **kwargs)
        client.ping()
    except Exception as exc:  # any failure to reach the engine is reported, whatever layer raised it
        if client is not None:
            client.close()
        return None, SourceStatus("docker", host_label, False, f"Docker API at {url} unreachable: {reason(exc)}")
    engine, number = engine_name(version)
    detail = {"engine": engine, "version": number, "api_version": api_version}
    return client, SourceStatus("docker", host_label, True, f"Docker API at {url} ({engine} {number})", detail)


def _probe_socket(path: str) -> None:
    """Connect once ourselves: the SDK leaks its socket when a unix connect fails (a ResourceWarning each round)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(TIMEOUT_S)
        probe.connect(path)


def engine_name(version: Mapping[str, Any]) -> tuple[str, str]:
    """("Podman Engine", "4.3.1") or ("Docker Engine", "27.3.1") from a `/version` answer."""
    for component in version.get("Components") or ():
        if component.get("Name") == "Podman Engine":
            return "Podman Engine", str(component.get("Version", ""))
    return "Docker Engine", str(version.get("Version", ""))


def reason(exc: BaseException) -> str:
    """The innermost operating-system reason ("Connection refused") rather than the SDK's layered repr."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "timed out" in str(current).lower():
            return "timed out"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        nested = (current.__cause__, current.__context__, *current.args)
        stack.extend(item for item in nested if isinstance(item, BaseException))
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Starts:
    started_at: datetime | None
    engine_count: int | None  # None: remembered from a stored row, not seen from the engine yet
    count: int


class _Processes:
    """Host processes by parent, read from /proc once per round and only when a container needs them."""

    def __init__(self) -> None:
        self._children: dict[int, builtins.list[int]] | None = None

    def tree(self, pid: int, container_id: str) -> tuple[int, ...]:
        """The container's main pid and its descendants; empty when /proc does not show that container's
        process (a remote engine, another pid namespace, or no permission)."""
        if pid <= 0:
            return ()
        try:
            if container_id not in Path(f"/proc/{pid}/cgroup").read_text():
                return ()
        except OSError:
            return ()
        children = self._load()
        found, queue = [pid], [pid]
        while queue:
            for child in children.get(queue.pop(), ()):
                found.append(child)
                queue.append(child)
        return tuple(sorted(found))

    def _load(self) -> dict[int, builtins.list[int]]:
        if self._children is None:
            self._children = {}
            try:
                entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
            except OSError:
                entries = []
            for name in entries:
                try:
                    stat = Path(f"/proc/{name}/stat").read_text()
                    parent = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                self._children.setdefault(parent, []).append(int(name))
        return self._children


class ContainerCollector:
    """Reads the fleet's containers and their events each round (synchronous: run it in a worker thread).

    It keeps what the next round needs: CPU counters (for CPU% where the engine gives no earlier sample),
    start times and restart counts (the rule is in the module docstring), the deployment each container
    served, and `events_read_until`, the end of the last events window read."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        self._client = client
        self._label = settings.fleet_label
        self._images = tuple(settings.fleet_images)
        self._one_shot = {"one_shot": True} if version_gte(client.api.api_version, "1.41") else {}
        self._cpu: dict[str, tuple[datetime | None, CpuSample]] = {}  # the last counters, and of which run
        self._starts: dict[str, _Starts] = {}
        self._deployments: dict[str, int | None] = {}
        self._podman: bool | None = None
        self.events_read_until: datetime | None = None

    def remember(self, previous: Iterable[ContainerInfo]) -> None:
        """Continue the restart counts stored before this process started, instead of the engine's counter."""
        for info in previous:
            self._starts.setdefault(info.id, _Starts(info.started_at, None, info.restart_count))

    def is_member(self, labels: Mapping[str, str], image: str) -> bool:
        """The fleet label, or an image glob matching the reference with or without its tag."""
        bare = repository(image)
        return self._label in labels or any(fnmatchcase(image, g) or fnmatchcase(bare, g) for g in self._images)

    def list(self, deployments: Mapping[str, int], ports: Mapping[int, int]) -> builtins.list[ContainerInfo]:
        """Every fleet container, running or not. `deployments` maps deployment names to ids (for the label),
        `ports` maps host ports to deployment ids. One container that cannot be read is left out, not the round."""
        try:
            summaries = self._client.api.containers(all=True)
        except _FAILURES as exc:
            raise ContainerSourceError(f"Docker API unreachable: {reason(exc)}") from exc
        members = [s for s in summaries if self.is_member(s.get("Labels") or {}, s.get("Image") or "")]
        processes = _Processes()
        found: builtins.list[ContainerInfo] = []
        for summary in members:
            try:
                attrs = self._client.api.inspect_container(summary["Id"])
            except _FAILURES as exc:  # removed since the listing, or the engine hiccuped on this one
                log.warning("cannot inspect container %s: %s", summary.get("Id", "?")[:12], reason(exc))
                continue
            found.append(self._info(attrs, deployments, ports, processes))
        alive = {s["Id"] for s in members}
        for table in (self._cpu, self._starts, self._deployments):
            for gone in set(table) - alive:
                del table[gone]
        return found

    def _info(
        self, attrs: Mapping[str, Any], deployments: Mapping[str, int], ports: Mapping[int, int], procs: _Processes
    ) -> ContainerInfo:
        cid = str(attrs["Id"])
        state, config, host = attrs.get("State") or {}, attrs.get("Config") or {}, attrs.get("HostConfig") or {}
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        image = str(config.get("Image") or attrs.get("ImageName") or "")
        status = _PODMAN_STATUS.get(state.get("Status", ""), state.get("Status") or "unknown")
        command = parse_command([str(attrs.get("Path") or ""), *(str(a) for a in attrs.get("Args") or ())])
        listening = published_ports(attrs)
        if host.get("NetworkMode") == "host" and command.port:
            listening.add(command.port)
        started, finished = parse_time(state.get("StartedAt")), parse_time(state.get("FinishedAt"))
        if finished and started and finished < started:
            finished = None  # the end of an earlier run, not of this one
        cpu = mem = limit = None
        if status == "running":
            cpu, mem, limit = self._usage(cid, started)
        named = deployments.get(labels.get(DEPLOYMENT_LABEL, ""))
        by_port = next((ports[p] for p in sorted(listening) if p in ports), None)
        deployment = named if named is not None else by_port
        self._deployments[cid] = deployment
        running = status in ("running", "paused")
        return ContainerInfo(
            id=cid,
            name=str(attrs.get("Name") or "").lstrip("/"),
            image=image,
            version=image_version(labels, image),
            model=labels.get(MODEL_LABEL) or command.model,
            status=status,
            health=str((state.get("Health") or {}).get("Status") or ""),
            started_at=started,
            finished_at=finished,
            restart_count=self._count_restarts(cid, started, int(attrs.get("RestartCount") or 0)),
            exit_code=int(state.get("ExitCode") or 0) if status in ("exited", "dead", "restarting") else None,
            cpu_pct=cpu,
            mem_bytes=mem,
            mem_limit_bytes=limit,
            ports=tuple(sorted(listening)),
            deployment_id=deployment,
            labels=labels,
            pids=procs.tree(int(state.get("Pid") or 0), cid) if running else (),
        )

    def _usage(self, cid: str, started: datetime | None) -> tuple[float | None, int | None, int | None]:
        """CPU%, memory used (less the page cache, as `docker stats` shows it) and the memory limit."""
        try:
            stats = self._client.api.stats(cid, stream=False, **self._one_shot)
        except _FAILURES as exc:
            log.warning("cannot read stats of container %s: %s", cid[:12], reason(exc))
            return None, None, None
        now = CpuSample.of(stats.get("cpu_stats") or {}, stats.get("read"))
        before = CpuSample.of(stats.get("precpu_stats") or {}, stats.get("preread"))
        if before is None and self._cpu.get(cid, (None, None))[0] == started:  # counters restart with each run
            before = self._cpu[cid][1]
        if now is not None:
            self._cpu[cid] = (started, now)
        memory = stats.get("memory_stats") or {}
        usage, limit = memory.get("usage"), memory.get("limit")
        breakdown = memory.get("stats") or {}
        cache = int(breakdown.get("inactive_file") or breakdown.get("total_inactive_file") or 0)  # cgroup v2 / v1
        used = int(usage) - cache if usage is not None and cache < int(usage) else usage
        return cpu_percent(before, now), used, limit

    def _count_restarts(self, cid: str, started_at: datetime | None, engine_count: int) -> int:
        seen = self._starts.get(cid)
        if seen is None:
            count = engine_count
        else:
            rise = engine_count - seen.engine_count if seen.engine_count is not None else 0
            moved = started_at is not None and seen.started_at is not None and started_at > seen.started_at
            count = seen.count + (max(rise, 1) if moved else max(rise, 0))
            if seen.engine_count is None:
                count = max(count, engine_count)
        self._starts[cid] = _Starts(started_at, engine_count, count)
        return count

    def events(self, since: datetime, until: datetime, ids: Collection[str]) -> builtins.list[ContainerEventInfo]:
        """Lifecycle events of the given containers (ids, short ids or names) with since <= time < until, oldest
        first; `die` carries "exit code N", `kill` "signal N", `health_status` the new health."""
        wanted = set(ids)
        start, end = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in (since, until))
        if not wanted or start >= end:
            return []
        api = self._client.api
        params = {"since": unix_time(since), "filters": json.dumps({"type": ["container"]})}
        if self._is_podman():
            params["stream"] = "false"
        else:
            params["until"] = unix_time(until)
        try:
            with api.get(f"{api.base_url}/v{api.api_version}/events", params=params, stream=True, timeout=30) as r:
                r.raise_for_status()
                lines = [line for line in r.iter_lines() if line.strip()]
        except _FAILURES as exc:
            raise ContainerSourceError(f"Docker API events unreadable: {reason(exc)}") from exc
        found = []
        for line in lines:
            try:
                event = parse_event(json.loads(line), wanted, self._deployments)
            except (ValueError, TypeError, KeyError):
                continue
            if event is not None and start <= event.at < end:
                found.append(event)
        self.events_read_until = end
        return sorted(found, key=lambda e: e.at)

    def _is_podman(self) -> bool:
        """Podman answers /_ping with its Libpod-API-Version header (cheaper than its slow /version)."""
        if self._podman is None:
            api = self._client.api
            try:
                with api.get(f"{api.base_url}/_ping", timeout=TIMEOUT_S) as answer:
                    self._podman = "Libpod-API-Version" in answer.headers
            except _FAILURES:
                return False
        return self._podman
