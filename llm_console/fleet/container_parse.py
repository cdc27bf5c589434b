"""Reading the Docker Engine API's answers, without I/O: what a container's command line, labels and image say
(model, port, version), Docker's times, the CPU counters of its stats, published ports and events."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llm_console.fleet.types import ContainerEventInfo

MODEL_LABEL = "llm-console.model"
VERSION_LABEL = "llm-console.version"
OCI_VERSION_LABEL = "org.opencontainers.image.version"
OCI_NAME_LABEL = "org.opencontainers.image.ref.name"
VLLM_PORT = 8000
SIMULATOR_PORT = 8001
# Lifecycle actions only: Docker health checks alone add three exec_* events per check.
EVENT_ACTIONS = frozenset(
    {"create", "start", "restart", "die", "kill", "oom", "stop", "pause", "unpause", "health_status", "destroy"}
    | {"remove", "rename", "update"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EngineCommand:
    """What a container's command line says: the model it serves and the port it listens on."""

    model: str = ""
    port: int | None = None


def parse_command(argv: Sequence[str]) -> EngineCommand:
    """Read `vllm serve <model>`, `-m vllm.entrypoints.openai.api_server`, the project's simulator
    (`-m llm_console.simulator --models a,b`: the first model) and `--model` / `--port` (also `--x=y`), through a
    `sh -c "..."` wrapper too. The engine's default port counts only when the engine is recognised."""
    tokens = _unshell(argv)
    positional = flag_model = first_model = ""
    port: int | None = None
    default_port: int | None = None
    simulator = False
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.rsplit("/", 1)[-1] == "vllm" and following == "serve":
            default_port = VLLM_PORT
            after = tokens[i + 2] if i + 2 < len(tokens) else ""
            positional = positional or (after if after and not after.startswith("-") else "")
        elif token == "vllm.entrypoints.openai.api_server":
            default_port = VLLM_PORT
        elif token == "llm_console.simulator":
            default_port, simulator = SIMULATOR_PORT, True
        option, equals, value = token.partition("=")
        if not equals:
            value = following if not following.startswith("-") else ""
        if option == "--model" and value:
            flag_model = value
        elif option == "--port":
            port = port_number(value) or port
        elif option == "--models" and simulator and value:
            first_model = value.split(",")[0].strip()
    return EngineCommand(positional or flag_model or first_model, port or default_port)


def _unshell(argv: Sequence[str]) -> list[str]:
    """The words of `sh -c "<script>"` (also `bash -lc`), or argv itself."""
    if argv and argv[0].rsplit("/", 1)[-1] in _SHELLS:
        for i, arg in enumerate(argv[1:-1], start=1):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg:
                try:
                    return shlex.split(argv[i + 1])
                except ValueError:
                    return argv[i + 1].split()
    return list(argv)


def port_number(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 < number < 65536 else None


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times with nanoseconds, in UTC; its zero time ("0001-01-01T00:00:00Z") is None."""
    if not text or text.startswith("0001-01-01"):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def image_tag(image: str) -> str:
    """The tag of an image reference ("latest" when it names none), "" for a bare image id or digest."""
    if image.startswith("sha256:"):
        return ""
    reference, at, _ = image.partition("@")
    _, colon, tag = reference.rpartition(":")
    if colon and "/" not in tag:
        return tag
    return "" if at else "latest"


def image_version(labels: Mapping[str, str], image: str) -> str:
    """The version label, else the OCI version label unless a base image left it (vLLM's images inherit
    `ref.name=ubuntu`, `version=22.04` from Ubuntu), else the image tag."""
    if labels.get(VERSION_LABEL):
        return labels[VERSION_LABEL]
    oci, owner = labels.get(OCI_VERSION_LABEL, ""), labels.get(OCI_NAME_LABEL, "")
    if oci and (not owner or owner.rsplit("/", 1)[-1] in repository(image)):
        return oci
    return image_tag(image)


def repository(image: str) -> str:
    """An image reference without its tag or digest: `vllm/vllm-openai` of `vllm/vllm-openai:v0.6.3`."""
    name = image.partition("@")[0]
    head, colon, tag = name.rpartition(":")
    return head if colon and "/" not in tag else name


def unix_time(moment: datetime) -> str:
    """A Unix time with nanoseconds, as the events endpoint of both engines reads it."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    nanos = (aware - _EPOCH) // timedelta(microseconds=1) * 1000
    return f"{nanos // 10**9}.{nanos % 10**9:09d}"


def _from_nanos(nanos: int) -> datetime:
    seconds, rest = divmod(nanos, 10**9)
    return _EPOCH + timedelta(seconds=seconds, microseconds=rest // 1000)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """The cumulative CPU counters of one stats answer."""

    total_ns: int
    system_ns: int | None
    cpus: int
    read: datetime | None

    @classmethod
    def of(cls, stats: Mapping[str, Any], read: str | None) -> CpuSample | None:
        usage = stats.get("cpu_usage") or {}
        if not usage.get("total_usage"):
            return None  # podman's empty precpu_stats, or Docker's one-shot answer
        cpus = stats.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 1
        return cls(int(usage["total_usage"]), stats.get("system_cpu_usage") or None, int(cpus), parse_time(read))


def cpu_percent(before: CpuSample | None, now: CpuSample | None) -> float | None:
    """Percent of one core, summed over cores (`docker stats`' figure); None without two samples of one run."""
    if before is None or now is None or now.total_ns < before.total_ns:
        return None
    used = now.total_ns - before.total_ns
    # Wall-clock time between the two reads first: podman's host counter (system_cpu_usage) under load gave
    # 180 % for one spinning process; CPU time over wall time cannot exceed the cores actually used.
    if now.read and before.read and now.read > before.read:
        return used / ((now.read - before.read).total_seconds() * 1e9) * 100.0
    if now.system_ns and before.system_ns and now.system_ns > before.system_ns:
        return used / (now.system_ns - before.system_ns) * now.cpus * 100.0
    return None


def published_ports(attrs: Mapping[str, Any]) -> set[int]:
    """Host ports published for the container: bound now (NetworkSettings) or asked for (HostConfig)."""
    found: set[int] = set()
    sources = ((attrs.get("NetworkSettings") or {}).get("Ports"), (attrs.get("HostConfig") or {}).get("PortBindings"))
    for bindings_by_port in sources:
        for bindings in (bindings_by_port or {}).values():
            for binding in bindings or ():
                port = port_number(binding.get("HostPort"))
                if port:
                    found.add(port)
    return found


def parse_event(
    raw: Mapping[str, Any], wanted: set[str], deployments: Mapping[str, int | None]
) -> ContainerEventInfo | None:
    """One container event if it is a lifecycle action of a wanted container (id, short id or name)."""
    if raw.get("Type") != "container":
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    cid, name = str(actor.get("ID") or raw.get("id") or ""), str(attributes.get("name") or "")
    if not (cid in wanted or cid[:12] in wanted or name in wanted):
        return None
    action, _, detail = str(raw.get("Action") or raw.get("status") or "").partition(":")
    action = action.strip()
    if action not in EVENT_ACTIONS:
        return None
    if action == "die" and "exitCode" in attributes:
        detail = f"exit code {attributes['exitCode']}"
    elif action == "kill" and "signal" in attributes:
        detail = f"signal {attributes['signal']}"
    nanos = int(raw.get("timeNano") or int(raw.get("time") or 0) * 10**9)
    return ContainerEventInfo(cid, name, _from_nanos(nanos), action, detail.strip(), deployments.get(cid))
