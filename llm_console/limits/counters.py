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
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

WINDOW_SLOTS = 61  # one-second slots summed for a 60 s window (conservative by one slot)


@dataclass(frozen=True, slots=True)
class Check:
    """One limit a request is judged against; built once per plan and period, the amount given per request."""

    kind: str  # w | f | b
    entity: str  # key | user | team
    entity_id: int
    name: str  # rpm | tpm | rpd | tpd | daily_usd | monthly_usd
    key: str  # the counter's key (the backend adds its prefix)
    limit: float
    unit: str  # what the request adds: r (one request) | t (its tokens) | c (its cost)
    expire_at: float = 0.0  # epoch seconds: the end of the period (f, b)
    period: tuple[datetime, datetime] | None = None  # where a seed is read from (f, b)
    res_key: str = ""  # b: the reservations of requests in flight

    @property
    def seed_field(self) -> str:
        return "cost_usd" if self.kind == "b" else "tokens" if self.name == "tpd" else "requests"


def amounts(checks: list[Check], tokens: float, cost: float) -> list[float]:
    """What one request adds to each check."""
    return [1.0 if c.unit == "r" else tokens if c.unit == "t" else cost for c in checks]


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


def judge(kind: str, limit: float, used: float, amount: float) -> bool:
    if kind == "b":
        return round(used, 9) < limit
    return used + amount <= limit


class Window:
    """One sliding window: its one-second slots, oldest first, and their running total."""

    __slots__ = ("slots", "total")

    def __init__(self) -> None:
        self.slots: deque[list[float]] = deque()  # [slot second, count]
        self.total = 0.0

    def prune(self, now_s: int) -> None:
        cutoff = now_s - WINDOW_SLOTS + 1
        slots = self.slots
        while slots and slots[0][0] < cutoff:
            self.total -= slots.popleft()[1]
        if not slots:
            self.total = 0.0  # no drift left behind by settlements

    def add(self, now_s: int, amount: float) -> None:
        if self.slots and self.slots[-1][0] == now_s:
            self.slots[-1][1] += amount
        else:
            self.slots.append([now_s, amount])
        self.total += amount

    def adjust(self, slot: int, delta: float) -> None:
        for entry in reversed(self.slots):  # the slot is almost always among the newest
            if entry[0] == slot:
                new = max(0.0, entry[1] + delta)
                self.total += new - entry[1]
                entry[1] = new
                return
            if entry[0] < slot:
                return

    def oldest(self) -> float:
        return next((s for s, c in self.slots if c > 0), 0.0)

    def retry_after(self, amount: float, limit: float, now: float) -> float:
        """Seconds until enough of the oldest slots leave the window for `amount` to fit."""
        need, freed = self.total + amount - limit, 0.0
        for slot, count in self.slots:
            freed += count
            if freed >= need:
                return max(0.001, slot + WINDOW_SLOTS - now)
        return float(WINDOW_SLOTS)


class Reservations:
    """The reservations of one budget's requests in flight, with their running total; expired ones (a
    request that never settled) are dropped when the earliest deadline has passed."""

    __slots__ = ("members", "next_expiry", "sum")

    def __init__(self) -> None:
        self.members: dict[str, tuple[float, float]] = {}  # member -> (amount, deadline)
        self.sum = 0.0
        self.next_expiry = math.inf

    def add(self, member: str, amount: float, deadline: float) -> None:
        self.members[member] = (amount, deadline)
        self.sum += amount
        self.next_expiry = min(self.next_expiry, deadline)

    def drop(self, member: str) -> None:
        held = self.members.pop(member, None)
        if held is not None:
            self.sum -= held[0]
        if not self.members:
            self.sum, self.next_expiry = 0.0, math.inf

    def total(self, now: float) -> float:
        if now >= self.next_expiry:
            for member in [m for m, (_, deadline) in self.members.items() if deadline <= now]:
                self.drop(member)
            self.next_expiry = min((d for _, d in self.members.values()), default=math.inf)
        return max(self.sum, 0.0)


