"""Budget and daily-limit periods: a day or a month in the configured time zone, as UTC instants.

Daily budgets, RPD and TPD reset at midnight in `LLMC_BUDGET_TIMEZONE`, monthly budgets at midnight on the
1st. Every boundary is computed from the zone's rules (so a day around a DST change is 23 or 25 hours).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _as_utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def day_bounds(now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of the local day holding `now`, in UTC."""
    z = zone(tz)
    local = _as_utc(now).astimezone(z).date()
    return _midnight(local, z), _midnight(local + timedelta(days=1), z)


def month_bounds(now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of the local month holding `now`, in UTC."""
    z = zone(tz)
    local = _as_utc(now).astimezone(z).date()
    first = local.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _midnight(first, z), _midnight(following, z)


def bounds(period: str, now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """The day ("d") or month ("m") holding `now`."""
    return day_bounds(now, tz) if period == "d" else month_bounds(now, tz)


def period_id(period: str, now: datetime, tz: str = "UTC") -> str:
    """A stable name for the period holding `now` (its local start date), used in counter keys."""
    start, _ = bounds(period, now, tz)
    local = start.astimezone(zone(tz)).date()
    return local.isoformat() if period == "d" else local.strftime("%Y-%m")
