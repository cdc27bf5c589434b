"""Self-hosted GPU cost: each priced deployment's GPU-hour price times the hours it was up in a period,
shared among the keys and teams that used it, by their tokens or their busy time.

Hours up come from the container collector's hourly counts (`fleet.uptime`) when the deployment's containers
were seen in the period (an hour only partly inside counts in proportion; the time since the collector's
last round counts while a container was running then, at most twice the interval); without any, the
deployment is assumed always on since it was created. Shares come from the hour and day rollups of keys and
teams per deployment, so they are exact to the whole UTC hour. A deployment nobody called in the period is
idle: its cost stays unallocated. See docs/fleet.md ("GPU-hour cost").
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine

from llm_console.db.fleet_tables import FleetContainer, FleetUptime
from llm_console.db.models import Deployment
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.fleet.uptime import HOUR, hour_of
from llm_console.services.deployment_admin import gpu_hour_price
from llm_console.services.gpu_usage import UsageCache, Used, usage
from llm_console.settings import Settings

ALLOCATIONS = ("tokens", "busy_time")
SAMPLED = "container samples"  # the collector's hourly counts of its container rounds
ASSUMED = "assumed always on"
HOUR_S = 3600.0
_SAME = 1e-9  # float sums of the same requests grouped two ways may differ in the last bits


@dataclass(frozen=True, slots=True)
class GpuCostOptions:
    """What the calculation takes from settings: the allocation rule, the container collector's interval and
    how long the hours up are kept."""

    allocation: str = "tokens"  # LLMC_GPU_COST_ALLOCATION: tokens | busy_time
    interval_s: float = 10.0  # LLMC_FLEET_INTERVAL_S: the time since the last round counts up to twice this
    retention_days: float = 400.0  # LLMC_RETENTION_ROLLUP_DAYS: hours up older than this are gone

    @classmethod
    def from_settings(cls, settings: Settings) -> GpuCostOptions:
        return cls(settings.gpu_cost_allocation, settings.fleet_interval_s, settings.retention_rollup_days)


DEFAULT_OPTIONS = GpuCostOptions()


@dataclass(frozen=True, slots=True)
class UpHour:
    """One UTC hour of a deployment as the collector counted it: seconds up, and where the latest counted
    second ends, from the hour's start."""

    hour: datetime
    up_s: float
    up_to_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DeploymentGpuCost:
    deployment_id: int
    name: str
    price_per_hour_usd: float
    up_hours: float
    assumed_hours: float  # of `up_hours`, those assumed on: all of them, or the part older than the counts kept
    cost_usd: float
    basis: str  # SAMPLED | ASSUMED
    idle: bool  # no request at all in the period: the whole cost stays unallocated
    allocated_usd: float  # to keys, and the same to teams
    untracked_share: float  # of its traffic, logged before keys and teams were rolled up per deployment

    @property
    def unallocated_usd(self) -> float:
        return max(0.0, self.cost_usd - self.allocated_usd)


@dataclass(frozen=True, slots=True)
class GpuAllocation:
    """One key's (or team's) part of one deployment's cost."""

    deployment_id: int
    deployment: str
    entity_id: int | None  # None: requests made without a key (or by keys in no team)
    name: str
    share: float  # 0..1 of the deployment's tokens, or busy time, in the period
    usage: float  # tokens, or busy milliseconds
    allocated_usd: float


@dataclass(frozen=True, slots=True)
class GpuCostReport:
    start: datetime
    end: datetime  # the period's end, never later than when it was computed
    allocation: str
    deployments: tuple[DeploymentGpuCost, ...]
    keys: tuple[GpuAllocation, ...]  # largest cost first: all of them, or as many as `gpu_cost` was asked for
    teams: tuple[GpuAllocation, ...]

    @property
    def total_usd(self) -> float:
        return sum(d.cost_usd for d in self.deployments)

    @property
    def allocated_usd(self) -> float:
        return sum(d.allocated_usd for d in self.deployments)

    @property
    def idle_usd(self) -> float:
        return sum(d.cost_usd for d in self.deployments if d.idle)

    @property
    def unallocated_usd(self) -> float:
        return sum(d.unallocated_usd for d in self.deployments)


@dataclass(frozen=True, slots=True)
class _Priced:
    id: int
    name: str
    price: float
    created_at: datetime


