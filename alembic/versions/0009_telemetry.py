"""telemetry: Langfuse and OTLP export configuration, and the export status every process adds to

`telemetry_sinks` holds what an admin saved on the Telemetry page (secrets as SecretBox ciphertext); without
a row the `LLMC_LANGFUSE_*` / `LLMC_OTEL_*` environment defaults apply. `telemetry_status` has one row per
sink, created here, to which each process adds its exported and dropped counts and its last success or error.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemetry_sinks",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("headers_encrypted", sa.Text(), nullable=True),
        sa.Column("header_names", sa.JSON(), nullable=False),
        sa.Column("include_bodies", sa.Boolean(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("service_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    status = op.create_table(
        "telemetry_status",
        sa.Column("sink", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("exported", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sink"),
    )
    op.bulk_insert(
        status,
        [{"sink": sink, "exported": 0, "dropped": 0, "last_error": ""} for sink in ("langfuse", "otlp")],
    )


def downgrade() -> None:
    op.drop_table("telemetry_status")
    op.drop_table("telemetry_sinks")
