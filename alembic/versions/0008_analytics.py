"""analytics: request attribution (end user, session, tags), the limiter's refusals, feedback scores

`requests` gains `end_user`, `session_id`, `tags` (what the caller sent in the X-LLMC-* headers or the
OpenAI `user`/`metadata` fields) and `throttle` ("<entity>:<id>|<limit>" on a 429 from the limiter), with
indexes for the session and end-user lookups. `feedback_scores` holds numeric or categorical scores given to
a request or a session.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_user", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("tags", sqlmodel.sql.sqltypes.AutoString(length=600), nullable=True))
        batch_op.add_column(sa.Column("throttle", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.create_index("ix_requests_session_created", ["session_id", "created_at"], unique=False)
        batch_op.create_index("ix_requests_end_user_created", ["end_user", "created_at"], unique=False)
    op.create_table(
        "feedback_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("request_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_scores_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_feedback_request", ["request_id"], unique=False)
        batch_op.create_index("ix_feedback_session", ["session_id"], unique=False)
        batch_op.create_index("ix_feedback_alias_created", ["alias", "created_at"], unique=False)
        batch_op.create_index("ix_feedback_name_created", ["name", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("feedback_scores")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_end_user_created")
        batch_op.drop_index("ix_requests_session_created")
        batch_op.drop_column("throttle")
        batch_op.drop_column("tags")
        batch_op.drop_column("session_id")
        batch_op.drop_column("end_user")
