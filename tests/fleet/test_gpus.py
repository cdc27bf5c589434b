"""The NVML GPU sampler over an NVML-shaped object that raises pynvml's own error classes, fake /proc cgroup
files in the layouts Docker and podman write, and the real pynvml on this machine (no driver here)."""

from __future__ import annotations

import ctypes.util
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pynvml
import pytest

from llm_console.fleet.gpus import (
    DRIVER_NOT_LOADED,
    NO_LIBRARY,
    NO_PERMISSION,
    NOT_AVAILABLE,
    NvmlSampler,
    container_ids_in_cgroup,
    cuda_version_text,
)
from llm_console.fleet.types import ContainerInfo, GpuProcess
from tests.conftest import ROOT
from tests.fleet.fake_nvml import FakeGpu, FakeNvml, FakeProcess, GiB, MiB

LOGGER = "llm_console.fleet.gpus"
DOCKER_ID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"
PODMAN_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER_ID = "0" * 64


def container(cid: str, name: str, model: str, deployment_id: int | None, pids: tuple[int, ...] = ()) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name=name,
        image="vllm/vllm-openai:v0.8.5",
        version="v0.8.5",
        model=model,
        status="running",
        health="healthy",
        started_at=None,
        finished_at=None,
        restart_count=0,
        exit_code=None,
        cpu_pct=None,
        mem_bytes=None,
        mem_limit_bytes=None,
        ports=(8000,),
        deployment_id=deployment_id,
        pids=pids,
    )


def write_cgroup(proc_root: Path, pid: int, text: str) -> None:
    (proc_root / str(pid)).mkdir(parents=True)
    (proc_root / str(pid) / "cgroup").write_text(text)


def started(nvml: FakeNvml, proc_root: Path = Path("/nonexistent-proc")) -> NvmlSampler:
    sampler = NvmlSampler(host="gpu-1", nvml=nvml, proc_root=proc_root)
    assert sampler.start().ok
    return sampler


def test_two_gpus_read_with_unit_conversions() -> None:
    h100 = FakeGpu("GPU-11111111-2222-3333-4444-555555555555", memory_used=61 * GiB, memory_reserved=512 * MiB)
    h100.util_gpu, h100.util_memory, h100.temperature, h100.power_mw = 87, 45, 64, 412_345
    a100 = FakeGpu("GPU-66666666-7777-8888-9999-000000000000", "NVIDIA A100-SXM4-40GB", 40 * GiB, 3 * GiB)
    a100.util_gpu, a100.util_memory, a100.temperature, a100.power_mw, a100.power_limit_mw = 0, 1, 31, 55_500, 400_000
    nvml = FakeNvml([h100, a100])
    sampler = NvmlSampler(host="gpu-1", nvml=nvml)

    status = sampler.start()
    gpus = sampler.read([])

    assert status.ok and status.kind == "nvml" and status.host == "gpu-1"
    assert status.message == "NVML: 2 GPUs, driver 550.54.15, CUDA 12.4"
    assert status.detail == {"driver": "550.54.15", "cuda": "12.4", "count": "2"}
    assert [(g.index, g.uuid, g.name) for g in gpus] == [
        (0, "GPU-11111111-2222-3333-4444-555555555555", "NVIDIA H100 80GB HBM3"),
        (1, "GPU-66666666-7777-8888-9999-000000000000", "NVIDIA A100-SXM4-40GB"),
    ]
    first, second = gpus
    # the v2 memory struct: used leaves the driver-reserved 512 MiB out, as nvidia-smi does
    assert (first.memory_used_bytes, first.memory_total_bytes) == (61 * GiB, 80 * GiB)
    assert (second.memory_used_bytes, second.memory_total_bytes) == (3 * GiB, 40 * GiB)
    assert (first.utilization_pct, first.memory_utilization_pct) == (87.0, 45.0)
    assert (second.utilization_pct, second.memory_utilization_pct) == (0.0, 1.0)
    assert (first.temperature_c, second.temperature_c) == (64.0, 31.0)
    assert first.power_w == pytest.approx(412.345) and first.power_limit_w == pytest.approx(700.0)
    assert second.power_w == pytest.approx(55.5) and second.power_limit_w == pytest.approx(400.0)
    assert {(g.driver_version, g.cuda_version) for g in gpus} == {("550.54.15", "12.4")}
    assert first.processes == () and second.processes == ()


def test_memory_falls_back_to_v1_struct_on_drivers_without_v2() -> None:
    gpu = FakeGpu(uuid="GPU-a", memory_used=10 * GiB, memory_reserved=300 * MiB)
    gpu.errors["nvmlDeviceGetMemoryInfo_v2"] = pynvml.NVMLError_FunctionNotFound

    (info,) = started(FakeNvml([gpu])).read([])

    assert info.memory_used_bytes == 10 * GiB + 300 * MiB


