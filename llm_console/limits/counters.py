"""The counter protocol both backends implement, and the in-process backend.

Three kinds of check, all judged and applied in one atomic step (a lock-free section here, one Lua script
in Redis), so concurrent requests cannot both read "room left" and both write:

- `w` (RPM, TPM): a sliding window of one-second slots. The sum covers the last 61 slots, a little more
  than the 60 s window, so no 60 s span ever admits more than the limit. Admitted when used + amount <= limit.
- `f` (RPD, TPD): a counter for the current day of the budget time zone. Admitted when used + amount <= limit.
- `b` (daily and monthly budgets): spent so far plus the reservations of requests in flight. Admitted while
  that sum is below the limit; the request then reserves its estimated cost until it settles. So concurrent
  requests overshoot a budget by at most the one reservation that crossed it (if estimates hold).

`f` and `b` counters start from the database (`seed`) when the backend has no state for the period, so a
restart or a flushed Redis does not forget the day's use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

WINDOW_SLOTS = 61  # one-second slots summed for a 60 s window (conservative by one slot)


@dataclass(frozen=True, slots=True)
class Check:
    kind: str  # w | f | b
    entity: str  # key | user | team
    entity_id: int
    name: str  # rpm | tpm | rpd | tpd | daily_usd | monthly_usd
    key: str  # the counter's key (the backend adds its prefix)
    limit: float
    amount: float
    expire_at: float = 0.0  # epoch seconds: the end of the period (f, b)
    period: tuple[datetime, datetime] | None = None  # where a seed is read from (f, b)
    res_key: str = ""  # b: the reservations of requests in flight

    @property
    def seed_field(self) -> str:
        return "cost_usd" if self.kind == "b" else "tokens" if self.name == "tpd" else "requests"


@dataclass(slots=True)
class Outcome:
    ok: bool
    used: list[float] = field(default_factory=list)  # before this request, per check
    oldest: list[float] = field(default_factory=list)  # w: epoch second of the oldest counted slot (else 0)
    denied: int = -1
    retry_after_s: float = 0.0
    missing: list[int] = field(default_factory=list)  # f/b checks with no state: seed them and ask again


@dataclass(frozen=True, slots=True)
class Settlement:
    """Correct one admitted check once the real usage is known."""

    kind: str
    key: str
    slot: int  # w: the slot the amount was added to
    delta: float  # w, f: real minus estimate; b: the real cost
    res_key: str = ""
    member: str = ""  # b: the reservation to drop


def amount_text(value: float) -> str:
    """An amount as both backends write it (in reservation names and script arguments)."""
    return repr(float(value)) if value != int(value) else str(int(value))


def window_retry(slots: list[tuple[int, float]], used: float, amount: float, limit: float, now_s: float) -> float:
    """Seconds until enough of the oldest slots leave the window for `amount` to fit."""
    need = used + amount - limit
    freed = 0.0
    for slot, count in sorted(slots):
        freed += count
        if freed >= need:
            return max(0.001, slot + WINDOW_SLOTS - now_s)
    return float(WINDOW_SLOTS)


def judge(check: Check, used: float) -> bool:
    if check.kind == "b":
        return round(used, 9) < check.limit
    return used + check.amount <= check.limit


class MemoryCounters:
    """Counters in this process: right for one gateway process; with several, use Redis."""

    def __init__(self) -> None:
        self.windows: dict[str, dict[int, float]] = {}
        self.values: dict[str, tuple[float, float]] = {}  # key -> (value, expires at)
        self.reservations: dict[str, dict[str, tuple[float, float]]] = {}  # key -> member -> (amount, deadline)
        self._sweep_at = 0.0

    def _window(self, key: str, now_s: int) -> dict[int, float]:
        slots = self.windows.get(key)
        if slots is None:
            slots = self.windows[key] = {}
        else:
            cutoff = now_s - WINDOW_SLOTS + 1
            for slot in [s for s in slots if s < cutoff]:
                del slots[slot]
        return slots

    def _value(self, key: str, now: float) -> float | None:
        hit = self.values.get(key)
        if hit is None or hit[1] <= now:
            return None
        return hit[0]

    def _reserved(self, key: str, now: float) -> float:
        members = self.reservations.get(key)
        if not members:
            return 0.0
        for member in [m for m, (_, deadline) in members.items() if deadline <= now]:
            del members[member]
        return sum(amount for amount, _ in members.values())

    def _sweep(self, now: float) -> None:
        """Drop what expired, now and then (windows and reservations are pruned when read)."""
        if now < self._sweep_at:
            return
        self._sweep_at = now + 60.0
        for key in [k for k, (_, exp) in self.values.items() if exp <= now]:
            del self.values[key]
        now_s = int(now)
        for key in [k for k, v in self.windows.items() if not v or max(v) < now_s - WINDOW_SLOTS]:
            del self.windows[key]
        for key in [k for k, v in self.reservations.items() if not v]:
            del self.reservations[key]

    def admit(self, checks: list[Check], now: float, member: str, deadline: float, seeds: dict[int, float]) -> Outcome:
        self._sweep(now)
        now_s = int(now)
        out = Outcome(ok=True)
        for i, check in enumerate(checks):
            if check.kind in "fb" and self._value(check.key, now) is None:
                if i in seeds:
                    self.values[check.key] = (seeds[i], check.expire_at)
                else:
                    out.missing.append(i)
        if out.missing:
            out.ok = False
            return out
        for i, check in enumerate(checks):
            oldest = 0.0
            if check.kind == "w":
                slots = self._window(check.key, now_s)
                used = sum(slots.values())
                oldest = float(min((s for s, c in slots.items() if c > 0), default=0))
            elif check.kind == "f":
                used = self._value(check.key, now) or 0.0
            else:
                used = (self._value(check.key, now) or 0.0) + self._reserved(check.res_key, now)
            if not judge(check, used):
                if check.kind == "w":
                    retry = window_retry(list(self.windows[check.key].items()), used, check.amount, check.limit, now)
                elif check.kind == "f" or used - self._reserved(check.res_key, now) >= check.limit:
                    retry = check.expire_at - now  # spent: wait for the next period
                else:
                    retry = 1.0  # requests in flight hold the rest; they settle soon
                return Outcome(False, [used], [], i, max(retry, 0.001))
            out.used.append(used)
            out.oldest.append(oldest)
        for check in checks:
            if check.kind == "w":
                slots = self.windows[check.key]
                slots[now_s] = slots.get(now_s, 0.0) + check.amount
            elif check.kind == "f":
                value, exp = self.values[check.key]
                self.values[check.key] = (value + check.amount, exp)
            else:
                self.reservations.setdefault(check.res_key, {})[f"{member}|{amount_text(check.amount)}"] = (
                    check.amount,
                    deadline,
                )
        return out

    def settle(self, items: list[Settlement]) -> None:
        for item in items:
            if item.kind == "w":
                slots = self.windows.get(item.key)
                if slots is not None and item.slot in slots:
                    slots[item.slot] = max(0.0, slots[item.slot] + item.delta)
            elif item.kind == "f":
                hit = self.values.get(item.key)
                if hit is not None:
                    self.values[item.key] = (max(0.0, hit[0] + item.delta), hit[1])
            else:
                members = self.reservations.get(item.res_key)
                if members is not None:
                    members.pop(item.member, None)
                hit = self.values.get(item.key)
                if hit is not None and math.isfinite(item.delta):
                    self.values[item.key] = (hit[0] + item.delta, hit[1])

    def current(self, check: Check, now: float) -> float | None:
        """What a check's counter holds now (None when it has no state), for the console's usage view."""
        if check.kind == "w":
            return sum(self._window(check.key, int(now)).values())
        value = self._value(check.key, now)
        if value is None:
            return None
        return value + (self._reserved(check.res_key, now) if check.kind == "b" else 0.0)
