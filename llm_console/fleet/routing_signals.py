"""What the gateway's engine-aware strategy reads from the fleet tables (a tiny query, no ORM objects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from llm_console.db.fleet_tables import FleetEngine
from llm_console.db.queries.filters import utc


def fresh_engine_rows(engine: Engine, stale_after_s: float) -> list[tuple[int, float, float, float, float]]:
    """(deployment id, waiting, running, KV-cache use, age in seconds) of every engine scraped successfully
    within `stale_after_s`."""
    now = datetime.now(UTC)
    query = select(
        col(FleetEngine.deployment_id),
        col(FleetEngine.waiting),
        col(FleetEngine.running),
        col(FleetEngine.kv_cache_usage),
        col(FleetEngine.scraped_at),
    ).where(
        col(FleetEngine.ok).is_(True),
        col(FleetEngine.scraped_at) >= now - timedelta(seconds=stale_after_s),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        (int(dep), float(w or 0.0), float(r or 0.0), float(kv or 0.0), max(0.0, (now - utc(at)).total_seconds()))
        for dep, w, r, kv, at in rows
    ]