@pytest.mark.parametrize(
    ("value", "text"), [(12040, "12.4"), (12020, "12.2"), (11080, "11.8"), (13000, "13.0"), (12090, "12.9")]
)
def test_cuda_version_text(value: int, text: str) -> None:
    assert cuda_version_text(value) == text


def test_cuda_version_from_the_unversioned_call_when_v2_is_absent() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")], cuda=11080)
    nvml.nvmlSystemGetCudaDriverVersion_v2 = None  # type: ignore[assignment,method-assign]

    sampler = started(nvml)

    assert sampler.read([])[0].cuda_version == "11.8"
    assert sampler.status is not None and sampler.status.detail["cuda"] == "11.8"


def test_versions_unavailable_leave_them_out_of_the_message() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")])
    nvml.system_errors = {
        "nvmlSystemGetDriverVersion": pynvml.NVMLError_Unknown,
        "nvmlSystemGetCudaDriverVersion_v2": pynvml.NVMLError_NotSupported,
        "nvmlSystemGetCudaDriverVersion": pynvml.NVMLError_NotSupported,
    }

    sampler = started(nvml)

    assert sampler.status is not None and sampler.status.message == "NVML: 1 GPU"
    assert (sampler.read([])[0].driver_version, sampler.read([])[0].cuda_version) == ("", "")


def test_unsupported_fields_become_none_and_the_rest_is_read() -> None:
    gpu = FakeGpu(uuid="GPU-consumer", name="NVIDIA GeForce RTX 4090", memory_total=24 * GiB, memory_used=2 * GiB)
    gpu.errors = {
        "nvmlDeviceGetUtilizationRates": pynvml.NVMLError_NotSupported,
        "nvmlDeviceGetPowerUsage": pynvml.NVMLError_NotSupported,
        "nvmlDeviceGetEnforcedPowerLimit": pynvml.NVMLError_NoPermission,
        "nvmlDeviceGetTemperature": pynvml.NVMLError_Unknown,
        "nvmlDeviceGetComputeRunningProcesses": pynvml.NVMLError_NotSupported,
    }
    gpu.graphics = [FakeProcess(pid=4242, usedGpuMemory=300 * MiB)]

    (info,) = started(FakeNvml([gpu])).read([])

    assert (info.utilization_pct, info.memory_utilization_pct) == (None, None)
    assert (info.power_w, info.power_limit_w, info.temperature_c) == (None, None, None)
    assert (info.uuid, info.name) == ("GPU-consumer", "NVIDIA GeForce RTX 4090")
    assert (info.memory_used_bytes, info.memory_total_bytes) == (2 * GiB, 24 * GiB)
    assert info.processes == (GpuProcess(pid=4242, used_bytes=300 * MiB),)


def test_memory_unavailable_reads_as_zero_and_keeps_the_gpu() -> None:
    gpu = FakeGpu(uuid="GPU-mig-parent", temperature=40)
    gpu.errors = {
        "nvmlDeviceGetMemoryInfo_v2": pynvml.NVMLError_NotSupported,
        "nvmlDeviceGetMemoryInfo": pynvml.NVMLError_NotSupported,
    }

    (info,) = started(FakeNvml([gpu])).read([])

    assert (info.memory_used_bytes, info.memory_total_bytes, info.temperature_c) == (0, 0, 40.0)


