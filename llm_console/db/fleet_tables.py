"""The fleet's tables: containers, GPUs and engines as last seen, container events, and sampled series.

Registered in the shared metadata by `llm_console.db.models` (which imports this module); nothing here
imports models.py. The collectors write these (one process across workers and replicas, per host for
containers and GPUs); the fleet pages, the engine-aware router and the GPU cost allocation read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=_now if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class FleetSource(SQLModel, table=True):
    """Whether one collector reached its source on one host: `docker@host`, `nvml@host`, `engines`."""

    __tablename__ = "fleet_sources"

    name: str = Field(primary_key=True, max_length=250)
    kind: str = Field(max_length=20)  # docker | nvml | engines
    host: str = Field(default="", max_length=200)
    ok: bool = False
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    checked_at: datetime = _ts()


class FleetContainer(SQLModel, table=True):
    """A model-serving container as last seen through the Docker Engine API (kept after removal, marked)."""

    __tablename__ = "fleet_containers"

    id: str = Field(primary_key=True, max_length=80)
    host: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=200)
    image: str = Field(default="", max_length=300)
    version: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=300)
    deployment_id: int | None = Field(default=None, index=True)
    status: str = Field(default="unknown", max_length=20)  # running | exited | restarting | paused | ... | removed
    health: str = Field(default="", max_length=20)  # healthy | unhealthy | starting | "" (no health check)
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    restart_count: int = 0
    exit_code: int | None = None
    cpu_pct: float | None = None
    mem_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    mem_limit_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ports: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    gpu_uuids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_seen: datetime = _ts()
    seen_at: datetime = _ts()
    removed_at: datetime | None = _ts(nullable=True)


class FleetContainerEvent(SQLModel, table=True):
    """One thing that happened to a container (start, die, restart, health, ready, ...), for timelines."""

    __tablename__ = "fleet_container_events"
    __table_args__ = (
        UniqueConstraint("container_id", "at", "action", name="uq_fleet_container_events"),
        Index("ix_fleet_container_events_dep_at", "deployment_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    container_id: str = Field(max_length=80, index=True)
    container_name: str = Field(default="", max_length=200)
    deployment_id: int | None = None
    at: datetime = _ts(index=True)
    action: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)


class FleetGpu(SQLModel, table=True):
    """One GPU as NVML last reported it, with the processes on it mapped to containers and deployments."""

    __tablename__ = "fleet_gpus"

    uuid: str = Field(primary_key=True, max_length=100)
    host: str = Field(default="", max_length=200)
    index: int = 0
    name: str = Field(default="", max_length=200)
    memory_used_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    memory_total_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    utilization_pct: float | None = None
    memory_utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    driver_version: str = Field(default="", max_length=50)
    cuda_version: str = Field(default="", max_length=20)
    # [{"pid", "used_bytes", "container_id", "container_name", "deployment_id", "model"}]
    processes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    seen_at: datetime = _ts()


class FleetEngine(SQLModel, table=True):
    """The last scrape of one deployment's Prometheus `/metrics` (the engine-aware router reads this)."""

    __tablename__ = "fleet_engines"

    deployment_id: int = Field(primary_key=True)
    scraped_at: datetime = _ts()
    ok: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    # prefix_hit_rate, prompt_tps, generation_tps, ttft_p50_ms, ttft_p95_ms, itl_p50_ms, itl_p95_ms,
    # e2e_p50_ms, batch_tokens_mean, preemptions, models
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_ok_at: datetime | None = _ts(nullable=True)


class FleetSample(SQLModel, table=True):
    """One point of a fleet series: raw (`bucket_s` 0), or the average of a 5-minute (300) or hour (3600) bucket.

    Averages are made as soon as their bucket is complete, so for recent times a series exists at every tier;
    a reader picks one tier per stretch of time (see `fleet.series`)."""

    __tablename__ = "fleet_samples"
    __table_args__ = (
        Index("ix_fleet_samples_subject_at", "kind", "subject", "bucket_s", "at"),
        Index("ix_fleet_samples_bucket_at", "bucket_s", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # gpu | container | engine
    subject: str = Field(max_length=100)  # GPU uuid, container id, deployment id
    deployment_id: int | None = None
    at: datetime = _ts()
    bucket_s: int = 0
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FleetUptime(SQLModel, table=True):
    """Seconds of one UTC hour during which any container of a deployment was running (GPU-hour cost).

    Written by `store.save_containers` each round: the time since the previous round, at most twice the
    interval, for every deployment that had a running container then. `up_to_s` is the end of the latest
    second counted, from the hour's start, so rounds of several hosts overlapping in time count once."""

    __tablename__ = "fleet_uptime"

    deployment_id: int = Field(primary_key=True)
    hour: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    up_s: float = 0.0
    up_to_s: float = 0.0
