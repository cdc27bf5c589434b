"""Check the NVML GPU sampler against a real NVIDIA driver: `python scripts/nvml_probe.py [--json] [--require-gpu]`.

Prints the sampler's status and every GPU it reads (real `pynvml`, no containers), as lines or as JSON. Exits 0
even without a driver, printing the plain status; with `--require-gpu`, exits 2 when NVML cannot start or
reads no GPU, so a GPU machine's check fails loudly.

Compare with nvidia-smi on the same machine, run right after:

- `nvidia-smi --query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu,utilization.memory,
  temperature.gpu,power.draw,enforced.power.limit,driver_version --format=csv`: index, uuid and name match
  exactly; memory in MiB (the probe prints MiB too) matches when the driver has the v2 memory call (R510+),
  older drivers count reserved memory as used; utilization, temperature and power are instantaneous and
  drift a little between the two calls; the power limit and the driver version match exactly.
- the header of plain `nvidia-smi`: "Driver Version" and "CUDA Version" match the status line.
- `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv`: the same pids on the same GPUs
  with the same MiB. nvidia-smi lists compute processes only; the probe adds graphics ones. Inside a
  container without the host's pid namespace NVML's pids are host pids: pass the host's /proc
  (`--proc-root /host/proc`) for the process names.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a bare checkout on a GPU machine too

from llm_console.fleet.gpus import NvmlSampler
from llm_console.fleet.types import GpuInfo, SourceStatus

MiB = 1024**2


def _number(value: float | None, unit: str, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _command(proc_root: Path, pid: int) -> str:
    try:
        return (proc_root / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def describe(status: SourceStatus, gpus: list[GpuInfo], proc_root: Path) -> list[str]:
    """The status and every GPU as lines a person compares with nvidia-smi's output."""
    lines = [f"{status.name}: {'ok' if status.ok else 'unavailable'} - {status.message}"]
    for gpu in gpus:
        lines += [
            f"GPU {gpu.index}: {gpu.name} {gpu.uuid}",
            f"  memory      {gpu.memory_used_bytes // MiB} MiB used of {gpu.memory_total_bytes // MiB} MiB",
            f"  utilization gpu {_number(gpu.utilization_pct, '%')}, memory {_number(gpu.memory_utilization_pct, '%')}",
            f"  temperature {_number(gpu.temperature_c, 'C')}",
            f"  power       {_number(gpu.power_w, 'W', 2)} of {_number(gpu.power_limit_w, 'W', 2)} enforced limit",
            f"  driver      {gpu.driver_version or 'n/a'}, CUDA {gpu.cuda_version or 'n/a'}",
            f"  processes   {len(gpu.processes)}",
        ]
        for proc in gpu.processes:
            used = "n/a" if proc.used_bytes is None else f"{proc.used_bytes // MiB} MiB"
            lines.append(f"    pid {proc.pid} ({_command(proc_root, proc.pid)}): {used}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    parser.add_argument("--require-gpu", action="store_true", help="exit 2 when NVML cannot start or sees no GPU")
    parser.add_argument("--host", default=socket.gethostname(), help="host name for the status (default: this one)")
    parser.add_argument("--proc-root", type=Path, default=Path("/proc"), help="the host's /proc (default: /proc)")
    args = parser.parse_args(argv)

    sampler = NvmlSampler(host=args.host, proc_root=args.proc_root)
    status = sampler.start()
    try:
        gpus = sampler.read([])
    finally:
        sampler.stop()

    if args.json:
        print(json.dumps({"status": asdict(status), "gpus": [asdict(g) for g in gpus]}, indent=2))
    else:
        print("\n".join(describe(status, gpus, args.proc_root)))
    if args.require_gpu and not (status.ok and gpus):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