def test_a_gpu_that_fails_entirely_is_skipped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    lost = FakeGpu(uuid="GPU-lost")
    lost.errors["nvmlDeviceGetUUID"] = pynvml.NVMLError_GpuIsLost
    sampler = started(FakeNvml([lost, FakeGpu(uuid="GPU-fine")]))

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        first = sampler.read([])
        second = sampler.read([])

    assert [g.uuid for g in first] == [g.uuid for g in second] == ["GPU-fine"]
    assert [g.index for g in first] == [1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["GPU 0 on gpu-1 skipped: GPU is lost"]


def test_processes_mapped_by_pid_and_by_docker_and_podman_cgroups(tmp_path: Path) -> None:
    by_pid = container("b" * 64, "vllm-llama", "meta-llama/Llama-3.1-8B-Instruct", 7, pids=(1000, 1001))
    docker = container(DOCKER_ID, "vllm-qwen", "Qwen/Qwen2.5-7B-Instruct", 8)
    podman = container(PODMAN_ID[:12], "vllm-mistral", "mistralai/Mistral-7B-Instruct-v0.3", None)
    v1 = container("c" * 64, "vllm-embed", "BAAI/bge-m3", 9)
    # cgroup v2 under systemd (Docker), rootless podman under a user session, cgroup v1 (Docker, cgroupfs)
    write_cgroup(tmp_path, 2000, f"0::/system.slice/docker-{DOCKER_ID}.scope\n")
    write_cgroup(
        tmp_path,
        3000,
        f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{PODMAN_ID}.scope/container\n",
    )
    write_cgroup(tmp_path, 4000, f"12:memory:/docker/{'c' * 64}\n11:cpu,cpuacct:/docker/{'c' * 64}\n")
    write_cgroup(tmp_path, 5000, "0::/user.slice/user-1000.slice/session-3.scope\n")
    write_cgroup(tmp_path, 6000, f"0::/system.slice/docker-{OTHER_ID}.scope\n")
    h100 = FakeGpu(
        uuid="GPU-a",
        compute=[
            FakeProcess(1001, 40 * GiB),
            FakeProcess(2000, 20 * GiB),
            FakeProcess(5000, 1 * GiB),
            FakeProcess(6000, None),
            FakeProcess(7000, NOT_AVAILABLE),  # no /proc entry: gone, or another pid namespace
        ],
        graphics=[FakeProcess(2000, None)],  # a process doing both is listed once, with the figure it has
    )
    second = FakeGpu(uuid="GPU-b", compute=[FakeProcess(3000, 14 * GiB), FakeProcess(4000, 2 * GiB)])
    sampler = started(FakeNvml([h100, second]), proc_root=tmp_path)

    first_gpu, second_gpu = sampler.read([by_pid, docker, podman, v1])

    assert first_gpu.processes == (
        GpuProcess(1001, 40 * GiB, "b" * 64, "vllm-llama", 7, "meta-llama/Llama-3.1-8B-Instruct"),
        GpuProcess(2000, 20 * GiB, DOCKER_ID, "vllm-qwen", 8, "Qwen/Qwen2.5-7B-Instruct"),
        GpuProcess(5000, 1 * GiB),
        GpuProcess(6000, None),
        GpuProcess(7000, None),
    )
    assert second_gpu.processes == (
        GpuProcess(3000, 14 * GiB, PODMAN_ID[:12], "vllm-mistral", None, "mistralai/Mistral-7B-Instruct-v0.3"),
        GpuProcess(4000, 2 * GiB, "c" * 64, "vllm-embed", 9, "BAAI/bge-m3"),
    )


@pytest.mark.parametrize("how", ["library mismatch (pynvml 12+)", "function not found (older pynvml)"])
def test_processes_read_through_v2_on_drivers_without_v3(how: str) -> None:
    gpu = FakeGpu(uuid="GPU-old", compute=[FakeProcess(10, 5 * GiB)], graphics=[FakeProcess(11, 64 * MiB)])
    nvml = FakeNvml([gpu], unversioned_processes_mismatch=how.startswith("library"))
    if how.startswith("function"):
        gpu.errors["nvmlDeviceGetComputeRunningProcesses"] = pynvml.NVMLError_FunctionNotFound
        gpu.errors["nvmlDeviceGetGraphicsRunningProcesses"] = pynvml.NVMLError_FunctionNotFound

    (info,) = started(nvml).read([])

    assert info.processes == (GpuProcess(10, 5 * GiB), GpuProcess(11, 64 * MiB))


@pytest.mark.parametrize(
    "text",
    [
        f"0::/system.slice/docker-{DOCKER_ID}.scope",
        f"0::/machine.slice/libpod-{DOCKER_ID}.scope/container",
        f"0::/libpod_parent/libpod-{DOCKER_ID}",
        f"4:devices:/docker/{DOCKER_ID}",
        f"0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{DOCKER_ID}.scope",
    ],
)
def test_container_ids_in_cgroup_layouts(text: str) -> None:
    assert container_ids_in_cgroup(text + "\n") == [DOCKER_ID]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (pynvml.NVMLError_LibraryNotFound, NO_LIBRARY),
        (pynvml.NVMLError_DriverNotLoaded, DRIVER_NOT_LOADED),
        (pynvml.NVMLError_NoPermission, NO_PERMISSION),
        (pynvml.NVMLError_LibRmVersionMismatch, "NVML failed: RM has detected an NVML/RM version mismatch."),
    ],
)
def test_start_failure_in_plain_words(error: type[pynvml.NVMLError], message: str) -> None:
    sampler = NvmlSampler(host="gpu-1", nvml=FakeNvml([FakeGpu(uuid="GPU-a")], init_error=error))

    status = sampler.start()

    assert (status.ok, status.kind, status.host, status.message) == (False, "nvml", "gpu-1", message)
    assert sampler.read([]) == []
    sampler.stop()


