"""What the fleet collectors read, before it is stored: plain frozen values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Whether a collector reached its source (`docker`, `nvml`, `engines`) on `host`, in words for the page."""

    kind: str
    host: str
    ok: bool
    message: str
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"version": "4.3.1"} or {"driver": "550.54"}

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.host}" if self.host else self.kind


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """A model-serving container as the Docker Engine API shows it now."""

    id: str
    name: str
    image: str
    version: str  # image tag, or the vLLM version label when the image carries one
    model: str  # what the container serves (`--model`, `vllm serve <model>`, or the label)
    status: str  # running | exited | restarting | paused | created | dead
    health: str  # healthy | unhealthy | starting | "" (no health check)
    started_at: datetime | None
    finished_at: datetime | None
    restart_count: int
    exit_code: int | None
    cpu_pct: float | None  # of one core, summed over cores (docker stats' figure)
    mem_bytes: int | None
    mem_limit_bytes: int | None
    ports: tuple[int, ...]  # host ports it listens on (published, or `--port` under host networking)
    deployment_id: int | None  # the deployment it serves (label, else matched by port)
    labels: dict[str, str] = field(default_factory=dict)
    pids: tuple[int, ...] = ()  # host pids of its processes, to map GPU processes to it


@dataclass(frozen=True, slots=True)
class ContainerEventInfo:
    """One Docker event of a fleet container (start, die, restart, health_status, ...)."""

    container_id: str
    container_name: str
    at: datetime
    action: str
    detail: str = ""
    deployment_id: int | None = None


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int
    used_bytes: int | None
    container_id: str = ""
    container_name: str = ""
    deployment_id: int | None = None
    model: str = ""


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU as NVML reports it."""

    uuid: str
    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_pct: float | None
    memory_utilization_pct: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    driver_version: str
    cuda_version: str
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineReading:
    """One scrape of a deployment's `/metrics`, reduced to what the pages and the router show.

    Rates (throughput, prefix-cache hit rate over the interval, latency quantiles over the interval) need
    an earlier scrape; the first one after a (re)start has them as None, except what the engine reports
    as gauges itself."""

    deployment_id: int
    ok: bool
    error: str | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    prefix_hit_rate: float | None = None  # 0..1
    prompt_tps: float | None = None
    generation_tps: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_p50_ms: float | None = None
    batch_tokens_mean: float | None = None
    preemptions: float | None = None
    models: tuple[str, ...] = ()

    def values(self) -> dict[str, float | None]:
        """The numeric readings by name (what a sample stores)."""
        return {
            "running": self.running,
            "waiting": self.waiting,
            "kv_cache_usage": self.kv_cache_usage,
            "prefix_hit_rate": self.prefix_hit_rate,
            "prompt_tps": self.prompt_tps,
            "generation_tps": self.generation_tps,
            "ttft_p50_ms": self.ttft_p50_ms,
            "ttft_p95_ms": self.ttft_p95_ms,
            "itl_p50_ms": self.itl_p50_ms,
            "itl_p95_ms": self.itl_p95_ms,
            "e2e_p50_ms": self.e2e_p50_ms,
            "batch_tokens_mean": self.batch_tokens_mean,
            "preemptions": self.preemptions,
        }
