"""Usage figures for the console, cached briefly so many open tabs cost one query."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.queries import overview

CACHE_TTL_S = 1.0


@dataclass(frozen=True, slots=True)
class OverviewData:
    summary: overview.Summary
    per_minute: list[overview.Point]
    latest: list[overview.RecentRequest]
    as_of: datetime


def _load(engine: Engine) -> OverviewData:
    now = datetime.now(UTC)
    return OverviewData(
        summary=overview.summary(engine, now - timedelta(hours=24)),
        per_minute=overview.requests_per_minute(engine, now, 60),
        latest=overview.latest_requests(engine, 15),
        as_of=now,
    )


class OverviewService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cached: tuple[float, OverviewData] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> OverviewData:
        async with self._lock:
            if self._cached and self._cached[0] > time.monotonic():
                return self._cached[1]
            data = await asyncio.to_thread(_load, self._engine)
            self._cached = (time.monotonic() + CACHE_TTL_S, data)
            return data
