"""Application settings, read from `LLMC_*` environment variables (and a `.env` file).

Every field is documented in docs/settings.md; a test keeps the two in step.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from llm_console.auth.roles import ROLE_RANK

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "placeholder", "dev", "test"})
SECRET_KEY_FILE = "secret_key"


class Settings(BaseSettings):
    """Every knob the console and the gateway read at start-up."""

    model_config = SettingsConfigDict(env_prefix="LLMC_", env_file=".env", extra="ignore")

    env: Literal["dev", "prod"] = "prod"
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = Field(default="llmc", pattern=r"^[A-Za-z0-9_.:-]{1,40}$")
    leader_ttl_s: float = Field(default=30.0, ge=1)
    console_workers: int = Field(default=0, ge=0, le=64)
    secret_key: SecretStr | None = None
    admin_email: str = "admin@localhost"
    admin_password: SecretStr | None = None
    demo: bool = False
    demo_upstream_port: int = 8001
    demo_traffic_rate: float = 0.5
    port: int = 3000
    max_request_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    log_body_max_bytes: int = Field(default=16 * 1024, ge=0)
    log_queue_size: int = Field(default=10_000, ge=10)
    log_batch_size: int = Field(default=500, ge=1)
    log_flush_interval_s: float = Field(default=0.5, gt=0)
    key_cache_ttl_s: float = Field(default=10.0, ge=0)
    route_refresh_interval_s: float = Field(default=5.0, gt=0)
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    upstream_first_byte_timeout_s: float = Field(default=120.0, gt=0)
    upstream_idle_timeout_s: float = Field(default=60.0, gt=0)
    upstream_timeout_s: float = Field(default=600.0, gt=0)
    upstream_max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    upstream_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    retry_attempts: int = Field(default=2, ge=0, le=10)
    retry_backoff_ms: float = Field(default=100.0, ge=0)
    retry_after_cap_s: float = Field(default=10.0, ge=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    health_check_interval_s: float = Field(default=30.0, ge=0)
    gc_freeze: bool = True
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    retention_request_days: float = Field(default=30.0, gt=0)
    retention_body_days: float = Field(default=7.0, gt=0)
    retention_minute_rollup_days: float = Field(default=7.0, ge=2)
    retention_rollup_days: float = Field(default=400.0, gt=0)
    retention_feedback_days: float = Field(default=400.0, gt=0)
    retention_interval_s: float = Field(default=3600.0, ge=0)
    monthly_budget_usd: float = Field(default=0.0, ge=0)
    budget_timezone: str = "UTC"
    limits_backend: Literal["auto", "memory", "redis"] = "auto"
    limits_redis_failure: Literal["local", "open", "closed"] = "local"
    limits_completion_estimate_tokens: int = Field(default=1024, ge=0)
    spend_admin_role: Literal["admin", "operator"] = "admin"
    dashboard_live_interval_s: float = Field(default=5.0, ge=1)
    alert_interval_s: float = Field(default=60.0, ge=0)
    fleet_enabled: bool = True
    fleet_docker_url: str = ""
    fleet_label: str = "llm-console.fleet"
    fleet_images: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*vllm*"])
    fleet_interval_s: float = Field(default=10.0, ge=0.2)
    fleet_engine_interval_s: float = Field(default=5.0, ge=0.2)
    fleet_engine_stale_s: float = Field(default=20.0, gt=0)
    fleet_raw_retention_hours: float = Field(default=24.0, ge=1)
    fleet_retention_days: float = Field(default=14.0, gt=0)
    gpu_cost_allocation: Literal["tokens", "busy_time"] = "tokens"
    langfuse_host: str = ""
    langfuse_public_key: str = ""
    langfuse_secret_key: SecretStr | None = None
    langfuse_include_bodies: bool = True
    langfuse_sample_rate: float = Field(default=1.0, ge=0, le=1)
    otel_exporter_endpoint: str = ""
    otel_exporter_headers: SecretStr | None = None
    otel_service_name: str = Field(default="llm-console", min_length=1, max_length=200)
    otel_include_bodies: bool = False
    otel_sample_rate: float = Field(default=1.0, ge=0, le=1)
    telemetry_queue_size: int = Field(default=2000, ge=10)
    telemetry_process: bool = True  # export from a child process (its own GIL), not a thread of the gateway
    telemetry_export_timeout_s: float = Field(default=10.0, gt=0, le=300)
    telemetry_status_interval_s: float = Field(default=5.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "llm-console@localhost"
    smtp_starttls: bool = True
    session_ttl_hours: float = Field(default=12.0, gt=0)
    cookie_secure: bool = False
    public_url: str | None = None
    local_login_enabled: bool = True
    invite_ttl_hours: float = Field(default=72.0, gt=0)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    oidc_groups_claim: str = "groups"
    oidc_role_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    oidc_default_role: Literal["admin", "operator", "member", "viewer", "none"] = "viewer"
    oidc_auto_provision: bool = True
    oidc_display_name: str = "Single sign-on"
    oidc_redirect_url: str | None = None

    @field_validator("upstream_allowlist", "fleet_images", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Environment values are comma-separated: `LLMC_UPSTREAM_ALLOWLIST=10.0.0.0/8,vllm.internal`."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oidc_role_map", mode="before")
    @classmethod
    def _split_map(cls, value: object) -> object:
        """`LLMC_OIDC_ROLE_MAP=llm-admins=admin,ml-ops=operator`: group=role pairs, comma-separated."""
        if not isinstance(value, str):
            return value
        out: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            group, sep, role = part.rpartition("=")
            if not sep or not group.strip() or role.strip() not in ROLE_RANK:
                raise ValueError(f"LLMC_OIDC_ROLE_MAP entry {part.strip()!r} is not group=admin|operator|member|viewer")
            out[group.strip()] = role.strip()
        return out

    @field_validator("budget_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        """An IANA time zone name (`Europe/Berlin`); budgets and daily limits reset at its midnight."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"LLMC_BUDGET_TIMEZONE {value[:60]!r} is not an IANA time zone such as Europe/Berlin"
            ) from None
        return value

    @property
    def uses_redis_limits(self) -> bool:
        """Counters for limits and budgets live in Redis (shared by every replica) rather than in this process."""
        return self.limits_backend == "redis" or (self.limits_backend == "auto" and bool(self.redis_url))

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'llm_console.db').as_posix()}"
        if self.limits_backend == "redis" and not self.redis_url:
            raise ValueError("LLMC_LIMITS_BACKEND=redis needs LLMC_REDIS_URL (or use auto or memory)")
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if self.env != "dev" and (value.lower() in PLACEHOLDER_SECRETS or len(value) < 16):
                raise ValueError(
                    "LLMC_SECRET_KEY is a placeholder or shorter than 16 characters; "
                    "unset it to have one generated, or set a real random value"
                )
        return self

    def resolved_secret_key(self) -> str:
        """The secret key: the configured one, else one generated once and kept under data_dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
