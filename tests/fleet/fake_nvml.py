"""An object shaped like the `pynvml` module for the GPU sampler's tests.

It carries pynvml's own error classes and constants, so the sampler's `except nvml.NVMLError_...` clauses
meet the real classes; only the driver behind them is invented: configurable GPUs whose calls can answer
NotSupported or any other NVML error, and the quirks of older pynvml and drivers (bytes strings, the raw
"not available" process memory, missing versioned functions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

GiB = 1024**3
MiB = 1024**2


@dataclass
class FakeProcess:
    pid: int
    usedGpuMemory: int | None  # pynvml's field name


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total: int = 80 * GiB
    memory_used: int = 0  # allocated, as the v2 struct and nvidia-smi report it
    memory_reserved: int = 0  # driver-reserved, counted in the v1 struct's `used`
    util_gpu: int = 0
    util_memory: int = 0
    temperature: int = 30
    power_mw: int = 70_000
    power_limit_mw: int = 700_000
    compute: list[FakeProcess] = field(default_factory=list)
    graphics: list[FakeProcess] = field(default_factory=list)
    errors: dict[str, type[pynvml.NVMLError]] = field(default_factory=dict)  # NVML function name -> its error


class FakeNvml:
    """The pynvml functions the sampler calls, over `gpus`; set a function attribute to None to make it absent,
    as in an older pynvml."""

    def __init__(
        self,
        gpus: list[FakeGpu],
        *,
        driver: str = "550.54.15",
        cuda: int = 12040,
        init_error: type[pynvml.NVMLError] | None = None,
        bytes_strings: bool = False,
        unversioned_processes_mismatch: bool = False,
    ) -> None:
        for name in dir(pynvml):
            if name.startswith(("NVMLError", "NVML_")) or name in ("NVMLLibraryMismatchError", "nvmlMemory_v2"):
                setattr(self, name, getattr(pynvml, name))
        self.gpus = gpus
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.bytes_strings = bytes_strings
        self.unversioned_processes_mismatch = unversioned_processes_mismatch
        self.system_errors: dict[str, type[pynvml.NVMLError]] = {}
        self.init_calls = 0
        self.shutdown_calls = 0
        self.initialized = False

    def _system(self, name: str) -> None:
        if not self.initialized:
            raise pynvml.NVMLError_Uninitialized()
        if name in self.system_errors:
            raise self.system_errors[name]()

    def _device(self, handle: FakeGpu, name: str) -> None:
        self._system(name)
        if name in handle.errors:
            raise handle.errors[name]()

    def _string(self, value: str) -> str | bytes:
        return value.encode() if self.bytes_strings else value

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error()
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._system("nvmlShutdown")
        self.shutdown_calls += 1
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._system("nvmlSystemGetDriverVersion")
        return self._string(self.driver)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._system("nvmlSystemGetCudaDriverVersion")
        return self.cuda

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._system("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._system("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._system("nvmlDeviceGetHandleByIndex")
        if index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        self._device(self.gpus[index], "nvmlDeviceGetHandleByIndex")
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str | bytes:
        self._device(handle, "nvmlDeviceGetUUID")
        return self._string(handle.uuid)

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:
        self._device(handle, "nvmlDeviceGetName")
        return self._string(handle.name)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu, version: int | None = None) -> SimpleNamespace:
        if version:
            # pynvml calls the driver's nvmlDeviceGetMemoryInfo_v2 for a versioned request
            self._device(handle, "nvmlDeviceGetMemoryInfo_v2")
            free = handle.memory_total - handle.memory_reserved - handle.memory_used
            return SimpleNamespace(
                version=version,
                total=handle.memory_total,
                reserved=handle.memory_reserved,
                free=free,
                used=handle.memory_used,
            )
        self._device(handle, "nvmlDeviceGetMemoryInfo")
        used = handle.memory_used + handle.memory_reserved
        return SimpleNamespace(total=handle.memory_total, free=handle.memory_total - used, used=used)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> SimpleNamespace:
        self._device(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=handle.util_gpu, memory=handle.util_memory)

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        self._device(handle, "nvmlDeviceGetTemperature")
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return handle.temperature

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        self._device(handle, "nvmlDeviceGetPowerUsage")
        return handle.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeGpu) -> int:
        self._device(handle, "nvmlDeviceGetEnforcedPowerLimit")
        return handle.power_limit_mw

    def _processes(self, handle: FakeGpu, name: str, procs: list[FakeProcess]) -> list[Any]:
        self._device(handle, name)
        return [SimpleNamespace(pid=p.pid, usedGpuMemory=p.usedGpuMemory) for p in procs]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu) -> list[Any]:
        if self.unversioned_processes_mismatch:
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called (driver without _v3)")
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses", handle.compute)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeGpu) -> list[Any]:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v2", handle.compute)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeGpu) -> list[Any]:
        if self.unversioned_processes_mismatch:
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called (driver without _v3)")
        return self._processes(handle, "nvmlDeviceGetGraphicsRunningProcesses", handle.graphics)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, handle: FakeGpu) -> list[Any]:
        return self._processes(handle, "nvmlDeviceGetGraphicsRunningProcesses_v2", handle.graphics)
