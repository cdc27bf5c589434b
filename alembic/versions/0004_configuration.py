"""configuration: catalog metadata, deployment health, rate limits, invitations, service accounts

Adds what the configuration, catalog, keys and organization pages edit: `model_aliases.info` (catalog
metadata), `deployments.discovered` (what /v1/models said), `providers.enabled`, `teams.description`,
`users.kind` and `users.last_login_at`, `virtual_keys.rotated_from_id` and `created_by`, and three
tables: `deployment_health`, `rate_limits` and `invitations`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default="person"
            )
        )
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default="")
        )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discovered", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("info", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rotated_from_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False, server_default="")
        )
    op.create_table(
        "deployment_health",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("rpd", sa.Integer(), nullable=True),
        sa.Column("tpd", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("team_role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_email", ["email"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_invitations_email", table_name="invitations")
    op.drop_table("invitations")
    op.drop_table("rate_limits")
    op.drop_table("deployment_health")
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("rotated_from_id")
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.drop_column("info")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("discovered")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_column("enabled")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_column("description")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("kind")
