"""Admit or refuse a request against its key's limit plan, and settle what it really used afterwards.

The hot path calls `admit` once before the upstream call (nothing to do for a key without limits) and
`settle` once when the request is over (never awaited: with Redis, settlements are batched by a task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from llm_console.db.queries.spend import Totals, entity_totals
from llm_console.gateway.errors import GatewayError
from llm_console.limits.counters import WINDOW_SLOTS, Check, MemoryCounters, Outcome, Settlement
from llm_console.limits.counters import amount_text as _amount
from llm_console.limits.counters import amounts as counter_amounts
from llm_console.limits.periods import bounds, period_id
from llm_console.limits.plan import LimitPlan
from llm_console.limits.redis_counters import RedisCounters
from llm_console.settings import Settings

log = logging.getLogger("llm_console.limits")

REDIS_RETRY_S = 1.0  # after a Redis failure, the failure policy applies this long before Redis is tried again
SETTLE_BATCH = 256
MAX_PLANS = 10_000  # cached check lists (one per key plan in use)
NAMES = {
    "rpm": "requests per minute (RPM)",
    "tpm": "tokens per minute (TPM)",
    "rpd": "requests per day (RPD)",
    "tpd": "tokens per day (TPD)",
    "daily_usd": "daily budget",
    "monthly_usd": "monthly budget",
}


@dataclass(slots=True)
class Grant:
    """What one admitted request holds until it settles."""

    checks: list[Check]
    amounts: list[float]
    slot: int
    member: str
    est_tokens: int
    remote: bool  # counted in Redis (else in this process)
    headers: dict[str, str]


def duration(seconds: float) -> str:
    """OpenAI's reset format: 250ms, 6s, 1m30s, 2h5m0s."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    s = math.ceil(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    return f"{m}m{sec}s" if m else f"{sec}s"


def _unavailable(why: str) -> GatewayError:
    return GatewayError(
        503,
        f"Rate limits cannot be checked right now ({why}); try again shortly.",
        type="server_error",
        code="limits_unavailable",
        headers={"retry-after": "1"},
    )


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.1 else f"${value:,.6f}"