class MemoryCounters:
    """Counters in this process: right for one gateway process; with several, use Redis."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}
        self.values: dict[str, tuple[float, float]] = {}  # key -> (value, expires at)
        self.reservations: dict[str, Reservations] = {}
        self._sweep_at = 0.0

    def _window(self, key: str, now_s: int) -> Window:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window()
        else:
            window.prune(now_s)
        return window

    def _value(self, key: str, now: float) -> float | None:
        hit = self.values.get(key)
        if hit is None or hit[1] <= now:
            return None
        return hit[0]

    def _reserved(self, key: str, now: float) -> float:
        held = self.reservations.get(key)
        return 0.0 if held is None else held.total(now)

    def _sweep(self, now: float) -> None:
        """Drop what expired, now and then (windows and reservations are pruned when read)."""
        if now < self._sweep_at:
            return
        self._sweep_at = now + 60.0
        for key in [k for k, (_, exp) in self.values.items() if exp <= now]:
            del self.values[key]
        now_s = int(now)
        for key, window in list(self.windows.items()):
            window.prune(now_s)
            if not window.slots:
                del self.windows[key]
        for key in [k for k, v in self.reservations.items() if not v.members]:
            del self.reservations[key]

    def admit(
        self,
        checks: list[Check],
        amounts: list[float],
        now: float,
        member: str,
        deadline: float,
        seeds: dict[int, float],
    ) -> Outcome:
        self._sweep(now)
        now_s = int(now)
        out = Outcome(ok=True)
        for i, check in enumerate(checks):
            if check.kind != "w" and self._value(check.key, now) is None:
                if i in seeds:
                    self.values[check.key] = (seeds[i], check.expire_at)
                else:
                    out.missing.append(i)
        if out.missing:
            out.ok = False
            return out
        windows: list[Window | None] = []
        for i, check in enumerate(checks):
            amount = amounts[i]
            oldest = 0.0
            window = None
            if check.kind == "w":
                window = self._window(check.key, now_s)
                used = window.total
                oldest = window.oldest()
            elif check.kind == "f":
                used = self._value(check.key, now) or 0.0
            else:
                used = (self._value(check.key, now) or 0.0) + self._reserved(check.res_key, now)
            if not judge(check.kind, check.limit, used, amount):
                if window is not None:
                    retry = window.retry_after(amount, check.limit, now)
                elif check.kind == "f" or used - self._reserved(check.res_key, now) >= check.limit:
                    retry = check.expire_at - now  # spent: wait for the next period
                else:
                    retry = 1.0  # requests in flight hold the rest; they settle soon
                return Outcome(False, [used], [], i, max(retry, 0.001))
            out.used.append(used)
            out.oldest.append(oldest)
            windows.append(window)
        for check, amount, window in zip(checks, amounts, windows, strict=True):
            if window is not None:
                window.add(now_s, amount)
            elif check.kind == "f":
                value, exp = self.values[check.key]
                self.values[check.key] = (value + amount, exp)
            else:
                held = self.reservations.get(check.res_key)
                if held is None:
                    held = self.reservations[check.res_key] = Reservations()
                held.add(f"{member}|{amount_text(amount)}", amount, deadline)
        return out

    def settle(self, items: list[Settlement]) -> None:
        for item in items:
            if item.kind == "w":
                window = self.windows.get(item.key)
                if window is not None:
                    window.adjust(item.slot, item.delta)
            elif item.kind == "f":
                hit = self.values.get(item.key)
                if hit is not None:
                    self.values[item.key] = (max(0.0, hit[0] + item.delta), hit[1])
            else:
                held = self.reservations.get(item.res_key)
                if held is not None:
                    held.drop(item.member)
                hit = self.values.get(item.key)
                if hit is not None and math.isfinite(item.delta):
                    self.values[item.key] = (hit[0] + item.delta, hit[1])

    def current(self, check: Check, now: float) -> float | None:
        """What a check's counter holds now (None when it has no state), for the console's usage view."""
        if check.kind == "w":
            return self._window(check.key, int(now)).total
        value = self._value(check.key, now)
        if value is None:
            return None
        return value + (self._reserved(check.res_key, now) if check.kind == "b" else 0.0)
