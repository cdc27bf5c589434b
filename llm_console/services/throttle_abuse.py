"""Traffic on the rate-limit analytics page that looks like abuse: an hour in which one key made far more calls
than in its previous day (robust z), and client addresses that sent bursts of refused credentials (HTTP 401).

Kept apart from the throttling figures (services/throttle_analytics.py) because it answers a different
question with different rollups: calls per key per hour (`key`) and refused credentials per client address per
minute, hour and day (`auth_fail_ip`, written by the gateway's llm_console/gateway/authfail.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.rollups import truncate, usage_rollups
from llm_console.services.analytics_stats import OUTLIER_Z, robust_z

SPIKE_WINDOW_HOURS = 24
SPIKE_MIN_CALLS = 50
BURST_MIN_FAILURES = 20
MAX_BURST_ROWS = 20_000
HOUR = timedelta(hours=1)
T = usage_rollups


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
    """Key spikes and 401 bursts in [start, end), with the refused credentials of every address and the method
    text built from the very thresholds used, so the page never describes a rule it did not apply."""
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
