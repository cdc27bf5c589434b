"""Rate-limit analytics: what the limiter refused and when, who consumes the most, and the episodes in which
each limit kept refusing; `load_throttle_analytics` gathers them with the abuse patterns of
services/throttle_abuse.py (a key's sudden spike, bursts of refused credentials) for the page.

Every figure is read from the rollups, never from a scan of `requests`: refusals are the 429 rows rolled up
under `throttle` ("<entity>:<id>|<limit>", per minute, hour and day) and `throttled_key` (the refused call's
key, per hour and day); consumption under `key`, `user` and `team`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.rollups import GRAIN_SECONDS
from llm_console.services.throttle_abuse import AbuseReport, abuse_patterns

FAMILIES: dict[str, str] = {
    "rpm": "requests",
    "rpd": "requests",
    "tpm": "tokens",
    "tpd": "tokens",
    "daily_usd": "budget",
    "monthly_usd": "budget",
}
"""Limit name -> family: request-rate limits, token-rate limits, spend budgets."""
FAMILY_LABELS = {"requests": "Request limits (RPM, RPD)", "tokens": "Token limits (TPM, TPD)", "budget": "Budgets"}
ENTITIES = ("key", "user", "team")
ORDERS = ("requests", "tokens", "cost_usd")
AUTO_POINTS = 400  # the automatic chart grain keeps a range under this many buckets
TOP_N = 10
MAX_ENTITIES = 5000  # values of one dimension read to rank consumers (keys with traffic in the range)
MAX_EPISODES = 200
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Throttle:
    """One `throttle` rollup value: the entity whose limit refused the call, and the limit."""

    entity: str  # key | user | team
    entity_id: int
    limit: str  # rpm | tpm | rpd | tpd | daily_usd | monthly_usd

    @property
    def family(self) -> str:
        return FAMILIES.get(self.limit, "requests")

    @property
    def value(self) -> str:
        return f"{self.entity}:{self.entity_id}|{self.limit}"


def parse_throttle(value: str) -> Throttle | None:
    """`"key:12|rpm"` as a Throttle; None for a value not in that shape (never raises on stored text)."""
    who, sep, limit = value.partition("|")
    entity, colon, ident = who.partition(":")
    if not (sep and colon and entity and limit and ident.isascii() and ident.isdigit()):
        return None
    return Throttle(entity, int(ident), limit)


def auto_grain(start: datetime, end: datetime) -> str:
    """The finest grain that keeps [start, end) under AUTO_POINTS buckets (minutes, hours, then days)."""
    span = (end - start).total_seconds()
    for grain in ("m", "h"):
        if span / GRAIN_SECONDS[grain] <= AUTO_POINTS:
            return grain
    return "d"


@dataclass(frozen=True, slots=True)
class ThrottlePoint:
    """Refusals in one bucket, by the family of the limit that refused."""

    bucket: datetime
    requests: int = 0
    tokens: int = 0
    budget: int = 0

    @property
    def total(self) -> int:
        return self.requests + self.tokens + self.budget


@dataclass(frozen=True, slots=True)
class ThrottleSeries:
    grain: str
    points: list[ThrottlePoint]  # every bucket of the range, zero-filled
    by_limit: dict[str, int]  # refusals per limit name over the range
    by_family: dict[str, int]  # requests | tokens | budget -> refusals
    total: int


def throttled_over_time(engine: Engine, start: datetime, end: datetime, *, grain: str = "") -> ThrottleSeries:
    """Refusals per bucket of [start, end) (widened to whole buckets), split by limit family, zero-filled."""
    grain = grain or auto_grain(start, end)
    cells: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FAMILY_LABELS, 0))
    by_limit: dict[str, int] = defaultdict(int)
    for bucket, value, n in usage.counter_by_value(engine, start, end, grain, "throttle"):
        throttle = parse_throttle(value)
        limit = throttle.limit if throttle is not None else "other"
        family = throttle.family if throttle is not None else "requests"
        cells[bucket][family] += int(n)
        by_limit[limit] += int(n)
    points = [
        ThrottlePoint(b, **cells[b]) if b in cells else ThrottlePoint(b) for b in usage.bucket_starts(start, end, grain)
    ]
    by_family = {f: sum(getattr(p, f) for p in points) for f in FAMILY_LABELS}
    return ThrottleSeries(grain, points, dict(sorted(by_limit.items())), by_family, sum(by_family.values()))


@dataclass(frozen=True, slots=True)
class Consumer:
    """One key, user or team's calls in the range.

    `refused` for a key counts every call made with it that the limiter refused, whichever limit in its chain
    (its own, its user's or its team's) did; for a user or a team, the calls their own limits refused.
    """

    entity: str
    id: int
    name: str
    requests: int
    tokens: int
    cost_usd: float
    refused: int

    @property
    def refused_share(self) -> float | None:
        return self.refused / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class TopConsumers:
    order: str  # requests | tokens | cost_usd
    keys: list[Consumer]
    users: list[Consumer]
    teams: list[Consumer]


def _consumer_grain(start: datetime, end: datetime) -> str:
    return usage.choose_grain(start, end, "key")  # keys, users and teams are rolled up per hour at the finest


def _refusals_by_entity(engine: Engine, start: datetime, end: datetime, grain: str) -> dict[tuple[str, int], int]:
    """Refusals per (entity, id) named by the limiter (any limit), from the `throttle` rows."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    rows = usage.breakdown(
        engine, start, end, "throttle", order_by="requests", limit=MAX_ENTITIES, grain=grain, hist=False
    )
    for value, t in rows:
        throttle = parse_throttle(value)
        if throttle is not None:
            out[(throttle.entity, throttle.entity_id)] += t.requests
    return out


