"""Rate-limit analytics: what the limiter refused and when, who consumes the most, the episodes in which each
limit kept refusing, and traffic that looks like abuse (a key's sudden spike, bursts of refused credentials).

Every figure is read from the rollups, never from a scan of `requests`: refusals are the 429 rows rolled up
under `throttle` ("<entity>:<id>|<limit>", per minute, hour and day) and `throttled_key` (the refused call's
key, per hour and day); consumption under `key`, `user` and `team`; refused credentials under `auth_fail_ip`
(client address, per minute, hour and day).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.rollups import GRAIN_SECONDS, truncate, usage_rollups
from llm_console.limits.limiter import NAMES
from llm_console.services.analytics_stats import OUTLIER_Z, robust_z

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
SPIKE_WINDOW_HOURS = 24
SPIKE_MIN_CALLS = 50
BURST_MIN_FAILURES = 20
MAX_BURST_ROWS = 20_000
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
T = usage_rollups


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
class KeySpike:
    """An hour in which one key made far more calls than in its previous 24 hours."""

    key_id: int
    name: str
    hour: datetime
    calls: int
    median: float  # of the key's calls per hour over the previous 24 hours (hours without calls count as 0)
    mad: float
    z: float  # robust z; +inf when the previous 24 hours were all the same


@dataclass(frozen=True, slots=True)
class AuthBurst:
    """One client address that sent at least BURST_MIN_FAILURES refused credentials within single minutes."""

    address: str
    burst_minutes: int
    burst_refusals: int  # refused credentials within those minutes
    peak: int  # the most in one minute
    peak_at: datetime
    first_at: datetime
    last_at: datetime  # the last burst minute's start
    total_refusals: int  # every refused credential from the address in the range


@dataclass(frozen=True, slots=True)
class AbuseReport:
    spikes: list[KeySpike]
    bursts: list[AuthBurst]
    key_hours_checked: int  # key-hours in the range with at least the minimum calls
    auth_failures: int  # refused credentials in the range, every address
    method: str
    thresholds: dict[str, float] = field(default_factory=dict)


def method_text(z: float = OUTLIER_Z, min_calls: int = SPIKE_MIN_CALLS, burst: int = BURST_MIN_FAILURES) -> str:
    """How the abuse patterns are decided, in the words the page shows under them."""
    return (
        f"Key spikes: each hour in the range in which a key made at least {min_calls} calls is compared with "
        f"that key's calls in each of the previous {SPIKE_WINDOW_HOURS} hours (hours without calls count as 0) "
        f"by a robust z-score, 0.6745 * (calls - median) / MAD (Iglewicz & Hoaglin); it is flagged at "
        f"z ≥ {z:g}. When the MAD is 0 the mean absolute deviation stands in for it, and a perfectly flat "
        f"history makes any rise a spike. 401 bursts: minutes in which one client address presented at least "
        f"{burst} refused credentials (invalid, revoked or expired keys); per-minute counts are kept as long "
        "as LLMC_RETENTION_MINUTE_ROLLUP_DAYS says (7 days by default)."
    )


def key_spikes(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    min_calls: int = SPIKE_MIN_CALLS,
    z_threshold: float = OUTLIER_Z,
    directory: Directory | None = None,
) -> tuple[list[KeySpike], int]:
    """Flagged key-hours in [start, end) (strongest first), and how many key-hours were checked."""
    first = truncate(utc(start), "h")
    history = first - SPIKE_WINDOW_HOURS * HOUR
    calls: dict[str, dict[datetime, int]] = defaultdict(dict)
    for bucket, value, n in usage.counter_by_value(engine, history, end, "h", "key"):
        if value.isdigit():
            calls[value][bucket] = int(n)
    spikes: list[KeySpike] = []
    checked = 0
    for value, per_hour in calls.items():
        for hour, n in per_hour.items():
            if hour < first or n < min_calls:
                continue
            checked += 1
            window = [float(per_hour.get(hour - i * HOUR, 0)) for i in range(1, SPIKE_WINDOW_HOURS + 1)]
            z, median, mad = robust_z(window, float(n))
            if z >= z_threshold:
                spikes.append(KeySpike(int(value), "", hour, n, median, mad, z))
    if spikes:
        directory = directory or load_directory(engine)
        spikes = [
            KeySpike(s.key_id, directory.name("key", str(s.key_id)), s.hour, s.calls, s.median, s.mad, s.z)
            for s in spikes
        ]
    spikes.sort(key=lambda s: (s.z, s.calls, s.hour), reverse=True)
    return spikes, checked


def auth_bursts(
    engine: Engine, start: datetime, end: datetime, *, min_failures: int = BURST_MIN_FAILURES
) -> list[AuthBurst]:
    """Addresses with minutes of at least `min_failures` refused credentials in [start, end), most first."""
    lo, hi = usage.aligned(start, end, "m")
    stmt = (
        select(T.c.bucket, T.c.value, T.c.requests)
        .where(T.c.grain == "m", T.c.dim == "auth_fail_ip", T.c.bucket >= lo, T.c.bucket < hi)
        .where(T.c.requests >= min_failures)
        .order_by(T.c.bucket)
        .limit(MAX_BURST_ROWS)
    )
    minutes: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    with engine.connect() as conn:
        for bucket, address, n in conn.execute(stmt):
            minutes[str(address)].append((utc(bucket), int(n)))
    if not minutes:
        return []
    grain = usage.choose_grain(start, end, "auth_fail_ip")
    totals = {
        v: t.requests
        for v, t in usage.breakdown(
            engine, start, end, "auth_fail_ip", limit=len(minutes), grain=grain, values=list(minutes), hist=False
        )
    }
    bursts = []
    for address, rows in minutes.items():
        peak_at, peak = max(rows, key=lambda r: (r[1], r[0]))
        in_bursts = sum(n for _, n in rows)
        total = max(totals.get(address, 0), in_bursts)
        bursts.append(AuthBurst(address, len(rows), in_bursts, peak, peak_at, rows[0][0], rows[-1][0], total))
    bursts.sort(key=lambda b: (-b.burst_refusals, b.address))
    return bursts


def abuse_patterns(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    min_calls: int = SPIKE_MIN_CALLS,
    z_threshold: float = OUTLIER_Z,
    min_failures: int = BURST_MIN_FAILURES,
    directory: Directory | None = None,
) -> AbuseReport:
    spikes, checked = key_spikes(engine, start, end, min_calls=min_calls, z_threshold=z_threshold, directory=directory)
    failures = usage.totals(engine, start, end, dim="auth_fail_ip").requests
    return AbuseReport(
        spikes,
        auth_bursts(engine, start, end, min_failures=min_failures),
        checked,
        failures,
        method_text(z_threshold, min_calls, min_failures),
        {"z": z_threshold, "min_calls": min_calls, "min_failures": min_failures},
    )


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


def limit_label(limit: str) -> str:
    """A limit's readable name ("requests per minute (RPM)"), or the stored name when unknown."""
    return NAMES.get(limit, limit)
