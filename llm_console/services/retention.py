"""The scheduled retention cleanup: a loop in the console's lifespan, at most one run per interval
across every worker and replica (the last recorded run decides)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.retention import RetentionPolicy, RetentionRun, last_runs, run_cleanup
from llm_console.settings import Settings

log = logging.getLogger("llm_console.retention")
FIRST_RUN_DELAY_S = 60.0


def policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        request_days=settings.retention_request_days,
        body_days=settings.retention_body_days,
        minute_rollup_days=settings.retention_minute_rollup_days,
        rollup_days=settings.retention_rollup_days,
        feedback_days=settings.retention_feedback_days,
    )


def due(engine: Engine, interval_s: float, now: datetime) -> bool:
    """True when no run was recorded in the last `interval_s` (another worker may have just run it)."""
    runs = last_runs(engine, limit=1)
    return not runs or now - runs[0].started_at >= timedelta(seconds=interval_s * 0.9)


def cleanup_if_due(engine: Engine, settings: Settings, now: datetime | None = None) -> RetentionRun | None:
    now = now or datetime.now(UTC)
    if not due(engine, settings.retention_interval_s, now):
        return None
    run = run_cleanup(engine, policy(settings), now)
    log.info(
        "retention cleanup %s in %.0f ms: %d requests, %d spans, %d rollups, %d feedback scores removed, "
        "%d bodies cleared",
        run.status,
        run.duration_ms,
        run.requests,
        run.spans,
        run.rollups,
        run.feedback,
        run.bodies,
    )
    return run


async def retention_loop(engine: Engine, settings: Settings) -> None:
    """Run the cleanup every `retention_interval_s` (0 disables it); failures are recorded and retried."""
    if settings.retention_interval_s <= 0:
        return
    await asyncio.sleep(min(FIRST_RUN_DELAY_S, settings.retention_interval_s))
    while True:
        try:
            await asyncio.to_thread(cleanup_if_due, engine, settings)
        except Exception as exc:  # the database may be away; try again next round
            log.warning("retention cleanup could not run: %s", type(exc).__name__)
        await asyncio.sleep(settings.retention_interval_s)
