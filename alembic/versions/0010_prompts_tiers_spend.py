"""prompts, limit tiers, spend administration

`prompts`, `prompt_versions` (immutable, numbered per prompt) and `prompt_labels` (movable names for a version);
`requests.prompt_version_id` and `feedback_scores.prompt_version_id` record which version a call was rendered
from. `limit_tiers` (named presets of rate limits and budgets) and `tier_assignments`; `spend_resets` and
`budget_increases` (an admin's reset of a budget's count for the current period, and temporary increases).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 19:36:50
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_increases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budget_increases", schema=None) as batch_op:
        batch_op.create_index("ix_budget_increases_entity", ["entity_type", "entity_id", "expires_at"], unique=False)
        batch_op.create_index("ix_budget_increases_expires", ["expires_at"], unique=False)

    op.create_table(
        "limit_tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("rpd", sa.Integer(), nullable=True),
        sa.Column("tpd", sa.Integer(), nullable=True),
        sa.Column("daily_usd", sa.Float(), nullable=True),
        sa.Column("monthly_usd", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "spend_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("period_id", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_before_usd", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("spend_resets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_spend_resets_entity", ["entity_type", "entity_id", "period", "reset_at"], unique=False
        )

    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("commit_message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_prompt_version"),
    )
    with op.batch_alter_table("prompt_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_versions_prompt_id"), ["prompt_id"], unique=False)

    op.create_table(
        "tier_assignments",
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["tier_id"],
            ["limit_tiers.id"],
        ),
        sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    )
    with op.batch_alter_table("tier_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_tier_assignments_tier", ["tier_id"], unique=False)

    op.create_table(
        "prompt_labels",
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["prompt_versions.id"],
        ),
        sa.PrimaryKeyConstraint("prompt_id", "label"),
    )
    with op.batch_alter_table("prompt_labels", schema=None) as batch_op:
        batch_op.create_index("ix_prompt_labels_version", ["version_id"], unique=False)

    with op.batch_alter_table("feedback_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_version_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_version_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_requests_prompt_version_created", ["prompt_version_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_prompt_version_created")
        batch_op.drop_column("prompt_version_id")

    with op.batch_alter_table("feedback_scores", schema=None) as batch_op:
        batch_op.drop_column("prompt_version_id")

    with op.batch_alter_table("prompt_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_prompt_labels_version")

    op.drop_table("prompt_labels")
    with op.batch_alter_table("tier_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_assignments_tier")

    op.drop_table("tier_assignments")
    with op.batch_alter_table("prompt_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_versions_prompt_id"))

    op.drop_table("prompt_versions")
    with op.batch_alter_table("spend_resets", schema=None) as batch_op:
        batch_op.drop_index("ix_spend_resets_entity")

    op.drop_table("spend_resets")
    op.drop_table("prompts")
    op.drop_table("limit_tiers")
    with op.batch_alter_table("budget_increases", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_increases_expires")
        batch_op.drop_index("ix_budget_increases_entity")

    op.drop_table("budget_increases")
