"""Telemetry export: each sink's configuration as an admin saved it, and its status shared by every process.

Registered in the shared metadata by `llm_console.db.models` (which imports this module); nothing here
imports models.py. Secrets (the Langfuse secret key, the OTLP header values) are stored only as SecretBox
ciphertext; the header names are kept in clear so the console can list them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=_now if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class TelemetrySink(SQLModel, table=True):
    """One export target as saved on the Telemetry page; without a row, the environment's defaults apply."""

    __tablename__ = "telemetry_sinks"

    name: str = Field(primary_key=True, max_length=20)  # langfuse | otlp
    enabled: bool = False
    endpoint: str = Field(default="", max_length=2000)  # the Langfuse host, or the OTLP traces URL
    public_key: str = Field(default="", max_length=200)
    secret_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    headers_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    header_names: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    include_bodies: bool = False
    sample_rate: float = 1.0
    service_name: str = Field(default="", max_length=200)
    updated_at: datetime = _ts()
    updated_by: str = Field(default="", max_length=320)


class TelemetryStatus(SQLModel, table=True):
    """How one sink's export went, summed over every process (each adds its counts every few seconds)."""

    __tablename__ = "telemetry_status"

    sink: str = Field(primary_key=True, max_length=20)
    exported: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    dropped: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_ok_at: datetime | None = _ts(nullable=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    last_error_at: datetime | None = _ts(nullable=True)
