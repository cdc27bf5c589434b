"""fleet: hourly up time per deployment, and series read by tier

`fleet_uptime` holds, per deployment and UTC hour, the seconds any of its containers was running (what the
GPU-hour cost reads instead of a month of container samples). `fleet_samples` is read per subject and tier
(raw, 5-minute, hour), so its subject index now has `bucket_s` before `at`; the deployment index served only
the cost's sample scan and is dropped.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_uptime",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("up_s", sa.Float(), nullable=False),
        sa.Column("up_to_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", "hour"),
    )
    with op.batch_alter_table("fleet_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_samples_subject_at")
        batch_op.drop_index("ix_fleet_samples_dep_at")
        batch_op.create_index("ix_fleet_samples_subject_at", ["kind", "subject", "bucket_s", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fleet_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_samples_subject_at")
        batch_op.create_index("ix_fleet_samples_subject_at", ["kind", "subject", "at"], unique=False)
        batch_op.create_index("ix_fleet_samples_dep_at", ["deployment_id", "at"], unique=False)
    op.drop_table("fleet_uptime")