def top_consumers(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    order: str = "requests",
    limit: int = TOP_N,
    directory: Directory | None = None,
) -> TopConsumers:
    """The `limit` keys, users and teams with the most `order` (requests, tokens or cost_usd) in the range,
    joined by the `limit` most refused ones (on a rate-limit page a throttled key matters however small),
    each with how many of its calls the limiter refused; ranked by `order`, ties to the lower id."""
    if order not in ORDERS:
        raise ValueError(f"Top consumers are ranked by {', '.join(ORDERS)}, not {order[:20]!r}.")
    directory = directory or load_directory(engine)
    grain = _consumer_grain(start, end)
    named = _refusals_by_entity(engine, start, end, grain)
    out: dict[str, list[Consumer]] = {}
    for entity in ENTITIES:
        rows = usage.breakdown(
            engine, start, end, entity, order_by="requests", limit=MAX_ENTITIES, grain=grain, hist=False
        )
        consumers = {
            int(v): Consumer(entity, int(v), directory.name(entity, v), t.requests, t.tokens, t.cost_usd, 0)
            for v, t in rows
            if v.isdigit()
        }
        top = heapq.nsmallest(limit, consumers.values(), key=lambda c: (-_measure(c, order), c.id))
        if entity == "key":
            refused = _key_refusals(engine, start, end, grain, [c.id for c in top], limit)
        else:
            refused = {i: n for (e, i), n in named.items() if e == entity}
        most_refused = heapq.nsmallest(
            limit, (i for i, n in refused.items() if n > 0 and i in consumers), key=lambda i: (-refused[i], i)
        )
        chosen = {c.id for c in top} | set(most_refused)
        ranked = sorted(chosen, key=lambda i: (-_measure(consumers[i], order), i))
        out[entity] = [_with_refused(consumers[i], refused.get(i, 0)) for i in ranked]
    return TopConsumers(order, out["key"], out["user"], out["team"])


def _key_refusals(
    engine: Engine, start: datetime, end: datetime, grain: str, ids: list[int], limit: int
) -> dict[int, int]:
    """Refused calls per key (`throttled_key`): the `limit` most refused keys, and the keys in `ids`."""
    rows = usage.breakdown(engine, start, end, "throttled_key", limit=limit, grain=grain, hist=False)
    refused = {int(v): t.requests for v, t in rows if v.isdigit()}
    rest = [str(i) for i in ids if i not in refused]
    if rest:
        rows = usage.breakdown(
            engine, start, end, "throttled_key", limit=len(rest), grain=grain, values=rest, hist=False
        )
        refused.update((int(v), t.requests) for v, t in rows)
    return refused


def _measure(c: Consumer, order: str) -> float:
    return float(c.requests if order == "requests" else c.tokens if order == "tokens" else c.cost_usd)


def _with_refused(c: Consumer, refused: int) -> Consumer:
    return Consumer(c.entity, c.id, c.name, c.requests, c.tokens, c.cost_usd, refused)


@dataclass(frozen=True, slots=True)
class Episode:
    """Consecutive hours in which one entity's limit refused calls; an hour without refusals ends it."""

    throttle: Throttle
    name: str  # the entity's display name
    start: datetime  # the first hour's start
    end: datetime  # the last hour's end
    hours: int
    refusals: int


def breach_timeline(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    limit: int = MAX_EPISODES,
    directory: Directory | None = None,
) -> list[Episode]:
    """Each entity's limit's refusing hours in [start, end) merged into episodes, newest (latest end) first."""
    directory = directory or load_directory(engine)
    hours: dict[str, dict[datetime, int]] = defaultdict(dict)
    for bucket, value, n in usage.counter_by_value(engine, start, end, "h", "throttle"):
        if n:
            hours[value][bucket] = hours[value].get(bucket, 0) + int(n)
    episodes: list[Episode] = []
    for value, counts in hours.items():
        throttle = parse_throttle(value)
        if throttle is None:
            continue
        name = directory.name(throttle.entity, str(throttle.entity_id))
        run: list[datetime] = []
        for hour in sorted(counts):
            if run and hour - run[-1] > HOUR:
                episodes.append(_episode(throttle, name, run, counts))
                run = []
            run.append(hour)
        episodes.append(_episode(throttle, name, run, counts))
    episodes.sort(key=lambda e: (e.end, e.start, e.refusals, e.throttle.value), reverse=True)
    return episodes[:limit]


def _episode(throttle: Throttle, name: str, run: list[datetime], counts: dict[datetime, int]) -> Episode:
    return Episode(throttle, name, run[0], run[-1] + HOUR, len(run), sum(counts[h] for h in run))


@dataclass(frozen=True, slots=True)
class ThrottleAnalytics:
    """Everything the rate-limit analytics page shows, from one call."""

    start: datetime
    end: datetime
    series: ThrottleSeries
    consumers: TopConsumers
    episodes: list[Episode]
    abuse: AbuseReport
    as_of: datetime


def load_throttle_analytics(
    engine: Engine, start: datetime, end: datetime, *, grain: str = "", now: datetime | None = None
) -> ThrottleAnalytics:
    directory = load_directory(engine)
    return ThrottleAnalytics(
        start=start,
        end=end,
        series=throttled_over_time(engine, start, end, grain=grain),
        consumers=top_consumers(engine, start, end, directory=directory),
        episodes=breach_timeline(engine, start, end, directory=directory),
        abuse=abuse_patterns(engine, start, end, directory=directory),
        as_of=now or datetime.now(UTC),
    )
