"""Limit tiers: named presets of rate limits and budgets, and which user, team or key is on which.

An entity is on at most one tier. Per limit, its own `rate_limits` / `budgets` value wins where set, else the
tier's applies (limits/plan.py), so changing a tier changes everyone on it. Only admins change tiers and
assignments; every write is audited in its transaction (so each gateway replica's refresh loop notices it)
and, after the commit, announced on Redis (services/config_bus) so every replica applies it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Budget, Team, User, VirtualKey, utcnow
from llm_console.db.tier_tables import LimitTier, TierAssignment
from llm_console.services.audit import record
from llm_console.services.config_bus import announce
from llm_console.services.limits_admin import (
    BudgetLimits,
    LimitsError,
    RateLimits,
    check_budget,
    check_limits,
    key_label,
)
from llm_console.settings import Settings

ENTITY_TYPES = ("user", "team", "key")
ENTITY_TABLES: Mapping[str, type[User] | type[Team] | type[VirtualKey]] = {
    "user": User,
    "team": Team,
    "key": VirtualKey,
}
ADMIN_ONLY = "Only admins can change limit tiers and who is on them."
MAX_TIER_NAME = 60
MAX_DESCRIPTION = 300
MAX_RANK = 1000


class TierError(ValueError):
    """A readable reason a tier could not be saved, deleted or assigned."""

    @property
    def message(self) -> str:
        return str(self)


class TierPermissionError(TierError):
    """The signed-in user may not change tiers."""


@dataclass(frozen=True)
class TierView:
    id: int
    name: str
    description: str
    rank: int
    limits: RateLimits
    budget: BudgetLimits
    holders: dict[str, int]  # entity type -> how many are on the tier ("user", "team", "key" always present)
    updated_at: datetime
    updated_by: str


def entity_label(s: Session, entity_type: str, entity_id: int) -> str | None:
    """The user's email, the team's name or the key's name and prefix; None when there is no such entity."""
    table = ENTITY_TABLES.get(entity_type)
    row = None if table is None else s.get(table, entity_id)
    if row is None:
        return None
    if isinstance(row, VirtualKey):
        return key_label(row)
    return row.email if isinstance(row, User) else str(getattr(row, "name", ""))


def check_entity(s: Session, entity_type: str, entity_id: object, error: type[ValueError] = TierError) -> str:
    """The label of an existing user, team or key; `error` with a readable message otherwise."""
    if entity_type not in ENTITY_TYPES:
        raise error("Choose a user, a team or a key.")
    if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id < 0:
        raise error(f"A {entity_type} is named by a whole number id.")
    label = entity_label(s, entity_type, entity_id)
    if label is None:
        raise error(f"There is no {entity_type} with id {entity_id}.")
    return label


def tier_of(s: Session, entity_type: str, entity_id: int) -> LimitTier | None:
    assignment = s.get(TierAssignment, (entity_type, entity_id))
    return None if assignment is None else s.get(LimitTier, assignment.tier_id)


def effective_budget(s: Session, entity_type: str, entity_id: int) -> BudgetLimits:
    """The budgets that apply to one entity: its own where set (a positive amount), else its tier's."""
    own = s.get(Budget, (entity_type, entity_id))
    tier = tier_of(s, entity_type, entity_id)
    out = {}
    for name in ("daily_usd", "monthly_usd"):
        mine = getattr(own, name, None)
        value = mine if mine is not None and mine > 0 else getattr(tier, name, None)
        out[name] = value if value is not None and value > 0 else None
    return BudgetLimits(**out)


def _holders(s: Session) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    stmt = select(TierAssignment.tier_id, TierAssignment.entity_type, func.count()).group_by(
        col(TierAssignment.tier_id), col(TierAssignment.entity_type)
    )
    for tier_id, entity_type, count in s.exec(stmt):
        out.setdefault(tier_id, dict.fromkeys(ENTITY_TYPES, 0))[entity_type] = int(count)
    return out


def _view(row: LimitTier, holders: dict[str, int] | None) -> TierView:
    assert row.id is not None
    return TierView(
        id=row.id,
        name=row.name,
        description=row.description,
        rank=row.rank,
        limits=RateLimits(row.rpm, row.tpm, row.rpd, row.tpd),
        budget=BudgetLimits(row.daily_usd, row.monthly_usd),
        holders=dict(holders or dict.fromkeys(ENTITY_TYPES, 0)),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _snapshot(row: LimitTier) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "rank": row.rank,
        **{n: getattr(row, n) for n in ("rpm", "tpm", "rpd", "tpd", "daily_usd", "monthly_usd")},
    }


def list_tiers(engine: Engine) -> list[TierView]:
    """Every tier, smallest rank first, then by name; with how many users, teams and keys are on each."""
    with session(engine) as s:
        holders = _holders(s)
        rows = s.exec(select(LimitTier).order_by(LimitTier.rank, func.lower(LimitTier.name))).all()  # type: ignore[arg-type]
        return [_view(r, holders.get(r.id or 0)) for r in rows]


def tier_assignments(engine: Engine) -> dict[tuple[str, int], int]:
    """(entity type, entity id) -> tier id, for every entity on a tier."""
    with session(engine) as s:
        return {(a.entity_type, a.entity_id): a.tier_id for a in s.exec(select(TierAssignment))}


def _require_admin(role: str) -> None:
    if not has_role_name(role, "admin"):
        raise TierPermissionError(ADMIN_ONLY)


