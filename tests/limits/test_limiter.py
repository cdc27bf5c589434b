"""The limiter against both backends (in-process and the real Redis), with time injected."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from llm_console.gateway.errors import GatewayError
from llm_console.limits.limiter import Grant, Limiter, duration
from llm_console.limits.plan import EntityLimits, LimitPlan
from tests.db.seeding import rec, write
from tests.limits.conftest import Clock, LimiterFactory

T0 = datetime(2026, 3, 4, 12, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def plan(*entities: EntityLimits) -> LimitPlan:
    return LimitPlan(entities)


def key(**limits: float) -> EntityLimits:
    return EntityLimits("key", 7, **limits)  # type: ignore[arg-type]


async def refused(limiter: Limiter, p: LimitPlan, tokens: int = 1, cost: float = 0.0) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await limiter.admit(p, tokens, cost)
    assert caught.value.status == 429
    return caught.value


async def settle_all(limiter: Limiter, grants: list[Grant | None], tokens: int, cost: float) -> None:
    for grant in grants:
        assert grant is not None
        limiter.settle(grant, tokens, cost)
    await drain(limiter)


async def drain(limiter: Limiter) -> None:
    """Wait until queued Redis settlements are written (the in-process backend settles at once)."""
    if limiter._queue is not None:
        for _ in range(200):
            if limiter._queue.empty():
                await asyncio.sleep(0.02)  # the batch taken off the queue is being written
                return
            await asyncio.sleep(0.01)


async def test_rpm_admits_the_limit_then_names_the_key_and_when_to_retry(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    p = plan(key(rpm=5))
    grants = [await limiter.admit(p, 10, 0.0) for _ in range(5)]
    assert all(g is not None for g in grants)
    assert grants[-1] is not None and grants[-1].headers["x-ratelimit-remaining-requests"] == "0"
    assert grants[0] is not None and grants[0].headers["x-ratelimit-limit-requests"] == "5"
    err = await refused(limiter, p)
    assert err.code == "rate_limit_exceeded" and err.type == "requests"
    assert "key 7" in err.message and "requests per minute (RPM)" in err.message and "limit 5" in err.message
    assert err.extra == {"entity": "key", "entity_id": 7, "limit": "rpm"}
    assert err.headers is not None and 60 <= int(err.headers["retry-after"]) <= 61
    assert err.headers["x-llmc-limit-entity"] == "key:7"
    clock.now += 61
    assert await limiter.admit(p, 10, 0.0) is not None


async def test_the_window_slides_by_the_second(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    p = plan(key(rpm=5))
    for _ in range(3):
        await limiter.admit(p, 1, 0.0)
    clock.now += 30
    for _ in range(2):
        await limiter.admit(p, 1, 0.0)
    clock.now += 29  # 59 s after the first three: all five still count
    err = await refused(limiter, p)
    assert err.headers is not None and err.headers["retry-after"] == "2"  # the first slot leaves at T0 + 61
    clock.now += 2
    for _ in range(3):
        await limiter.admit(p, 1, 0.0)
    await refused(limiter, p)


async def test_tokens_are_reserved_from_the_estimate_and_settled_from_real_usage(
    make_limiter: LimiterFactory,
) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    p = plan(key(tpm=1000))
    first = await limiter.admit(p, 600, 0.0)
    err = await refused(limiter, p, tokens=600)
    assert err.type == "tokens" and "used 600, requested 600" in err.message
    assert first is not None
    await settle_all(limiter, [first], tokens=100, cost=0.0)
    second = await limiter.admit(p, 600, 0.0)
    assert second is not None and second.headers["x-ratelimit-remaining-tokens"] == "300"


async def test_a_request_larger_than_the_limit_says_so(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    err = await refused(limiter, plan(key(tpm=100)), tokens=500)
    assert err.code == "request_too_large" and "requested 500" in err.message


async def test_the_tightest_entity_blocks_and_is_named(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    p = plan(key(rpm=10), EntityLimits("user", 3, rpm=2), EntityLimits("team", 4, rpm=100))
    await limiter.admit(p, 1, 0.0)
    await limiter.admit(p, 1, 0.0)
    err = await refused(limiter, p)
    assert err.extra == {"entity": "user", "entity_id": 3, "limit": "rpm"} and "user 3" in err.message
    # Nothing was taken from the key or the team by the refused request.
    other_user = plan(key(rpm=10), EntityLimits("user", 9, rpm=2))
    for _ in range(2):
        await limiter.admit(other_user, 1, 0.0)
    assert (await refused(limiter, other_user)).extra == {"entity": "user", "entity_id": 9, "limit": "rpm"}


async def test_daily_limits_reset_at_midnight_in_the_budget_time_zone(make_limiter: LimiterFactory) -> None:
    ny = ZoneInfo("America/New_York")
    clock = Clock(datetime(2026, 3, 4, 23, 59, 0, tzinfo=ny).timestamp())
    limiter = await make_limiter(clock, budget_timezone="America/New_York")
    p = plan(key(rpd=2))
    await limiter.admit(p, 1, 0.0)
    await limiter.admit(p, 1, 0.0)
    err = await refused(limiter, p)
    assert err.headers is not None and err.headers["retry-after"] == "60"  # until local midnight
    assert "requests per day (RPD)" in err.message
    clock.now = datetime(2026, 3, 5, 0, 0, 1, tzinfo=ny).timestamp()  # 05:00:01 UTC: a new day in New York
    assert await limiter.admit(p, 1, 0.0) is not None


async def test_parallel_requests_overshoot_a_budget_by_at_most_one_reservation(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    p = plan(key(daily_usd=1.0))
    results = await asyncio.gather(*(limiter.admit(p, 100, 0.3) for _ in range(20)), return_exceptions=True)
    admitted = [g for g in results if isinstance(g, Grant)]
    refusals = [e for e in results if isinstance(e, GatewayError)]
    assert len(admitted) + len(refusals) == 20
    assert len(admitted) * 0.3 <= 1.0 + 0.3  # budget plus one reservation
    assert len(admitted) == 4  # reserved 0, 0.3, 0.6, 0.9 when admitted: each saw room left
    # While they are in flight, the refusal says so and asks to retry soon.
    assert refusals[0].code == "budget_exceeded" and refusals[0].type == "insufficient_quota"
    assert refusals[0].headers is not None and refusals[0].headers["retry-after"] == "1"
    await settle_all(limiter, admitted, tokens=100, cost=0.3)
    err = await refused(limiter, p, cost=0.3)
    assert "daily budget $1.00, spent $1.20" in err.message
    assert err.headers is not None and int(err.headers["retry-after"]) == 12 * 3600  # next UTC midnight


async def test_settling_cheaper_than_estimated_frees_the_rest(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    p = plan(key(daily_usd=1.0))
    grants = [await limiter.admit(p, 10, 0.5) for _ in range(2)]
    await refused(limiter, p, cost=0.5)
    await settle_all(limiter, grants, tokens=10, cost=0.1)
    assert await limiter.admit(p, 10, 0.5) is not None


async def test_monthly_budget_resets_on_the_first_in_the_time_zone(make_limiter: LimiterFactory) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock = Clock(datetime(2026, 1, 31, 23, 30, tzinfo=berlin).timestamp())
    limiter = await make_limiter(clock, budget_timezone="Europe/Berlin")
    p = plan(key(monthly_usd=1.0))
    grant = await limiter.admit(p, 10, 0.5)
    await settle_all(limiter, [grant], tokens=10, cost=1.5)
    err = await refused(limiter, p, cost=0.1)
    assert "monthly budget" in err.message
    assert err.headers is not None and err.headers["retry-after"] == "1800"
    clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=berlin).timestamp()  # still 31 January in UTC
    assert await limiter.admit(p, 10, 0.1) is not None


async def test_counters_start_from_what_the_database_recorded(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    # Earlier today (UTC), key 7 spent $0.90 over three requests; one more failed.
    write(
        limiter.engine,
        rec(datetime.fromtimestamp(T0 - 3600, ZoneInfo("UTC")), key_id=7, cost=0.3, prompt=40, completion=10),
        rec(datetime.fromtimestamp(T0 - 3500, ZoneInfo("UTC")), key_id=7, cost=0.3, prompt=40, completion=10),
        rec(datetime.fromtimestamp(T0 - 3400, ZoneInfo("UTC")), key_id=7, cost=0.3, prompt=40, completion=10),
        rec(datetime.fromtimestamp(T0 - 3300, ZoneInfo("UTC")), key_id=7, status="error"),
    )
    p = plan(key(daily_usd=1.0, rpd=4, tpd=1000))
    grant = await limiter.admit(p, 100, 0.05)
    assert grant is not None
    assert grant.headers["x-ratelimit-remaining-requests"] == "0"  # 3 + this one of 4
    assert grant.headers["x-ratelimit-remaining-tokens"] == str(1000 - 150 - 100)
    await settle_all(limiter, [grant], tokens=100, cost=0.2)
    err = await refused(limiter, p, cost=0.05)
    assert err.extra is not None and err.extra["limit"] in ("rpd", "daily_usd")


async def test_a_crashed_requests_reservation_expires(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock, upstream_timeout_s=10)
    p = plan(key(daily_usd=1.0))
    assert await limiter.admit(p, 10, 2.0) is not None  # never settled: its process died
    await refused(limiter, p, cost=0.1)
    clock.now += 10 + 60 + 1
    assert await limiter.admit(p, 10, 0.1) is not None


async def test_a_key_without_limits_costs_nothing(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    assert await limiter.admit(LimitPlan(), 10, 1.0) is None


def test_reset_durations_read_like_openais() -> None:
    assert [duration(s) for s in (0.0204, 1, 6.2, 90, 7322)] == ["21ms", "1s", "7s", "1m30s", "2h2m2s"]


async def test_clock_jumps_and_idle_windows_are_answered_at_once(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    p = plan(key(rpm=3, tpm=1000))
    await limiter.admit(p, 10, 0.0)
    clock.now -= 30  # the clock stepped back
    await limiter.admit(p, 10, 0.0)
    clock.now += 86_400  # a day idle: the window is empty again
    grant = await limiter.admit(p, 10, 0.0)
    assert grant is not None and grant.headers["x-ratelimit-remaining-requests"] == "2"
    err = await refused(limiter, plan(key(tpm=5)), tokens=10)  # too large for an empty window
    assert err.code == "request_too_large" and err.headers is not None and err.headers["retry-after"] == "61"


async def test_a_cold_counter_with_the_database_away_is_a_clear_503(make_limiter: LimiterFactory) -> None:
    from llm_console.db.engine import make_engine

    limiter = await make_limiter(Clock(T0))
    limiter.engine = make_engine("sqlite:////nonexistent-dir/llmc.db")  # its day's use cannot be read
    with pytest.raises(GatewayError) as caught:
        await limiter.admit(plan(key(daily_usd=1.0)), 10, 0.1)
    assert (caught.value.status, caught.value.code) == (503, "limits_unavailable")
    assert "database is unreachable" in caught.value.message
    assert await limiter.admit(plan(key(rpm=5)), 10, 0.1) is not None  # windows need no database
