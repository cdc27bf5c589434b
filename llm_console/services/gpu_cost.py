"""Self-hosted GPU cost: each priced deployment's GPU-hour price times the hours it was up in a period,
shared among the keys and teams that used it, by their tokens or their busy time.

Hours up come from the fleet's container samples when the deployment has some in the period (each sample
stands for the time until the next one, at most twice the sampling interval, so a gap in the samples counts
as down); without any, the deployment is assumed always on since it was created. Shares come from the hour
and day rollups of keys and teams per deployment, so they are exact to the whole UTC hour. A deployment
nobody called in the period is idle: its cost stays unallocated. See docs/fleet.md ("GPU-hour cost").
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, cast, extract, func, or_, select
from sqlalchemy.engine import Connection, Engine

from llm_console.db.fleet_tables import FleetSample
from llm_console.db.models import Deployment
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.usage import aligned
from llm_console.db.rollups import truncate, usage_rollups
from llm_console.fleet.store import BUCKET_S
from llm_console.services.deployment_admin import gpu_hour_price
from llm_console.settings import Settings

ALLOCATIONS = ("tokens", "busy_time")
SAMPLED = "container samples"
ASSUMED = "assumed always on"
HOUR_S = 3600.0
DAY = timedelta(days=1)
_SAME = 1e-9  # float sums of the same requests grouped two ways may differ in the last bits


@dataclass(frozen=True, slots=True)
class GpuCostOptions:
    """What the calculation takes from settings: the allocation rule and how the container samples were taken."""

    allocation: str = "tokens"  # LLMC_GPU_COST_ALLOCATION: tokens | busy_time
    sample_interval_s: float = 10.0  # LLMC_FLEET_INTERVAL_S
    sample_retention_days: float = 14.0  # LLMC_FLEET_RETENTION_DAYS: older samples are gone

    @classmethod
    def from_settings(cls, settings: Settings) -> GpuCostOptions:
        return cls(settings.gpu_cost_allocation, settings.fleet_interval_s, settings.fleet_retention_days)


DEFAULT_OPTIONS = GpuCostOptions()


@dataclass(frozen=True, slots=True)
class UpSample:
    """One container sample: `up` is 0 or 1 for a raw point, the mean of `n` raw points for an average."""

    subject: str
    at: datetime
    up: float
    bucket_s: int = 0
    n: float | None = None


@dataclass(frozen=True, slots=True)
class DeploymentGpuCost:
    deployment_id: int
    name: str
    price_per_hour_usd: float
    up_hours: float
    assumed_hours: float  # of `up_hours`, those assumed on: all of them, or the part older than the samples kept
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
    keys: tuple[GpuAllocation, ...]
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


Point = tuple[str, float, float, int, float | None]  # subject, epoch seconds, up, bucket_s, n


@dataclass(frozen=True, slots=True)
class _Priced:
    id: int
    name: str
    price: float
    created_at: datetime


def sampled_up_hours(samples: Iterable[UpSample], start: datetime, end: datetime, interval_s: float) -> float:
    """Hours in [start, end) the deployment was up, from its containers' samples.

    A raw sample covers until the subject's next sample, at most 2 x `interval_s` (a longer gap counts as
    down); a 5-minute average covers until the next sample, at most its bucket and at most `n` x `interval_s`
    (a container seen for part of a bucket). While several containers serve the deployment (replicas, a
    replacement), it is as up as the most-up of them.
    """
    points = ((s.subject, s.at.timestamp(), s.up, s.bucket_s, s.n) for s in samples)
    return _up_hours(points, start.timestamp(), end.timestamp(), interval_s)


def _up_hours(points: Iterable[Point], first: float, stop: float, interval_s: float) -> float:
    """`sampled_up_hours` on plain tuples, times in epoch seconds (a month of samples is 100k+ points)."""
    by_subject: dict[str, list[tuple[float, float, int, float | None]]] = defaultdict(list)
    for subject, at, up, bucket_s, n in points:
        by_subject[subject].append((at, up, bucket_s, n))
    raw_cap = 2.0 * interval_s
    segments: list[tuple[float, float, float]] = []  # (from, to, up) in epoch seconds
    for series in by_subject.values():
        series.sort(key=lambda p: p[0])
        nexts = [p[0] for p in series[1:]] + [math.inf]
        for (at, up, bucket_s, n), next_at in zip(series, nexts, strict=True):
            cap = min(float(bucket_s), (n or bucket_s / interval_s) * interval_s) if bucket_s else raw_cap
            lo, hi = max(at, first), min(at + cap, next_at, stop)
            if hi > lo:
                segments.append((lo, hi, min(1.0, max(0.0, up))))
    if len(by_subject) <= 1:
        return sum((hi - lo) * up for lo, hi, up in segments) / HOUR_S
    events = sorted([(lo, 1, up) for lo, _, up in segments] + [(hi, -1, up) for _, hi, up in segments])
    active: Counter[float] = Counter()
    seconds, last = 0.0, first
    for at, change, up in events:
        if active:
            seconds += (at - last) * max(active)
        active[up] += change
        if not active[up]:
            del active[up]
        last = at
    return seconds / HOUR_S


def _priced(conn: Connection) -> list[_Priced]:
    rows = conn.execute(select(Deployment.id, Deployment.name, Deployment.settings, Deployment.created_at))  # type: ignore[call-overload]
    out = []
    for dep_id, name, settings, created_at in rows:
        price = gpu_hour_price(settings)
        if price is not None:
            out.append(_Priced(int(dep_id), str(name), price, utc(created_at)))
    return out


def _epoch(column: Any, dialect: str) -> ColumnElement[Any]:
    """Seconds since 1970 as computed by the database, to the microsecond (no datetime object per row)."""
    if dialect == "sqlite":  # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC here)
        return cast(func.strftime("%s", column), Integer) + cast(func.substr(column, 20), Float)
    return cast(extract("epoch", column), Float)


def _samples(conn: Connection, ids: Sequence[int], lo: datetime, hi: datetime) -> dict[int, list[Point]]:
    """Container samples of `ids` from `lo` (early enough to reach into the period) to `hi`: one query.

    Only the numbers needed come back, extracted by the database: a day of raw points is 8,640 rows per
    container, and decoding each JSON document and timestamp in Python would cost more than the rest."""
    t = FleetSample.__table__  # type: ignore[attr-defined]
    up, n = t.c["values"]["up"].as_float(), t.c["values"]["n"].as_float()
    rows = conn.execute(
        select(t.c.deployment_id, t.c.subject, _epoch(t.c.at, conn.dialect.name), up, t.c.bucket_s, n)
        .where(t.c.kind == "container", t.c.deployment_id.in_(list(ids)), t.c.at >= lo, t.c.at < hi)
        .where(up.is_not(None))
    )
    out: dict[int, list[Point]] = defaultdict(list)
    for dep_id, subject, at, up_value, bucket_s, count in rows:
        out[dep_id].append((subject, at, up_value, bucket_s or 0, count if count is not None and count > 0 else None))
    return out


def _rollup_range(lo: datetime, hi: datetime) -> ColumnElement[bool]:
    """Hour rows of [lo, hi), with the whole days inside it read from the day rows (the same sums, fewer rows)."""
    t = usage_rollups
    day_lo = truncate(lo, "d")
    day_lo += DAY if day_lo < lo else timedelta(0)
    day_hi = truncate(hi, "d")
    if day_hi - day_lo < DAY:
        return and_(t.c.grain == "h", t.c.bucket >= lo, t.c.bucket < hi)
    return or_(
        and_(t.c.grain == "h", t.c.bucket >= lo, t.c.bucket < day_lo),
        and_(t.c.grain == "d", t.c.bucket >= day_lo, t.c.bucket < day_hi),
        and_(t.c.grain == "h", t.c.bucket >= day_hi, t.c.bucket < hi),
    )


def _usage(conn: Connection, start: datetime, end: datetime, allocation: str) -> dict[str, dict[str, Any]]:
    """Per dimension and value: (requests, usage), for deployments and for keys and teams per deployment."""
    t = usage_rollups
    lo, hi = aligned(start, end, "h")
    amount = (
        func.sum(t.c.latency_ms_sum)
        if allocation == "busy_time"
        else func.sum(t.c.prompt_tokens) + func.sum(t.c.completion_tokens)
    )
    rows = conn.execute(
        select(t.c.dim, t.c.value, func.sum(t.c.requests), amount)
        .where(t.c.dim.in_(("deployment", "deployment_key", "deployment_team")), _rollup_range(lo, hi))
        .group_by(t.c.dim, t.c.value)
    )
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for dim, value, requests, used in rows:
        out[dim][str(value)] = (int(requests or 0), float(used or 0.0))
    return out


def _parts(rows: dict[str, Any], dep_id: int) -> dict[int | None, float]:
    """{key or team id (None: none): usage} of one deployment, from "<deployment>|<id>" values."""
    out: dict[int | None, float] = {}
    prefix = f"{dep_id}|"
    for value, (_, used) in rows.items():
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            out[int(rest) if rest.isdigit() else None] = used
    return out


def _allocate(
    dep: _Priced, cost: float, total: float, parts: dict[int | None, float], names: dict[int, str], none: str
) -> list[GpuAllocation]:
    rows = []
    for entity, used in parts.items():
        share = used / total if total > 0 else 0.0
        name = none if entity is None else names.get(entity, f"#{entity} (deleted)")
        rows.append(GpuAllocation(dep.id, dep.name, entity, name, share, used, cost * share))
    return rows


def gpu_cost(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    options: GpuCostOptions = DEFAULT_OPTIONS,
    now: datetime | None = None,
    directory: Directory | None = None,
) -> GpuCostReport:
    """The GPU-hour cost of every priced deployment in [start, end) (up to `now`), and who it is allocated to."""
    if options.allocation not in ALLOCATIONS:
        raise ValueError(f"GPU cost allocation must be one of {', '.join(ALLOCATIONS)}, not {options.allocation!r}")
    now = utc(now or datetime.now(UTC))
    start, end = utc(start), min(utc(end), now)
    empty = GpuCostReport(start, max(start, end), options.allocation, (), (), ())
    with engine.connect() as conn:
        priced = _priced(conn)
        if not priced or end <= start:
            return empty
        cut = max(start, now - timedelta(days=options.sample_retention_days))
        reach = timedelta(seconds=max(2.0 * options.sample_interval_s, float(BUCKET_S)))
        samples = _samples(conn, [d.id for d in priced], min(cut, end) - reach, end)
        used = _usage(conn, start, end, options.allocation)
    names = directory or load_directory(engine)
    deployments: list[DeploymentGpuCost] = []
    keys: list[GpuAllocation] = []
    teams: list[GpuAllocation] = []
    for dep in priced:
        since, points = max(start, dep.created_at), samples.get(dep.id, [])
        sampled = _up_hours(points, cut.timestamp(), end.timestamp(), options.sample_interval_s)
        if sampled > 0 or any(p[1] >= cut.timestamp() for p in points):  # its container was seen in the period
            assumed = max(0.0, (min(cut, end) - since).total_seconds() / HOUR_S)
            basis, hours = SAMPLED, sampled + assumed
        else:
            assumed = max(0.0, (end - since).total_seconds() / HOUR_S)
            basis, hours = ASSUMED, assumed
        cost = dep.price * hours
        requests, dep_total = used["deployment"].get(str(dep.id), (0, 0.0))
        by_key = _parts(used["deployment_key"], dep.id)
        by_team = _parts(used["deployment_team"], dep.id)
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
        tuple(sorted(keys, key=lambda a: (-a.allocated_usd, a.deployment.lower(), a.name.lower()))),
        tuple(sorted(teams, key=lambda a: (-a.allocated_usd, a.deployment.lower(), a.name.lower()))),
    )
