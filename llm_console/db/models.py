"""SQLModel tables. Timestamps are timezone-aware UTC; money is USD as float."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import llm_console.db.alert_tables  # (registers alert_rules and alert_events)
import llm_console.db.fleet_tables  # (registers the fleet tables)
import llm_console.db.prompt_tables  # (registers prompts, prompt_versions and prompt_labels)
import llm_console.db.telemetry_tables  # (registers the telemetry export tables)
import llm_console.db.tier_tables  # noqa: F401  (registers limit tiers, spend resets and budget increases)
from llm_console.db import rollups  # noqa: F401  (registers usage_rollups in the same metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(index: bool = False, nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str = Field(default="", max_length=200)
    password_hash: str | None = Field(default=None, max_length=200)
    role: str = Field(default="viewer", max_length=20)
    is_active: bool = True
    oidc_issuer: str | None = Field(default=None, max_length=500)
    oidc_subject: str | None = Field(default=None, max_length=255)
    # "person" signs in; "service" is a service account: it never signs in and exists to own keys.
    kind: str = Field(default="person", max_length=20)
    last_login_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    description: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    team_id: int = Field(foreign_key="teams.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(default="member", max_length=20)


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser; the cookie holds the token, the table only its hash."""

    __tablename__ = "sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)
    client_ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class Provider(SQLModel, table=True):
    """An upstream account: kind, base URL and an encrypted credential."""

    __tablename__ = "providers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    kind: str = Field(default="openai", max_length=40)
    api_base: str = Field(max_length=1000)
    api_key_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    created_at: datetime = _ts()


class Deployment(SQLModel, table=True):
    """One model served by one provider; aliases route to deployments."""

    __tablename__ = "deployments"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    provider_id: int = Field(foreign_key="providers.id", index=True, ondelete="CASCADE")
    model: str = Field(max_length=300)
    enabled: bool = True
    max_concurrency: int | None = None
    # Per-deployment overrides: timeouts ({"connect_s", "first_byte_s", "idle_s", "total_s"}), api_version (Azure).
    # Self-hosted: gpu_hour_usd (USD per hour, all its GPUs), metrics_url ("off" or a URL on the provider's host).
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # What the deployment's own /v1/models said about this model (e.g. vLLM's max_model_len, owned_by, root).
    discovered: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class DeploymentHealth(SQLModel, table=True):
    """The last active check of a deployment: available / loading / error, when, how fast, the last error."""

    __tablename__ = "deployment_health"

    deployment_id: int = Field(foreign_key="deployments.id", primary_key=True, ondelete="CASCADE")
    status: str = Field(default="unknown", max_length=20)  # available | loading | error | unknown
    checked_at: datetime | None = _ts(nullable=True)
    latency_ms: float | None = None
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_error_at: datetime | None = _ts(nullable=True)


