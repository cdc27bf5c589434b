"""With Redis, every replica checks its deployments but only one records the results."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from llm_console.db.migrate import upgrade
from llm_console.gateway import GatewayRuntime
from tests.conftest import REDIS_URL, missing_service
from tests.limits.conftest import redis_available, settings_for


async def test_one_replica_records_health_results_and_another_takes_over(tmp_path: Path) -> None:
    if not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"health-{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{tmp_path / 'h.db'}"
    upgrade(url)
    runtimes = [
        GatewayRuntime(
            settings_for(
                tmp_path / str(i),
                database_url=url,
                redis_url=REDIS_URL,
                redis_prefix=prefix,
                leader_ttl_s=1,
                health_check_interval_s=3600,
                gc_freeze=False,
            )
        )
        for i in range(2)
    ]
    assert not any(rt.persist_health for rt in runtimes)  # nobody records before holding the lock
    for rt in runtimes:
        await rt.start()
    try:
        for _ in range(50):
            if any(rt.persist_health for rt in runtimes):
                break
            await asyncio.sleep(0.05)
        assert [rt.persist_health for rt in runtimes].count(True) == 1
        leader = next(rt for rt in runtimes if rt.persist_health)
        other = next(rt for rt in runtimes if rt is not leader)
        await leader.stop()
        runtimes.remove(leader)
        for _ in range(60):  # a clean hand-over: within half a TTL, plus scheduling
            if other.persist_health:
                break
            await asyncio.sleep(0.05)
        assert other.persist_health and not leader.persist_health
    finally:
        for rt in runtimes:
            await rt.stop()
