"""Rate limits and budgets as an admin sets them: the one rate-limit writer, and the Limits page's edit.

`put_limits` is the only code that writes `rate_limits` rows (keys, users, teams and the global default
`default`/0, which applies to every key without a row of its own); `budgets.put_budget` is the only budget
writer. Both write in the caller's transaction with an audit event, and write nothing when nothing changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Budget, RateLimit, Team, User, VirtualKey, utcnow
from llm_console.services.audit import record
from llm_console.services.budgets import MAX_USD, put_budget
from llm_console.services.config_bus import announce
from llm_console.services.scope import Scope

LIMIT_FIELDS = ("rpm", "tpm", "rpd", "tpd")
MAX_LIMIT = 10**12
DEFAULT_ENTITY = ("default", 0)
"""The `rate_limits` row holding the global default: the limits of every key that has none of its own."""
ENTITY_TYPES = ("user", "team", "key", "default")
ADMIN_ONLY = "Only admins can change rate limits and budgets."
MAX_NAME = 320
LABELLED_PREFIX = re.compile(r"\((\S+?)…?\)$")
MISSING_NAME = {
    "user": "Give the user's email.",
    "team": "Give the team's name.",
    "key": "Give the key's prefix or name.",
}


class LimitsError(ValueError):
    """A readable reason rate limits or a budget could not be set."""


class LimitsPermissionError(LimitsError):
    """The signed-in user may not change limits."""


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests and tokens per minute and per day (the budget time zone's day); None means no limit."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.as_dict().values())

    @classmethod
    def of(cls, row: RateLimit | None) -> RateLimits:
        return cls() if row is None else cls(row.rpm, row.tpm, row.rpd, row.tpd)


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Spend limits in USD per day and per month (in the budget time zone); None means no limit."""

    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def empty(self) -> bool:
        return self.daily_usd is None and self.monthly_usd is None


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A user, team or key (or the global default) whose limits the page shows or changes."""

    entity_type: str
    entity_id: int
    label: str  # email, team name, key name and prefix, or "Global default"


def check_limits(limits: RateLimits) -> RateLimits:
    for name, value in limits.as_dict().items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT:
            raise LimitsError(f"{name.upper()} must be a whole number above 0 (leave it empty for no limit).")
    return limits


def check_budget(budget: BudgetLimits) -> BudgetLimits:
    for label, value in (("daily budget", budget.daily_usd), ("monthly budget", budget.monthly_usd)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise LimitsError(f"The {label} must be an amount of USD.")
        if not 0 <= value <= MAX_USD:
            raise LimitsError(f"The {label} must be between 0 and {MAX_USD:.0e} USD.")
    return budget


def put_limits(s: Session, entity_type: str, entity_id: int, limits: RateLimits, *, actor: str) -> RateLimit | None:
    """Store (or clear, when every limit is None) one entity's rate limits in the caller's transaction, audited
    as "limits.set" / "limits.clear"; nothing is written when nothing changes. Returns the row, or None."""
    if entity_type not in ENTITY_TYPES:
        raise LimitsError(f"Rate limits are set on {', '.join(ENTITY_TYPES)}, not {entity_type[:20]!r}.")
    check_limits(limits)
    row = s.get(RateLimit, (entity_type, entity_id))
    before = None if row is None else RateLimits.of(row)
    if before == limits or (before is None and limits.empty):
        return row
    target = f"{entity_type}:{entity_id}"
    old = None if before is None else before.as_dict()
    if limits.empty:
        s.delete(row)
        record(s, actor=actor, action="limits.clear", target_type="rate_limit", target_id=target, before=old)
        return None
    row = row or RateLimit(entity_type=entity_type, entity_id=entity_id)
    row.rpm, row.tpm, row.rpd, row.tpd, row.updated_at = limits.rpm, limits.tpm, limits.rpd, limits.tpd, utcnow()
    s.add(row)
    after = limits.as_dict()
    record(s, actor=actor, action="limits.set", target_type="rate_limit", target_id=target, before=old, after=after)
    return row


def _one_key(s: Session, name: str) -> VirtualKey:
    """A key that is not revoked, by its display prefix ("sk-llmc-ab12cd", with or without "…"), its label as
    the page shows it ("name (sk-llmc-ab12cd…)") or its name."""
    labelled = LABELLED_PREFIX.search(name)
    prefix = labelled.group(1) if labelled else name.rstrip("…").strip()
    live = select(VirtualKey).where(col(VirtualKey.revoked_at).is_(None))
    found = list(s.exec(live.where(VirtualKey.prefix == prefix)))
    if not found:
        found = list(s.exec(live.where(func.lower(VirtualKey.name) == name.lower())))
    if len(found) > 1:
        raise LimitsError(f"{len(found)} keys are named {name[:100]!r}: give the key's prefix (sk-llmc-…) instead.")
    if not found:
        raise LimitsError(f"No active key is named {name[:100]!r} or has that prefix.")
    return found[0]


def key_label(key: VirtualKey) -> str:
    return f"{key.name or 'key'} ({key.prefix}…)"


def _label(s: Session, entity_type: str, entity_id: int) -> str | None:
    if entity_type == "default":
        return "Global default" if entity_id == DEFAULT_ENTITY[1] else None
    if entity_type == "user":
        user = s.get(User, entity_id)
        return None if user is None else user.email
    if entity_type == "team":
        team = s.get(Team, entity_id)
        return None if team is None else team.name
    key = s.get(VirtualKey, entity_id) if entity_type == "key" else None
    return None if key is None else key_label(key)


def current_limits(engine: Engine, entity_type: str, entity_id: int) -> tuple[EntityRef, RateLimits, BudgetLimits]:
    """One entity's own rate limits and budget, as the edit form starts from (a key's own limits: never the
    global default it falls back to)."""
    with session(engine) as s:
        label = _label(s, entity_type, entity_id)
        if label is None:
            raise LimitsError(f"There is no {entity_type[:20]} with id {entity_id}.")
        limits = RateLimits.of(s.get(RateLimit, (entity_type, entity_id)))
        row = s.get(Budget, (entity_type, entity_id))
    budget = BudgetLimits() if row is None else BudgetLimits(row.daily_usd, row.monthly_usd)
    return EntityRef(entity_type, entity_id, label), limits, budget


def find_entity(s: Session, entity_type: str, name: str) -> EntityRef:
    """The user (by email), team (by name) or key (by prefix or name) that `name` names; readable errors."""
    name = (name or "").strip()
    if entity_type == "default":
        return EntityRef(*DEFAULT_ENTITY, "Global default")
    if entity_type not in ENTITY_TYPES:
        raise LimitsError("Choose a user, a team or a key.")
    if not name:
        raise LimitsError(MISSING_NAME[entity_type])
    if len(name) > MAX_NAME:
        raise LimitsError(f"A name has at most {MAX_NAME} characters.")
    if entity_type == "key":
        key = _one_key(s, name)
        assert key.id is not None
        return EntityRef("key", key.id, key_label(key))
    if entity_type == "user":
        user = s.exec(select(User).where(func.lower(User.email) == name.lower())).first()
        if user is None or user.id is None:
            raise LimitsError(f"No user has the email {name[:100]!r}.")
        return EntityRef("user", user.id, user.email)
    team = s.exec(select(Team).where(func.lower(Team.name) == name.lower())).first()
    if team is None or team.id is None:
        raise LimitsError(f"No team is named {name[:100]!r}.")
    return EntityRef("team", team.id, team.name)


def save_entity_limits(
    engine: Engine,
    *,
    scope: Scope,
    entity_type: str,
    name: str,
    limits: RateLimits,
    budget: BudgetLimits,
    actor: str,
) -> EntityRef:
    """Admins only: replace the rate limits and budget of the entity `name` names (empty: none), in one
    transaction with their audit events. The global default ("default") has rate limits and no budget."""
    if not has_role_name(scope.role, "admin"):
        raise LimitsPermissionError(ADMIN_ONLY)
    check_limits(limits)
    check_budget(budget)
    if entity_type == "default" and not budget.empty:
        raise LimitsError("The global default holds rate limits only: set budgets on users, teams or keys.")
    with session(engine) as s:
        ref = find_entity(s, entity_type, name)
        put_limits(s, ref.entity_type, ref.entity_id, limits, actor=actor)
        if ref.entity_type != "default":
            put_budget(s, ref.entity_type, ref.entity_id, budget.daily_usd, budget.monthly_usd, actor=actor)
        s.commit()
    announce(what="limits")  # every replica applies it now, not at its next refresh
    return ref