class ModelAlias(SQLModel, table=True):
    """The public model name clients ask for."""

    __tablename__ = "model_aliases"

    id: int | None = Field(default=None, primary_key=True)
    alias: str = Field(unique=True, max_length=300)
    strategy: str = Field(default="weighted", max_length=40)
    # Routing policy: {"fallbacks": [alias, ...], "retries": n, "backoff_ms": ms, "retry_after_cap_s": s,
    # "timeouts": {...}}; anything missing takes the gateway-wide setting.
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Catalog metadata edited by operators: {"type", "description", "size", "quantization", "context_length",
    # "hf_repo", "capabilities": {...}, "version", "deprecated", "deprecation_note", "sunset_date"}.
    info: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class AliasDeployment(SQLModel, table=True):
    __tablename__ = "alias_deployments"

    alias_id: int = Field(foreign_key="model_aliases.id", primary_key=True, ondelete="CASCADE")
    deployment_id: int = Field(foreign_key="deployments.id", primary_key=True, ondelete="CASCADE")
    weight: int = Field(default=1, ge=0)


class ModelPrice(SQLModel, table=True):
    """USD per million tokens for one upstream model name."""

    __tablename__ = "model_prices"

    model: str = Field(primary_key=True, max_length=300)
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cached_input_per_mtok: float = 0.0
    updated_at: datetime = _ts()


class VirtualKey(SQLModel, table=True):
    """A gateway key. Only the SHA-256 of the secret and a short display prefix are kept."""

    __tablename__ = "virtual_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(unique=True, index=True, max_length=64)
    prefix: str = Field(max_length=32)
    name: str = Field(default="", max_length=200)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    team_id: int | None = Field(default=None, foreign_key="teams.id", ondelete="SET NULL")
    allowed_aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Extra rights beyond calling models: "analytics" lets the key read /api/v1/analytics (an admin key).
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    expires_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    # The key this one replaced when it was rotated (the old key's revocation is audited with it).
    rotated_from_id: int | None = None
    created_by: str = Field(default="", max_length=320)
    created_at: datetime = _ts()


class RequestLog(SQLModel, table=True):
    """One row per gateway call, written in batches by the log writer."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_alias_created", "alias", "created_at"),
        Index("ix_requests_key_created", "key_id", "created_at"),
        Index("ix_requests_status_created", "status", "created_at"),
        Index("ix_requests_user_created", "user_id", "created_at"),
        Index("ix_requests_team_created", "team_id", "created_at"),
        Index("ix_requests_deployment_created", "deployment_id", "created_at"),
        Index("ix_requests_endpoint_created", "endpoint", "created_at"),
        Index("ix_requests_latency", "latency_ms"),
        Index("ix_requests_session_created", "session_id", "created_at"),
        Index("ix_requests_end_user_created", "end_user", "created_at"),
        Index("ix_requests_prompt_version_created", "prompt_version_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    created_at: datetime = _ts(index=True)
    endpoint: str = Field(max_length=100)
    alias: str = Field(default="", max_length=300)
    model: str = Field(default="", max_length=300)
    deployment_id: int | None = None
    key_id: int | None = None
    user_id: int | None = None
    team_id: int | None = None
    status_code: int = 200
    status: str = Field(default="ok", max_length=20)
    error_type: str | None = Field(default=None, max_length=100)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    request_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    client_ip: str = Field(default="", max_length=64)
    attempts: int = 1
    embedding_dims: int | None = None
    # Attribution the caller sends (headers X-LLMC-User / X-LLMC-Session-Id / X-LLMC-Tags, or the OpenAI
    # `user` and `metadata` fields): the application's own end user, its session, comma-joined sorted tags.
    end_user: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    tags: str | None = Field(default=None, max_length=600)
    # "<entity>:<id>|<limit>" when the limiter refused the call (429), e.g. "key:12|rpm"
    throttle: str | None = Field(default=None, max_length=120)
    # the prompt_versions row the gateway rendered the request from (a request that referenced a prompt)
    prompt_version_id: int | None = None


class FeedbackScore(SQLModel, table=True):
    """A score given to one request or one session: numeric (`value`) or categorical (`category`), with an
    optional comment. The scored request's alias and deployment are copied in when known, so analytics group
    scores by model without joining the request log."""

    __tablename__ = "feedback_scores"
    __table_args__ = (
        Index("ix_feedback_request", "request_id"),
        Index("ix_feedback_session", "session_id"),
        Index("ix_feedback_alias_created", "alias", "created_at"),
        Index("ix_feedback_name_created", "name", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts(index=True)
    request_id: str | None = Field(default=None, max_length=36)
    session_id: str | None = Field(default=None, max_length=200)
    name: str = Field(max_length=100)
    value: float | None = None
    category: str | None = Field(default=None, max_length=100)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    source: str = Field(default="api", max_length=20)  # api (a virtual key) | console (a signed-in user)
    key_id: int | None = None
    user_id: int | None = None  # the console user who gave it (source console)
    alias: str = Field(default="", max_length=300)
    deployment_id: int | None = None
    request_at: datetime | None = _ts(nullable=True)
    prompt_version_id: int | None = None  # copied from the scored request, like alias and deployment


class NetworkAllow(SQLModel, table=True):
    """An admin's exception to the SSRF guard: a CIDR, an IP or a host name (`*.suffix` allowed)."""

    __tablename__ = "network_allowlist"

    id: int | None = Field(default=None, primary_key=True)
    entry: str = Field(unique=True, max_length=300)
    note: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=320)
    created_at: datetime = _ts()


class Span(SQLModel, table=True):
    """One timed step of a request (auth, routing, upstream attempt, ...)."""

    __tablename__ = "spans"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, max_length=36)
    name: str = Field(max_length=100)
    start_ms: float = 0.0
    duration_ms: float = 0.0
    status: str = Field(default="ok", max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditEvent(SQLModel, table=True):
    """Who changed what, with before and after (secrets masked)."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts(index=True)
    actor: str = Field(max_length=320)
    action: str = Field(max_length=100)
    target_type: str = Field(max_length=100)
    target_id: str = Field(default="", max_length=100)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Budget(SQLModel, table=True):
    """A spend limit in USD for a user, team or key over a UTC day or month (0 means no limit)."""

    __tablename__ = "budgets"

    entity_type: str = Field(primary_key=True, max_length=10)  # user | team | key
    entity_id: int = Field(primary_key=True)
    daily_usd: float | None = None
    monthly_usd: float | None = None
    updated_at: datetime = _ts()


class MaintenanceRun(SQLModel, table=True):
    """One run of a scheduled job (retention cleanup): when, how long, what it removed."""

    __tablename__ = "maintenance_runs"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=50, index=True)
    started_at: datetime = _ts(index=True)
    duration_ms: float = 0.0
    status: str = Field(default="ok", max_length=20)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RateLimit(SQLModel, table=True):
    """Request and token limits for a user, team or key per minute and per UTC day (None means no limit)."""

    __tablename__ = "rate_limits"

    entity_type: str = Field(primary_key=True, max_length=10)  # user | team | key
    entity_id: int = Field(primary_key=True)
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    updated_at: datetime = _ts()


class Invitation(SQLModel, table=True):
    """A sign-up link: the URL holds a random token, the table its hash; used once, before it expires."""

    __tablename__ = "invitations"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    email: str = Field(index=True, max_length=320)
    role: str = Field(default="member", max_length=20)
    team_id: int | None = Field(default=None, foreign_key="teams.id", ondelete="CASCADE")
    team_role: str = Field(default="member", max_length=20)
    created_by: str = Field(default="", max_length=320)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    accepted_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