def counted_up_hours(hours: Iterable[UpHour], start: datetime, end: datetime, now: datetime) -> float:
    """Hours in [start, end) the deployment was up, from its hourly counts. An hour wholly inside counts as
    counted; one partly inside counts in proportion to its part inside, out of its part already past at `now`
    (the current hour is counted up to the last round, not to its end)."""
    seconds = 0.0
    for h in hours:
        hour = utc(h.hour)
        past_end = min(hour + HOUR, now)
        past = (past_end - hour).total_seconds()
        inside = (min(end, past_end) - max(start, hour)).total_seconds()
        if past > 0 and inside > 0:
            seconds += max(0.0, h.up_s) * min(1.0, inside / past)
    return seconds / HOUR_S


def since_last_round(
    hours: Sequence[UpHour], last_seen: datetime | None, start: datetime, end: datetime, interval_s: float
) -> float:
    """Hours in [start, end) after the latest counted second, when a container was running at the last round
    (`last_seen`): the next round would count them, up to twice the interval after that round."""
    if last_seen is None:
        return 0.0
    counted = max((utc(h.hour) + timedelta(seconds=h.up_to_s) for h in hours if h.up_to_s > 0), default=None)
    lo = max(last_seen, start, counted or last_seen)
    hi = min(last_seen + timedelta(seconds=2.0 * interval_s), end)
    return max(0.0, (hi - lo).total_seconds()) / HOUR_S


def _priced(conn: Connection) -> list[_Priced]:
    rows = conn.execute(select(Deployment.id, Deployment.name, Deployment.settings, Deployment.created_at))  # type: ignore[call-overload]
    out = []
    for dep_id, name, settings, created_at in rows:
        price = gpu_hour_price(settings)
        if price is not None:
            out.append(_Priced(int(dep_id), str(name), price, utc(created_at)))
    return out


@dataclass(frozen=True, slots=True)
class _Counted:
    """A deployment's hourly counts in the period: the whole past hours summed, the others as they are."""

    whole_s: float = 0.0
    whole_hours: int = 0
    edges: tuple[UpHour, ...] = ()

    def hours(self, start: datetime, end: datetime, now: datetime) -> float:
        return self.whole_s / HOUR_S + counted_up_hours(self.edges, start, end, now)

    @property
    def seen(self) -> bool:
        return self.whole_hours > 0 or bool(self.edges)


def _uptime(conn: Connection, ids: Sequence[int], lo: datetime, hi: datetime, now: datetime) -> dict[int, _Counted]:
    """The hourly counts of `ids` over [lo, hi): the hours wholly inside and past summed by the database, the
    first, the current and the one before it (whose end the last round may have reached) as rows."""
    t = FleetUptime.__table__  # type: ignore[attr-defined]
    first = hour_of(lo) if hour_of(lo) == lo else hour_of(lo) + HOUR
    last = hour_of(min(hi, now)) - HOUR
    mine = (t.c.deployment_id.in_(list(ids)), t.c.hour >= hour_of(lo), t.c.hour < hi)
    whole = conn.execute(
        select(t.c.deployment_id, func.sum(t.c.up_s), func.count())
        .where(*mine, t.c.hour >= first, t.c.hour < last)
        .group_by(t.c.deployment_id)
    ).all()
    edges: dict[int, list[UpHour]] = defaultdict(list)
    for dep_id, hour, up_s, up_to_s in conn.execute(
        select(t.c.deployment_id, t.c.hour, t.c.up_s, t.c.up_to_s).where(*mine, or_(t.c.hour < first, t.c.hour >= last))
    ):
        edges[dep_id].append(UpHour(utc(hour), float(up_s or 0.0), float(up_to_s or 0.0)))
    out = {dep_id: _Counted(float(up or 0.0), int(n)) for dep_id, up, n in whole}
    for dep_id, rows in edges.items():
        counted = out.get(dep_id) or _Counted()
        out[dep_id] = _Counted(counted.whole_s, counted.whole_hours, tuple(rows))
    return out


def _last_running(conn: Connection, ids: Sequence[int]) -> dict[int, datetime]:
    """Per deployment, the last round that saw one of its containers running (containers not removed)."""
    t = FleetContainer.__table__  # type: ignore[attr-defined]
    rows = conn.execute(
        select(t.c.deployment_id, func.max(t.c.seen_at))
        .where(t.c.deployment_id.in_(list(ids)), t.c.status == "running", t.c.removed_at.is_(None))
        .group_by(t.c.deployment_id)
    )
    return {int(dep_id): utc(seen) for dep_id, seen in rows if seen is not None}


