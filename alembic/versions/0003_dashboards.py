"""dashboards: usage rollups per grain and dimension, request-log indexes, budgets, maintenance runs

Replaces `usage_minutes` with `usage_rollups` (minute, hour and day buckets; one dimension per row;
histograms as integer columns so increments are additive upserts). Existing request rows are rolled up
again from `requests`, so dashboards keep their history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

N_BUCKETS = 26
COUNTERS = [
    ("requests", sa.Integer()),
    ("errors", sa.Integer()),
    ("stream_requests", sa.Integer()),
    ("prompt_tokens", sa.Integer()),
    ("completion_tokens", sa.Integer()),
    ("cached_tokens", sa.Integer()),
    ("cost_usd", sa.Float()),
    ("latency_ms_sum", sa.Float()),
    ("ttfb_ms_sum", sa.Float()),
    ("ttfb_count", sa.Integer()),
    *[(f"lat_{i:02d}", sa.Integer()) for i in range(N_BUCKETS)],
    *[(f"ttfb_{i:02d}", sa.Integer()) for i in range(N_BUCKETS)],
]
REQUEST_INDEXES = [
    ("ix_requests_user_created", ["user_id", "created_at"]),
    ("ix_requests_team_created", ["team_id", "created_at"]),
    ("ix_requests_deployment_created", ["deployment_id", "created_at"]),
    ("ix_requests_endpoint_created", ["endpoint", "created_at"]),
    ("ix_requests_latency", ["latency_ms"]),
]


def _backfill() -> None:
    """Roll the stored request rows up again, in pages, with the application's own aggregation."""
    from llm_console.db.records import LogRecord
    from llm_console.db.rollups import aggregate, upsert_rows, upsert_sql

    conn = op.get_bind()
    sqlite_db = conn.dialect.name == "sqlite"
    cols = (
        "id, created_at, endpoint, alias, deployment_id, key_id, user_id, team_id, status, stream, "
        "prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, ttfb_ms"
    )
    last = ""
    while True:
        rows = conn.execute(
            sa.text(f"SELECT {cols} FROM requests WHERE id > :last ORDER BY id LIMIT 5000"), {"last": last}
        ).all()
        if not rows:
            return
        records = [LogRecord(**dict(r._mapping)) for r in rows]
        for rec in records:
            at = datetime.fromisoformat(rec.created_at) if isinstance(rec.created_at, str) else rec.created_at
            rec.created_at = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC text
            rec.stream = bool(rec.stream)
        params = upsert_rows(aggregate(records), sqlite_db)
        conn.exec_driver_sql(upsert_sql(conn.dialect.name), params)  # type: ignore[arg-type]
        last = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("grain", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
        sa.Column("dim", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        *[sa.Column(name, kind, nullable=False) for name, kind in COUNTERS],
        sa.UniqueConstraint("grain", "dim", "bucket", "value", name="uq_usage_rollups_key"),
    )
    op.create_table(
        "budgets",
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("daily_usd", sa.Float(), nullable=True),
        sa.Column("monthly_usd", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    )
    op.create_table(
        "maintenance_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenance_runs", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_runs_job", ["job"], unique=False)
        batch_op.create_index("ix_maintenance_runs_started_at", ["started_at"], unique=False)
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_dims", sa.Integer(), nullable=True))
        for name, cols in REQUEST_INDEXES:
            batch_op.create_index(name, cols, unique=False)
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    _backfill()
    with op.batch_alter_table("usage_minutes", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_minutes_bucket")
    op.drop_table("usage_minutes")


def downgrade() -> None:
    op.create_table(
        "usage_minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("ttfb_ms_sum", sa.Float(), nullable=False),
        sa.Column("latency_hist", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket", "alias", "deployment_id", "key_id", "team_id", "user_id"),
    )
    with op.batch_alter_table("usage_minutes", schema=None) as batch_op:
        batch_op.create_index("ix_usage_minutes_bucket", ["bucket"], unique=False)
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.drop_column("scopes")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        for name, _cols in REQUEST_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_column("embedding_dims")
    op.drop_index("ix_maintenance_runs_started_at", table_name="maintenance_runs")
    op.drop_index("ix_maintenance_runs_job", table_name="maintenance_runs")
    op.drop_table("maintenance_runs")
    op.drop_table("budgets")
    op.drop_table("usage_rollups")
