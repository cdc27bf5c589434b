"""GPUs through NVML (the `pynvml` module of `nvidia-ml-py`), each GPU process mapped to its container.

The sampler never raises for a host without a usable driver: `start()` returns a `SourceStatus` that says so
in plain words, and is simply called again on a later round, since a driver may be installed or loaded
meanwhile. Every per-field NVML call may fail on some GPUs (NotSupported on consumer cards, vGPUs and MIG);
such a field becomes None and the GPU is still reported.

NVML reports host pids. A process is mapped to a container by the container's own pids first, then by the
container id in `<proc_root>/<pid>/cgroup`; when the sampler runs inside a container, pass the host's /proc
mounted somewhere (e.g. `/host/proc`) as `proc_root`, or the cgroup fallback finds nothing.

The calls block for a few milliseconds per GPU; an async collector runs `start`/`read` in a thread, one
sampler per loop (the sampler is not meant to be shared between threads).
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_console.fleet.types import ContainerInfo, GpuInfo, GpuProcess, SourceStatus

logger = logging.getLogger(__name__)

KIND = "nvml"
NO_LIBRARY = "No NVIDIA driver on this host (NVML library not found)"
DRIVER_NOT_LOADED = "NVIDIA driver not loaded"
NO_PERMISSION = "No permission to use the NVIDIA driver (NVML: insufficient permissions)"
NO_PYNVML = "NVML failed: the pynvml package (nvidia-ml-py) is not installed"

# NVML_VALUE_NOT_AVAILABLE_ulonglong: current pynvml turns it into None, older releases pass it through.
NOT_AVAILABLE = 2**64 - 1
CONTAINER_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def cuda_version_text(value: int) -> str:
    """NVML's CUDA driver version integer (1000 * major + 10 * minor) as nvidia-smi prints it: 12040 -> "12.4"."""
    return f"{value // 1000}.{value % 1000 // 10}"


def container_ids_in_cgroup(text: str) -> list[str]:
    """The 64-hex container ids in a /proc/<pid>/cgroup file, whatever the runtime's layout
    (`docker-<id>.scope`, `libpod-<id>.scope`, `/docker/<id>`, `cri-containerd-<id>.scope`, ...)."""
    return CONTAINER_ID.findall(text.lower())


def _text(value: object) -> str:
    """NVML strings as str: pynvml before 11.5 returned bytes."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _init_failure(nvml: Any, exc: Exception) -> str:
    """nvmlInit's error in the words an operator acts on."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return NO_LIBRARY
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return DRIVER_NOT_LOADED
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return NO_PERMISSION
    return f"NVML failed: {exc}"


def _process_memory(value: object) -> int | None:
    if value is None or not isinstance(value, int) or value < 0 or value >= NOT_AVAILABLE:
        return None
    return value


