"""Tiers, spend resets and temporary increases in the limits engine: the plan merges own values over the
tier's per field (the global default only without a tier), a reset restarts a budget's count with a counter
of its own (in process and in the real Redis), an increase raises a budget until it expires by itself, and
/v1/limits says where each figure comes from. Expected figures are worked out by hand in the comments."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from llm_console.db.engine import make_engine, session
from llm_console.db.migrate import upgrade
from llm_console.db.models import Budget, RateLimit
from llm_console.db.tier_tables import BudgetIncrease, LimitTier, SpendReset, TierAssignment
from llm_console.gateway import auth
from llm_console.gateway.auth import KeyCache, KeyInfo
from llm_console.gateway.errors import GatewayError
from llm_console.limits.limiter import Limiter
from llm_console.limits.plan import EntityLimits, LimitPlan, Reset, load_plan
from llm_console.limits.report import limits_report
from tests.db.seeding import rec, write
from tests.gateway.test_auth_cache import FakeClock
from tests.limits.conftest import Clock, LimiterFactory

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
T0 = NOW.timestamp()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def add(engine: Engine, *rows: SQLModel) -> None:
    with session(engine) as s:
        for row in rows:
            s.add(row)
            s.flush()
        s.commit()


def tier(engine: Engine, name: str, **values: float) -> int:
    row = LimitTier(name=name, **values)  # type: ignore[arg-type]
    add(engine, row)
    assert row.id is not None
    return row.id


def plan_at(
    engine: Engine, key_id: int, user_id: int | None = None, team_id: int | None = None, **kw: object
) -> LimitPlan:
    with engine.connect() as conn:
        return load_plan(conn, key_id, user_id, team_id, now=kw.pop("now", T0), **kw)  # type: ignore[arg-type]


def test_own_values_win_per_field_and_the_default_applies_only_without_a_tier(engine: Engine) -> None:
    team_tier = tier(engine, "Team", rpm=10, tpm=5000, tpd=50_000, daily_usd=5.0, monthly_usd=50.0)
    add(
        engine,
        RateLimit(entity_type="default", entity_id=0, rpm=100, tpm=1000),
        TierAssignment(entity_type="key", entity_id=7, tier_id=team_tier),
        RateLimit(entity_type="key", entity_id=7, rpm=3),
        TierAssignment(entity_type="user", entity_id=3, tier_id=team_tier),
        Budget(entity_type="user", entity_id=3, daily_usd=1.0),
        RateLimit(entity_type="key", entity_id=9, rpm=2),
    )
    on_tier = plan_at(engine, 7, 3, 4)
    key, user = on_tier.entities  # team 4 has nothing to enforce
    # The key's own RPM (3) beats the tier's 10; TPM, TPD and both budgets come from the tier; RPD is unset
    # on both; the default (rpm 100, tpm 1000) does not apply to a key on a tier.
    assert key == EntityLimits("key", 7, 3, 5000, None, 50_000, 5.0, 50.0, from_default=False, tier="Team")
    # The user's own daily budget ($1) beats the tier's $5; the monthly $50 is the tier's.
    assert (user.kind, user.rpm, user.daily_usd, user.monthly_usd, user.tier) == ("user", 10, 1.0, 50.0, "Team")
    (fallback,) = plan_at(engine, 8).entities  # no own row, no tier: the global default
    assert (fallback.rpm, fallback.tpm, fallback.from_default, fallback.tier) == (100, 1000, True, None)
    (own,) = plan_at(engine, 9).entities  # an own row and no tier: only the own row, as before tiers
    assert (own.rpm, own.tpm, own.from_default) == (2, None, False)
    assert on_tier.valid_until is None


def test_increases_add_up_and_the_plan_is_valid_until_the_first_expires(engine: Engine) -> None:
    add(engine, Budget(entity_type="key", entity_id=7, daily_usd=1.0))

    def increase(amount: float, hours: float, period: str = "day", revoked: bool = False) -> BudgetIncrease:
        return BudgetIncrease(
            entity_type="key",
            entity_id=7,
            period=period,
            amount_usd=amount,
            created_at=NOW - timedelta(minutes=5),
            expires_at=NOW + timedelta(hours=hours),
            reason="launch",
            revoked_at=NOW if revoked else None,
        )

    add(
        engine,
        increase(0.5, 1),
        increase(0.25, 2),
        increase(10.0, 5, revoked=True),  # revoked: ignored
        increase(20.0, -1),  # expired an hour ago: ignored
        increase(3.0, 3, period="month"),  # no monthly budget to raise: ignored
    )
    (key,) = plan_at(engine, 7).entities
    assert (key.daily_usd, key.daily_increase_usd, key.monthly_increase_usd) == (1.0, 0.75, 0.0)
    assert plan_at(engine, 7).valid_until == T0 + 3600  # the $0.50 one expires first
    (later,) = plan_at(engine, 7, now=T0 + 3600).entities
    assert later.daily_increase_usd == 0.25
    assert plan_at(engine, 7, now=T0 + 3600).valid_until == T0 + 7200
    assert plan_at(engine, 7, now=T0 + 7200).entities[0].daily_increase_usd == 0.0
    # The monthly one (3 h) still bounds how long the plan may be cached, though it raises nothing.
    assert plan_at(engine, 7, now=T0 + 7200).valid_until == T0 + 3 * 3600


def test_resets_of_one_period_add_up_and_older_periods_drop_out(engine: Engine) -> None:
    add(engine, Budget(entity_type="key", entity_id=7, daily_usd=1.0, monthly_usd=10.0))

    def reset(at: datetime, period: str, spent: float, pid: str) -> SpendReset:
        return SpendReset(
            entity_type="key",
            entity_id=7,
            period=period,
            period_id=pid,
            reset_at=at,
            spent_before_usd=spent,
            reason="x",
        )

    add(
        engine,
        reset(NOW - timedelta(days=10), "month", 7.0, "2026-02"),  # last month: not loaded at all
        reset(NOW - timedelta(days=1), "day", 0.5, "2026-03-03"),  # yesterday
        reset(NOW - timedelta(hours=3), "day", 0.4, "2026-03-04"),
        reset(NOW - timedelta(hours=1), "day", 0.2, "2026-03-04"),
    )
    (key,) = plan_at(engine, 7).entities
    # Today's two resets: 0.4 counted before the first, 0.2 between them; yesterday's 0.5 is another day.
    assert key.daily_reset == Reset(T0 - 3600, pytest.approx(0.6))  # type: ignore[arg-type]
    assert key.monthly_reset is None
    day_start = datetime(2026, 3, 4, tzinfo=UTC).timestamp()
    assert key.reset_since("daily_usd", day_start) is key.daily_reset
    assert key.reset_since("daily_usd", day_start + 86400) is None  # tomorrow the reset is history


def stamp(offset_s: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset_s, UTC)


async def test_a_reset_restarts_the_budget_count_with_a_counter_of_its_own(make_limiter: LimiterFactory) -> None:
    clock = Clock(T0)
    limiter = await make_limiter(clock)
    write(limiter.engine, rec(stamp(-3600), key_id=7, cost=0.9))  # earlier today
    before = LimitPlan((EntityLimits("key", 7, daily_usd=1.0, monthly_usd=5.0),))
    grant = await limiter.admit(before, 10, 0.2)  # $0.90 < $1: admitted
    assert grant is not None
    limiter.settle(grant, 10, 0.2)
    write(limiter.engine, rec(stamp(0), key_id=7, cost=0.2))  # the log writer records it
    await settle_drain(limiter)
    err = await refused(limiter, before)
    assert "spent $1.10" in err.message
    # An admin resets the daily budget at T0 + 60: the database had $1.10 for the day.
    reset = Reset(T0 + 60, 1.1)
    after = LimitPlan((EntityLimits("key", 7, daily_usd=1.0, monthly_usd=5.0, daily_reset=reset),))
    clock.now = T0 + 61
    old_key = limiter.checks(before, clock.now)[0].key
    new_key = limiter.checks(after, clock.now)[0].key
    assert old_key == "b:key:7:d:2026-03-04" and new_key == f"{old_key}@{int((T0 + 60) * 1000)}"
    assert limiter.checks(after, clock.now)[1].key == "b:key:7:m:2026-03"  # the monthly count goes on
    grant = await limiter.admit(after, 10, 0.3)  # seeded with $1.10 - $1.10 = 0
    assert grant is not None
    limiter.settle(grant, 10, 1.0)
    await settle_drain(limiter)
    err = await refused(limiter, after)
    assert "daily budget $1.00, spent $1.00" in err.message  # only what was spent since the reset
    # A limiter that starts cold (a restart; in process) seeds the same way from the database:
    # the day's $2.10 less the $1.10 counted before the reset; the month counts all of it.
    write(limiter.engine, rec(stamp(61), key_id=7, cost=1.0))
    fresh = await make_limiter(clock)
    _, checks, used = await fresh.peek(after)
    assert [c.name for c in checks] == ["daily_usd", "monthly_usd"]
    assert used == [pytest.approx(1.0), pytest.approx(2.1)]


async def test_a_reset_from_an_earlier_period_is_ignored(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    write(limiter.engine, rec(stamp(-60), key_id=7, cost=1.5))
    yesterday = Reset(T0 - 86400, 3.0)
    p = LimitPlan((EntityLimits("key", 7, daily_usd=1.0, daily_reset=yesterday),))
    assert limiter.checks(p, T0)[0].key == "b:key:7:d:2026-03-04"
    err = await refused(limiter, p)
    assert "spent $1.50" in err.message


async def test_an_increase_raises_the_budget_it_adds_to(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    write(limiter.engine, rec(stamp(-60), key_id=7, cost=1.2))
    base = LimitPlan((EntityLimits("key", 7, daily_usd=1.0),))
    raised = LimitPlan((EntityLimits("key", 7, daily_usd=1.0, daily_increase_usd=0.5),))
    await refused(limiter, base)
    grant = await limiter.admit(raised, 10, 0.1)  # $1.20 < $1.50
    assert grant is not None
    limiter.settle(grant, 10, 0.3)
    await settle_drain(limiter)
    err = await refused(limiter, raised)
    assert "daily budget $1.50, spent $1.50" in err.message


async def test_the_report_names_the_tier_the_increase_and_the_reset(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(Clock(T0))
    write(limiter.engine, rec(stamp(-7200), key_id=7, cost=0.4), rec(stamp(-60), key_id=7, cost=0.25))
    reset = Reset(T0 - 3600, 0.4)
    p = LimitPlan(
        (EntityLimits("key", 7, rpm=5, daily_usd=1.0, tier="Team", daily_increase_usd=0.5, daily_reset=reset),)
    )
    report = await limits_report(limiter, p)
    (key,) = report["data"]
    assert key["tier"] == "Team"
    daily = key["limits"]["daily_usd"]
    # $0.65 today less the $0.40 counted before the reset = $0.25 of a $1.50 budget ($1 + $0.50).
    assert (daily["limit"], daily["used"], daily["increase_usd"]) == (1.5, 0.25, 0.5)
    assert daily["counting_since"] == "2026-03-04T11:00:00+00:00"
    assert (daily["remaining"], daily["status"]) == (1.25, "ok")
    assert "increase_usd" not in key["limits"]["rpm"]


async def refused(limiter: Limiter, p: LimitPlan) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await limiter.admit(p, 10, 0.05)
    assert caught.value.status == 429
    return caught.value


async def settle_drain(limiter: Limiter) -> None:
    if limiter._queue is not None:
        for _ in range(200):
            if limiter._queue.empty():
                await asyncio.sleep(0.02)
                return
            await asyncio.sleep(0.01)


def info(valid_until: float | None) -> KeyInfo:
    plan = LimitPlan((EntityLimits("key", 1, daily_usd=1.0, daily_increase_usd=2.0),), valid_until)
    return KeyInfo(1, None, None, frozenset(), None, False, plan=plan)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(wall=T0)
    monkeypatch.setattr(auth, "time", fake)
    return fake


async def test_the_key_cache_never_serves_a_plan_past_its_valid_until(clock: FakeClock) -> None:
    calls: list[str] = []
    answers = {"a": info(T0 + 5), "b": info(None), "c": info(T0 - 1)}

    def lookup(key_hash: str) -> KeyInfo:
        calls.append(key_hash)
        return answers[key_hash]

    cache = KeyCache(lookup, ttl=60)
    for h in "abc":
        await cache.get(h)
    clock.now += 4.9
    for h in "abc":
        await cache.get(h)
    assert calls == ["a", "b", "c", "c"]  # an already-expired plan is never cached
    clock.now += 0.2  # 5.1 s on: the increase has expired, the plan with it
    await cache.get("a")
    await cache.get("b")
    assert calls == ["a", "b", "c", "c", "a"]


async def test_a_lookup_running_across_an_invalidation_is_not_cached(clock: FakeClock) -> None:
    release = threading.Event()
    calls: list[str] = []

    def lookup(key_hash: str) -> KeyInfo:
        calls.append(key_hash)
        release.wait(5)
        return info(None)

    cache = KeyCache(lookup, ttl=60)
    first = asyncio.create_task(cache.get("a"))
    await asyncio.sleep(0.05)
    cache.invalidate()  # the configuration changed while the old plan was being read
    release.set()
    await first
    await cache.get("a")
    assert calls == ["a", "a"]