def test_count_failure_after_init_fails_start_and_shuts_down() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")])
    nvml.system_errors["nvmlDeviceGetCount"] = pynvml.NVMLError_Unknown
    sampler = NvmlSampler(host="gpu-1", nvml=nvml)

    status = sampler.start()

    assert (status.ok, status.message) == (False, "NVML failed: Unknown Error")
    assert (nvml.shutdown_calls, sampler.started) == (1, False)


def test_real_pynvml_without_a_driver_gives_the_plain_status() -> None:
    sampler = NvmlSampler(host="h")
    status = sampler.start()
    try:
        if status.ok:
            pytest.skip(f"a real NVIDIA driver is present on this machine ({status.message})")
        assert status.kind == "nvml" and status.host == "h"
        if ctypes.util.find_library("nvidia-ml") is None:
            assert status.message == NO_LIBRARY
        else:  # the library is installed but the driver may be unloaded or out of reach
            assert status.message in (DRIVER_NOT_LOADED, NO_PERMISSION) or status.message.startswith("NVML failed:")
        assert sampler.read([]) == []
    finally:
        sampler.stop()


def test_start_retried_after_failure_logging_the_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")], init_error=pynvml.NVMLError_DriverNotLoaded)
    sampler = NvmlSampler(host="gpu-1", nvml=nvml)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        failures = [sampler.start(), sampler.start(), sampler.start()]
        nvml.init_error = None  # the driver got loaded
        recovered = sampler.start()
        again = sampler.start()

    assert [s.ok for s in failures] == [False, False, False]
    assert recovered.ok and again is recovered
    assert nvml.init_calls == 4  # retried on each failing round, initialised once
    assert [g.uuid for g in sampler.read([])] == ["GPU-a"]
    assert [r.getMessage() for r in caplog.records] == [
        f"GPU sampler on gpu-1: {DRIVER_NOT_LOADED}",
        "GPU sampler on gpu-1: NVML: 1 GPU, driver 550.54.15, CUDA 12.4",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_stop_shuts_down_once_and_start_works_again() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")])
    sampler = started(nvml)

    sampler.stop()
    sampler.stop()

    assert (nvml.shutdown_calls, nvml.initialized, sampler.read([])) == (1, False, [])
    assert sampler.start().ok and nvml.init_calls == 2


def test_read_before_start_is_empty() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-a")])

    assert NvmlSampler(host="gpu-1", nvml=nvml).read([]) == []
    assert nvml.init_calls == 0


def test_bytes_strings_from_old_pynvml_are_decoded() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-bytes", name="Tesla V100-SXM2-16GB")], driver="470.82.01", bytes_strings=True)

    sampler = started(nvml)
    (info,) = sampler.read([])

    assert (info.uuid, info.name, info.driver_version) == ("GPU-bytes", "Tesla V100-SXM2-16GB", "470.82.01")
    assert sampler.status is not None and sampler.status.detail["driver"] == "470.82.01"


def _probe_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nvml_probe", ROOT / "scripts" / "nvml_probe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_lines_show_what_nvidia_smi_shows(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "comm").write_text("vllm\n")
    gpu = FakeGpu(uuid="GPU-a", memory_used=1536 * MiB, power_mw=71_250, compute=[FakeProcess(77, 1024 * MiB)])
    gpu.errors["nvmlDeviceGetTemperature"] = pynvml.NVMLError_NotSupported
    sampler = started(FakeNvml([gpu]))

    lines = _probe_module().describe(sampler.status, sampler.read([]), tmp_path)

    assert lines == [
        "nvml@gpu-1: ok - NVML: 1 GPU, driver 550.54.15, CUDA 12.4",
        "GPU 0: NVIDIA H100 80GB HBM3 GPU-a",
        "  memory      1536 MiB used of 81920 MiB",
        "  utilization gpu 0 %, memory 0 %",
        "  temperature n/a",
        "  power       71.25 W of 700.00 W enforced limit",
        "  driver      550.54.15, CUDA 12.4",
        "  processes   1",
        "    pid 77 (vllm): 1024 MiB",
    ]


def test_probe_exits_zero_without_a_driver_and_two_when_a_gpu_is_required() -> None:
    script = str(ROOT / "scripts" / "nvml_probe.py")
    plain = subprocess.run([sys.executable, script, "--json"], capture_output=True, text=True, timeout=60)
    if json.loads(plain.stdout)["status"]["ok"]:
        pytest.skip("a real NVIDIA driver is present on this machine")
    required = subprocess.run([sys.executable, script, "--require-gpu"], capture_output=True, text=True, timeout=60)

    assert plain.returncode == 0 and json.loads(plain.stdout)["gpus"] == []
    assert required.returncode == 2 and required.stdout.startswith("nvml@")