class NvmlSampler:
    """Reads every GPU of one host through NVML; `nvml` is the pynvml module or an object shaped like it."""

    def __init__(self, *, host: str, nvml: Any | None = None, proc_root: Path = Path("/proc")) -> None:
        self.host = host
        self._nvml = nvml
        self._proc_root = proc_root
        self._started = False
        self._status: SourceStatus | None = None
        self._driver = ""
        self._cuda = ""
        self._logged_failure = ""
        self._warned: set[str] = set()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def status(self) -> SourceStatus | None:
        """The last `start()` result (None before the first)."""
        return self._status

    def start(self) -> SourceStatus:
        """Initialise NVML once; after a failure every call tries again, logging only a new failure message."""
        if self._started and self._status is not None:
            return self._status
        try:
            nvml = self._module()
        except ImportError:
            return self._failed(NO_PYNVML)
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return self._failed(_init_failure(nvml, exc))
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._shutdown(nvml)
            return self._failed(f"NVML failed: {exc}")
        self._started = True
        self._driver = _text(self._field("nvmlSystemGetDriverVersion"))
        self._cuda = self._cuda_version()
        parts = [f"{count} GPU" if count == 1 else f"{count} GPUs"]
        if self._driver:
            parts.append(f"driver {self._driver}")
        if self._cuda:
            parts.append(f"CUDA {self._cuda}")
        message = "NVML: " + ", ".join(parts)
        self._status = SourceStatus(
            kind=KIND,
            host=self.host,
            ok=True,
            message=message,
            detail={"driver": self._driver, "cuda": self._cuda, "count": str(count)},
        )
        self._logged_failure = ""
        logger.info("GPU sampler on %s: %s", self.host, message)
        return self._status

    def read(self, containers: Sequence[ContainerInfo] = ()) -> list[GpuInfo]:
        """Every GPU now, its processes mapped to `containers`; [] until `start()` succeeded."""
        if not self._started:
            return []
        nvml = self._module()
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._warn_once(f"GPU count unavailable on {self.host}: {exc}")
            return []
        mapper = _ContainerMapper(containers, self._proc_root)
        gpus: list[GpuInfo] = []
        for index in range(count):
            try:
                gpus.append(self._read_device(index, mapper))
            except nvml.NVMLError as exc:
                self._warn_once(f"GPU {index} on {self.host} skipped: {exc}")
        return gpus

    def stop(self) -> None:
        """Shut NVML down if `start()` succeeded; a later `start()` initialises it again."""
        if self._started:
            self._shutdown(self._module())
        self._started = False

    def _module(self) -> Any:
        if self._nvml is None:
            self._nvml = importlib.import_module("pynvml")
        return self._nvml

    def _shutdown(self, nvml: Any) -> None:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            logger.debug("nvmlShutdown on %s failed: %s", self.host, exc)

    def _failed(self, message: str) -> SourceStatus:
        if message != self._logged_failure:
            logger.info("GPU sampler on %s: %s", self.host, message)
            self._logged_failure = message
        self._status = SourceStatus(kind=KIND, host=self.host, ok=False, message=message)
        return self._status

    def _warn_once(self, message: str) -> None:
        """A broken GPU is reported on every round; the log says so once per distinct message."""
        if message in self._warned:
            logger.debug("%s", message)
            return
        self._warned.add(message)
        logger.warning("%s", message)

    def _field(self, name: str, *args: Any) -> Any:
        """One NVML call by name, None when this pynvml lacks it or NVML refuses it (NotSupported, ...)."""
        nvml = self._module()
        fn: Callable[..., Any] | None = getattr(nvml, name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            logger.debug("%s on %s: %s", name, self.host, exc)
            return None

    def _cuda_version(self) -> str:
        for name in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
            value = self._field(name)
            if isinstance(value, int) and value > 0:
                return cuda_version_text(value)
        return ""

    def _read_device(self, index: int, mapper: _ContainerMapper) -> GpuInfo:
        nvml = self._module()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        used, total = self._memory(handle)
        util = self._field("nvmlDeviceGetUtilizationRates", handle)
        temperature = self._field("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU)
        power_mw = self._field("nvmlDeviceGetPowerUsage", handle)
        limit_mw = self._field("nvmlDeviceGetEnforcedPowerLimit", handle)
        return GpuInfo(
            uuid=uuid,
            index=index,
            name=_text(self._field("nvmlDeviceGetName", handle)),
            memory_used_bytes=used,
            memory_total_bytes=total,
            utilization_pct=None if util is None else float(util.gpu),
            memory_utilization_pct=None if util is None else float(util.memory),
            temperature_c=None if temperature is None else float(temperature),
            power_w=None if power_mw is None else power_mw / 1000,
            power_limit_w=None if limit_mw is None else limit_mw / 1000,
            driver_version=self._driver,
            cuda_version=self._cuda,
            processes=tuple(mapper.process(pid, used) for pid, used in self._processes(handle).items()),
        )

    def _memory(self, handle: Any) -> tuple[int, int]:
        """(used, total) bytes. The v2 struct's `used` leaves out driver-reserved memory, as nvidia-smi does;
        drivers before R510 only have v1, whose `used` includes it. (0, 0) when NVML gives neither."""
        nvml = self._module()
        version = getattr(nvml, "nvmlMemory_v2", None)
        info = None
        if version is not None:
            info = self._field("nvmlDeviceGetMemoryInfo", handle, version)
        if info is None:
            info = self._field("nvmlDeviceGetMemoryInfo", handle)
        if info is None:
            return 0, 0
        return int(info.used), int(info.total)

    def _processes(self, handle: Any) -> dict[int, int | None]:
        """Compute and graphics processes by pid (a process doing both is listed once) -> used bytes."""
        found: dict[int, int | None] = {}
        for kind in ("Compute", "Graphics"):
            for proc in self._running(kind, handle):
                pid = int(proc.pid)
                used = _process_memory(getattr(proc, "usedGpuMemory", None))
                if found.get(pid) is None:
                    found[pid] = used
        return found

    def _running(self, kind: str, handle: Any) -> list[Any]:
        """The unversioned call needs the _v3 driver function (R510+); older drivers only answer _v2."""
        nvml = self._module()
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
        for name in (f"nvmlDeviceGet{kind}RunningProcesses", f"nvmlDeviceGet{kind}RunningProcesses_v2"):
            fn = getattr(nvml, name, None)
            if fn is None:
                continue
            try:
                return list(fn(handle))
            except nvml.NVMLError_FunctionNotFound:
                continue
            except nvml.NVMLError as exc:
                logger.debug("%s on %s: %s", name, self.host, exc)
                return []
            except Exception as exc:
                if mismatch is not None and isinstance(exc, mismatch):
                    continue
                raise
        return []


class _ContainerMapper:
    """pid -> container for one read: the containers' own pids, else the container id in the pid's cgroup."""

    def __init__(self, containers: Sequence[ContainerInfo], proc_root: Path) -> None:
        self._containers = [c for c in containers if c.id]
        self._by_pid = {pid: c for c in self._containers for pid in c.pids}
        self._by_cgroup: dict[int, ContainerInfo | None] = {}  # a pid on several GPUs reads its file once
        self._proc_root = proc_root

    def process(self, pid: int, used: int | None) -> GpuProcess:
        container = self._container(pid)
        if container is None:
            return GpuProcess(pid=pid, used_bytes=used)
        return GpuProcess(
            pid=pid,
            used_bytes=used,
            container_id=container.id,
            container_name=container.name,
            deployment_id=container.deployment_id,
            model=container.model,
        )

    def _container(self, pid: int) -> ContainerInfo | None:
        if pid in self._by_pid:
            return self._by_pid[pid]
        if pid not in self._by_cgroup:
            self._by_cgroup[pid] = self._from_cgroup(pid)
        return self._by_cgroup[pid]

    def _from_cgroup(self, pid: int) -> ContainerInfo | None:
        try:
            text = (self._proc_root / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
        except OSError:  # gone, or another pid namespace's
            return None
        for found in container_ids_in_cgroup(text):
            for container in self._containers:
                if found.startswith(container.id.lower()):
                    return container
        return None