_Share = tuple[float, _Priced, int | None, str, float, float]  # allocated, deployment, entity, name, share, usage


def _allocate(
    dep: _Priced, cost: float, total: float, parts: dict[int | None, float], names: dict[int, str], none: str
) -> list[_Share]:
    rows = []
    per_unit = 1.0 / total if total > 0 else 0.0
    for entity, used in parts.items():
        name = none if entity is None else names.get(entity)
        if name is None:
            name = f"#{entity} (deleted)"
        share = used * per_unit
        rows.append((cost * share, dep, entity, name, share, used))
    return rows


def _by_cost(rows: list[_Share], limit: int | None) -> tuple[GpuAllocation, ...]:
    """Largest cost first, then by deployment and name; only the first `limit` are made into rows (a month can
    hold thousands of key and deployment pairs, and a page shows a few)."""
    deps = {r[1].id: r[1].name.lower() for r in rows}

    def order(r: _Share) -> tuple[float, str, str]:
        return (-r[0], deps[r[1].id], r[3].lower())

    chosen = sorted(rows, key=order) if limit is None else heapq.nsmallest(limit, rows, key=order)
    return tuple(GpuAllocation(d.id, d.name, e, name, share, used, cost) for cost, d, e, name, share, used in chosen)


def gpu_cost(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    options: GpuCostOptions = DEFAULT_OPTIONS,
    now: datetime | None = None,
    directory: Directory | None = None,
    cache: UsageCache | None = None,
    limit: int | None = None,
) -> GpuCostReport:
    """The GPU-hour cost of every priced deployment in [start, end) (up to `now`), and who it is allocated to:
    every key and team, or the `limit` largest of each. `cache` keeps the traffic of past hours between calls
    (the console's, see `gpu_usage`)."""
    if options.allocation not in ALLOCATIONS:
        raise ValueError(f"GPU cost allocation must be one of {', '.join(ALLOCATIONS)}, not {options.allocation!r}")
    now = utc(now or datetime.now(UTC))
    start, end = utc(start), min(utc(end), now)
    empty = GpuCostReport(start, max(start, end), options.allocation, (), (), ())
    with engine.connect() as conn:
        priced = _priced(conn)
        if not priced or end <= start:
            return empty
        cut = max(start, now - timedelta(days=options.retention_days))
        ids = [d.id for d in priced]
        counts = _uptime(conn, ids, min(cut, end), end, now)
        running = _last_running(conn, ids)
        used = usage(conn, ids, start, end, options.allocation, now=now, cache=cache)
    names = directory or load_directory(engine)
    deployments: list[DeploymentGpuCost] = []
    keys: list[_Share] = []
    teams: list[_Share] = []
    for dep in priced:
        since, counted = max(start, dep.created_at), counts.get(dep.id) or _Counted()
        sampled = counted.hours(cut, end, now)
        sampled += since_last_round(counted.edges, running.get(dep.id), cut, end, options.interval_s)
        if counted.seen or sampled > 0:  # its containers were seen in the period
            assumed = max(0.0, (min(cut, end) - since).total_seconds() / HOUR_S)
            basis, hours = SAMPLED, sampled + assumed
        else:
            assumed = max(0.0, (end - since).total_seconds() / HOUR_S)
            basis, hours = ASSUMED, assumed
        cost = dep.price * hours
        traffic = used.get(dep.id) or Used()
        requests, dep_total, by_key, by_team = traffic.requests, traffic.total, traffic.keys, traffic.teams
        tracked = sum(by_key.values())
        total = dep_total if dep_total > tracked * (1 + _SAME) else tracked
        untracked = (total - tracked) / total if total > 0 else 0.0
        allocated = cost * (1.0 - untracked) if tracked > 0 else 0.0
        deployments.append(
            DeploymentGpuCost(
                dep.id, dep.name, dep.price, hours, assumed, cost, basis, requests == 0, allocated, untracked
            )
        )
        team_total = max(total, sum(by_team.values()))
        keys += _allocate(dep, cost, total, by_key, names.keys, "(no key)")
        teams += _allocate(dep, cost, team_total, by_team, names.teams, "(no team)")
    order = sorted(deployments, key=lambda d: (-d.cost_usd, d.name.lower()))
    return GpuCostReport(
        start,
        end,
        options.allocation,
        tuple(order),
        _by_cost(keys, limit),
        _by_cost(teams, limit),
    )