class Limiter:
    def __init__(self, settings: Settings, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.engine = engine
        self.tz = settings.budget_timezone
        self.clock = clock
        self.memory = MemoryCounters()
        self.redis: RedisCounters | None = None
        if settings.uses_redis_limits and settings.redis_url:  # settings refuse "redis" without a URL
            self.redis = RedisCounters(settings.redis_url, settings.redis_prefix)
        self.failure = settings.limits_redis_failure
        self.redis_down_until = 0.0
        self.redis_failures = 0
        self.on_store_state: Callable[[bool], None] = lambda _up: None  # told when Redis fails or recovers
        self._queue: asyncio.Queue[list[Settlement]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._periods: dict[str, tuple[float, float, tuple[datetime, datetime, str]]] = {}
        self._plans: dict[int, tuple[LimitPlan, float, float, list[Check]]] = {}

    # -- building the checks ------------------------------------------------------------------------------

    def _period(self, p: str, now: float) -> tuple[datetime, datetime, str]:
        """The day or month holding `now`: computed once per period, not per request."""
        hit = self._periods.get(p)
        if hit is not None and hit[0] <= now < hit[1]:
            return hit[2]
        at = datetime.fromtimestamp(now, UTC)
        start, end = bounds(p, at, self.tz)
        value = (start, end, period_id(p, at, self.tz))
        self._periods[p] = (start.timestamp(), end.timestamp(), value)
        return value

    def checks(self, plan: LimitPlan, now: float) -> list[Check]:
        """The plan's checks for the current periods, cached with the plan (a cached key's plan is the same
        object from one request to the next) until the earliest of its periods ends."""
        hit = self._plans.get(id(plan))
        if hit is not None and hit[0] is plan and hit[1] <= now < hit[2]:
            return hit[3]
        out: list[Check] = []
        valid_from, valid_until = -math.inf, math.inf
        for e in plan.entities:
            who = f"{e.kind}:{e.id}"
            if e.rpm:
                out.append(Check("w", e.kind, e.id, "rpm", f"w:{who}:r", e.rpm, "r"))
            if e.tpm:
                out.append(Check("w", e.kind, e.id, "tpm", f"w:{who}:t", e.tpm, "t"))
            for name, day_limit, unit in (("rpd", e.rpd, "r"), ("tpd", e.tpd, "t")):
                if day_limit:
                    start, end, pid = self._period("d", now)
                    valid_from, valid_until = max(valid_from, start.timestamp()), min(valid_until, end.timestamp())
                    key = f"f:{who}:{name}:{pid}"
                    out.append(Check("f", e.kind, e.id, name, key, day_limit, unit, end.timestamp(), (start, end)))
            for name, limit, p in (("daily_usd", e.daily_usd, "d"), ("monthly_usd", e.monthly_usd, "m")):
                if limit:
                    start, end, pid = self._period(p, now)
                    valid_from, valid_until = max(valid_from, start.timestamp()), min(valid_until, end.timestamp())
                    key = f"b:{who}:{p}:{pid}"
                    reset = e.reset_since(name, start.timestamp())
                    if reset is not None:  # the count restarted: a counter of its own, seeded from the reset on
                        key += f"@{int(reset.at * 1000)}"
                    limit += e.increase(name)
                    out.append(
                        Check("b", e.kind, e.id, name, key, limit, "c", end.timestamp(), (start, end), f"{key}:res")
                    )
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[id(plan)] = (plan, valid_from, valid_until, out)
        return out

    # -- admission ----------------------------------------------------------------------------------------

    async def admit(self, plan: LimitPlan, tokens: int, cost: float) -> Grant | None:
        """Reserve this request's share of every limit, or raise a 429 naming the one that blocked."""
        if plan.empty:
            return None
        now = self.clock()
        checks = self.checks(plan, now)
        amounts = counter_amounts(checks, tokens, cost)
        member = uuid.uuid4().hex
        deadline = now + self.settings.upstream_timeout_s + 60.0
        remote = self.redis is not None
        if remote and now < self.redis_down_until:  # Redis failed a moment ago: the policy decides
            if self._policy() == "open":
                return None
            remote = False
        seeds: dict[int, float] = {}
        for _ in range(3):
            if remote:
                assert self.redis is not None
                try:
                    out = await self.redis.admit(checks, amounts, now, member, deadline, seeds)
                except (RedisError, OSError) as exc:
                    self._redis_failed(exc, now)
                    if self._policy() == "open":
                        return None
                    remote = False
                    continue
            else:
                out = self.memory.admit(checks, amounts, now, member, deadline, seeds)
            if not out.missing:
                break
            try:
                seeds.update(await asyncio.to_thread(self._seeds, plan, checks, out.missing))
            except SQLAlchemyError as exc:  # a cold counter needs the database: refuse clearly, not with a 500
                log.warning("could not read the period's use to start limit counters: %s", type(exc).__name__)
                raise _unavailable("the database is unreachable") from None
        else:  # seeded twice and still missing: the store keeps losing state
            raise _unavailable("the limits store keeps losing its counters")
        if remote and self.redis_failures:
            log.warning("Redis is reachable again: limits are shared across replicas")
            self.redis_failures = 0
            self.on_store_state(True)
        if not out.ok:
            raise self._refusal(checks[out.denied], amounts[out.denied], out)
        return Grant(checks, amounts, int(now), member, tokens, remote, self._headers(checks, amounts, out, now))

    def _policy(self) -> str:
        """LLMC_LIMITS_REDIS_FAILURE while Redis is unreachable: "open" admits, "local" counts in this
        process; "closed" refuses here with a 503."""
        if self.failure == "closed":
            raise _unavailable("the limits store is unreachable")
        return self.failure

    def _redis_failed(self, exc: BaseException, now: float) -> None:
        self.redis_down_until = now + REDIS_RETRY_S
        self.redis_failures += 1
        if self.redis_failures == 1:
            log.error("Redis unreachable for limits (%s): policy %s", type(exc).__name__, self.failure)
            self.on_store_state(False)

    def _seeds(self, plan: LimitPlan, checks: list[Check], missing: list[int]) -> dict[int, float]:
        """Start period counters from what the database recorded for the period so far (one read per entity
        and period: its RPD, TPD and daily budget share it). A budget reset in the period counts from the
        reset: the period's spend less what it had recorded at the reset (exact although spend is rolled up
        per hour, and a reset falls inside an hour)."""
        out: dict[int, float] = {}
        read: dict[tuple[str, int, datetime, datetime], Totals] = {}
        with self.engine.connect() as conn:
            for i in missing:
                check = checks[i]
                assert check.period is not None
                key = (check.entity, check.entity_id, *check.period)
                if key not in read:
                    read[key] = entity_totals(conn, *key)
                value = float(getattr(read[key], check.seed_field))
                entity = plan.entity(check.entity, check.entity_id) if check.kind == "b" else None
                reset = None if entity is None else entity.reset_since(check.name, check.period[0].timestamp())
                out[i] = value if reset is None else max(0.0, value - reset.spent_before_usd)
        return out

    def _headers(self, checks: list[Check], amounts: list[float], out: Outcome, now: float) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for the tightest request limit and the tightest token limit."""
        headers: dict[str, str] = {}
        for unit, names in (("requests", ("rpm", "rpd")), ("tokens", ("tpm", "tpd"))):
            best: tuple[float, Check, float] | None = None
            for c, amount, used, oldest in zip(checks, amounts, out.used, out.oldest, strict=True):
                if c.name in names:
                    remaining = c.limit - used - amount
                    if best is None or remaining < best[0]:
                        best = (remaining, c, oldest)
            if best is not None:
                remaining, c, oldest = best
                if c.kind == "w":
                    reset = (oldest or int(now)) + WINDOW_SLOTS - now
                else:
                    reset = c.expire_at - now
                headers[f"x-ratelimit-limit-{unit}"] = str(int(c.limit))
                headers[f"x-ratelimit-remaining-{unit}"] = str(max(0, int(remaining)))
                headers[f"x-ratelimit-reset-{unit}"] = duration(max(reset, 0.001))
        return headers

    def _refusal(self, check: Check, amount: float, out: Outcome) -> GatewayError:
        used = out.used[0] if out.used else 0.0
        retry = out.retry_after_s
        who = f"{check.entity} {check.entity_id}"
        what = NAMES[check.name]
        headers = {
            "retry-after": str(max(1, math.ceil(retry))),
            "x-llmc-limit-entity": f"{check.entity}:{check.entity_id}",
            "x-llmc-limit": check.name,
        }
        extra = {"entity": check.entity, "entity_id": check.entity_id, "limit": check.name}
        if check.kind == "b":
            spent = f"spent {_money(used)}" + (" including requests in flight" if retry <= 1 else "")
            message = (
                f"Budget exceeded for {who}: {what} {_money(check.limit)}, {spent}. Try again in {duration(retry)}."
            )
            return GatewayError(
                429, message, type="insufficient_quota", code="budget_exceeded", headers=headers, extra=extra
            )
        unit = "requests" if check.name in ("rpm", "rpd") else "tokens"
        headers |= {
            f"x-ratelimit-limit-{unit}": str(int(check.limit)),
            f"x-ratelimit-remaining-{unit}": str(max(0, int(check.limit - used))),
            f"x-ratelimit-reset-{unit}": duration(retry),
        }
        if amount > check.limit:
            message = (
                f"Request too large for {who} on {what}: limit {int(check.limit)}, requested {int(amount)} "
                "(prompt estimate plus max_tokens). Lower max_tokens or shorten the prompt."
            )
            return GatewayError(429, message, type=unit, code="request_too_large", headers=headers, extra=extra)
        requested = f", requested {int(amount)}" if unit == "tokens" else ""
        message = (
            f"Rate limit reached for {who} on {what}: limit {int(check.limit)}, used {int(used)}{requested}. "
            f"Please try again in {duration(retry)}."
        )
        return GatewayError(429, message, type=unit, code="rate_limit_exceeded", headers=headers, extra=extra)

    # -- reading ------------------------------------------------------------------------------------------

    async def peek(self, plan: LimitPlan) -> tuple[float, list[Check], list[float]]:
        """(now, the plan's checks, what each has used) without changing anything: counters where they
        have state (Redis, or this process while Redis is away), the database's record of the period else."""
        now = self.clock()
        checks = self.checks(plan, now)
        values: list[float | None] | None = None
        if self.redis is not None and now >= self.redis_down_until:
            try:
                values = await self.redis.current(checks, now)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc, now)
        if values is None:
            values = [self.memory.current(c, now) for c in checks]
        missing = [i for i, v in enumerate(values) if v is None]
        seeds = await asyncio.to_thread(self._seeds, plan, checks, missing) if missing else {}
        return now, checks, [seeds.get(i, 0.0) if v is None else v for i, v in enumerate(values)]

    # -- settlement ---------------------------------------------------------------------------------------

    def settle(self, grant: Grant, tokens: int, cost: float) -> None:
        """Replace the estimates by what the request used (tokens, USD); never awaits."""
        items = []
        for c, amount in zip(grant.checks, grant.amounts, strict=True):
            if c.kind == "b":
                items.append(Settlement("b", c.key, grant.slot, cost, c.res_key, f"{grant.member}|{_amount(amount)}"))
            elif c.name in ("tpm", "tpd") and tokens != grant.est_tokens:
                items.append(Settlement(c.kind, c.key, grant.slot, tokens - grant.est_tokens))
        if not items:
            return
        if grant.remote and self._queue is not None:
            self._queue.put_nowait(items)
        else:
            self.memory.settle(items)

    async def _settle_loop(self) -> None:
        assert self._queue is not None and self.redis is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < SETTLE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.redis.settle_many(batch)
            except (RedisError, OSError) as exc:  # reservations expire on their own; spend is re-seeded
                log.warning("could not settle %d requests in Redis: %s", len(batch), type(exc).__name__)

    async def start(self) -> None:
        if self.redis is not None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._settle_loop(), name="llmc-limits-settle")

    async def stop(self) -> None:
        if self._task is not None:
            assert self._queue is not None and self.redis is not None
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            rest = []
            while not self._queue.empty():
                rest.append(self._queue.get_nowait())
            if rest:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.settle_many(rest)
            self._task = None
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.aclose()