def _check_fields(name: str, description: str, rank: int) -> tuple[str, str]:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise TierError("Give the tier a name, such as Free, Team or Enterprise.")
    if len(name) > MAX_TIER_NAME or any(not c.isprintable() for c in name):
        raise TierError(f"A tier name has at most {MAX_TIER_NAME} printable characters.")
    description = (description or "").strip() if isinstance(description, str) else ""
    if len(description) > MAX_DESCRIPTION:
        raise TierError(f"A tier description has at most {MAX_DESCRIPTION} characters.")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= MAX_RANK:
        raise TierError(f"The rank must be a whole number from 0 to {MAX_RANK} (higher ranks are larger tiers).")
    return name, description


def save_tier(
    engine: Engine,
    *,
    role: str,
    actor: str,
    tier_id: int | None,
    name: str,
    description: str,
    rank: int,
    limits: RateLimits,
    budget: BudgetLimits,
    settings: Settings | None = None,
) -> TierView:
    """Admins only: create a tier (`tier_id` None) or change one, which changes the limits of everyone on it.
    Audited as tier.create / tier.update with the values before and after."""
    _require_admin(role)
    name, description = _check_fields(name, description, rank)
    try:
        check_limits(limits)
        check_budget(budget)
    except LimitsError as exc:
        raise TierError(str(exc)) from None
    if any(v is not None and v <= 0 for v in (budget.daily_usd, budget.monthly_usd)):
        raise TierError("A tier's budget must be above 0 USD (leave it empty for no budget).")
    with session(engine) as s:
        clash = s.exec(select(LimitTier).where(func.lower(LimitTier.name) == name.lower())).first()
        if clash is not None and clash.id != tier_id:
            raise TierError(f"A tier named {clash.name!r} already exists.")
        if tier_id is None:
            row, before = LimitTier(name=name, created_at=utcnow()), None
        else:
            found = s.get(LimitTier, tier_id)
            if found is None:
                raise TierError("That tier no longer exists; reload the page.")
            row, before = found, _snapshot(found)
        row.name, row.description, row.rank = name, description, rank
        row.rpm, row.tpm, row.rpd, row.tpd = limits.rpm, limits.tpm, limits.rpd, limits.tpd
        row.daily_usd, row.monthly_usd = budget.daily_usd, budget.monthly_usd
        after = _snapshot(row)
        if before == after:
            assert row.id is not None
            return _view(row, _holders(s).get(row.id))
        row.updated_at, row.updated_by = utcnow(), actor
        s.add(row)
        s.flush()
        action = "tier.create" if before is None else "tier.update"
        record(s, actor=actor, action=action, target_type="tier", target_id=str(row.id), before=before, after=after)
        s.commit()
        view = _view(row, _holders(s).get(row.id or 0))
    announce(settings, "tier")
    return view


def delete_tier(engine: Engine, *, role: str, actor: str, tier_id: int, settings: Settings | None = None) -> None:
    """Admins only: delete a tier nobody is on (refused, readably, while anyone is)."""
    _require_admin(role)
    with session(engine) as s:
        row = s.get(LimitTier, tier_id)
        if row is None:
            raise TierError("That tier no longer exists; reload the page.")
        held = _holders(s).get(tier_id)
        if held and sum(held.values()):
            who = ", ".join(f"{n} {t}{'s' if n != 1 else ''}" for t, n in held.items() if n)
            raise TierError(f"The tier {row.name!r} is in use ({who}); move them to another tier first.")
        before = _snapshot(row)
        s.delete(row)
        record(s, actor=actor, action="tier.delete", target_type="tier", target_id=str(tier_id), before=before)
        s.commit()
    announce(settings, "tier")


def assign_tier(
    engine: Engine,
    *,
    role: str,
    actor: str,
    entity_type: str,
    entity_id: int,
    tier_id: int | None,
    settings: Settings | None = None,
) -> None:
    """Admins only: put a user, team or key on a tier, or take it off (`tier_id` None). Audited as
    tier.assign / tier.unassign with the tier before and after; nothing is written when nothing changes."""
    _require_admin(role)
    with session(engine) as s:
        check_entity(s, entity_type, entity_id)
        current = s.get(TierAssignment, (entity_type, entity_id))
        old = None if current is None else s.get(LimitTier, current.tier_id)
        new = None
        if tier_id is not None:
            new = s.get(LimitTier, tier_id) if isinstance(tier_id, int) and not isinstance(tier_id, bool) else None
            if new is None:
                raise TierError("That tier no longer exists; reload the page.")
        if (old and old.id) == (new and new.id):
            return
        target = f"{entity_type}:{entity_id}"
        before = None if old is None else {"tier_id": old.id, "tier": old.name}
        after = None if new is None else {"tier_id": new.id, "tier": new.name}
        if new is None:
            s.delete(current)
            record(
                s, actor=actor, action="tier.unassign", target_type="tier_assignment", target_id=target, before=before
            )
        else:
            assert new.id is not None
            row = current or TierAssignment(entity_type=entity_type, entity_id=entity_id, tier_id=new.id)
            row.tier_id, row.assigned_at, row.assigned_by = new.id, utcnow(), actor
            s.add(row)
            action = "tier.assign"
            record(
                s,
                actor=actor,
                action=action,
                target_type="tier_assignment",
                target_id=target,
                before=before,
                after=after,
            )
        s.commit()
    announce(settings, "tier")
