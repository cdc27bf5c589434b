"""Keys managed from the console: create with an owner, limits and budget; rotate; edit; set limits.

Every function takes the signed-in user's `Scope` and re-checks what it may do (`keys.can_manage_key`);
rate limits and budgets are admin-only. Each change and its audit events share one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Budget, ModelAlias, RateLimit, Team, User, VirtualKey, utcnow
from llm_console.db.queries.filters import utc
from llm_console.services.audit import record
from llm_console.services.budgets import put_budget
from llm_console.services.keys import (
    KeyAdminError,
    KeyPermissionError,
    MintedKey,
    add_key,
    managed_key,
    new_key_row,
    require_member,
)
from llm_console.services.limits_admin import BudgetLimits as KeyBudget
from llm_console.services.limits_admin import RateLimits as KeyLimits
from llm_console.services.limits_admin import check_budget, check_limits, put_limits
from llm_console.services.scope import Scope

OWNER_TYPES = ("user", "team", "service", "org")
"""Who a key belongs to; "org" (no owner, like keys from `llm-console create-key`) is for operators and admins."""
MAX_NAME = 200
ADMIN_ONLY = "Only admins can set a key's rate limits and budget."


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a person chooses for a key in the console: its name, owner, models and expiry."""

    name: str
    owner_type: str
    owner_id: int | None
    allowed_aliases: tuple[str, ...] = ()
    expires_at: datetime | None = None


def is_admin(scope: Scope) -> bool:
    return has_role_name(scope.role, "admin")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise KeyAdminError("Give the key a name.")
    if len(name) > MAX_NAME:
        raise KeyAdminError(f"A key name has at most {MAX_NAME} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise KeyAdminError("A key name cannot contain control characters.")
    return name


def _check_expiry(value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    value = utc(value)
    if value <= now:
        raise KeyAdminError("The expiry date must be in the future.")
    return value


def _check_aliases(s: Session, aliases: tuple[str, ...]) -> list[str]:
    wanted = sorted({a.strip() for a in aliases if a.strip()})
    if not wanted:
        return []
    known = set(s.exec(select(ModelAlias.alias).where(col(ModelAlias.alias).in_(wanted))))
    missing = [a for a in wanted if a not in known]
    if missing:
        raise KeyAdminError(f"No model named {missing[0][:100]!r}: pick models from the list.")
    return wanted


def _owner(s: Session, scope: Scope, owner_type: str, owner_id: int | None) -> tuple[int | None, int | None]:
    """(user_id, team_id) for the chosen owner, if this user may give a key to that owner."""
    if owner_type not in OWNER_TYPES or owner_id is None:
        raise KeyAdminError("Choose who owns the key: a user, a team or a service account.")
    if owner_type == "org":
        if not scope.org_wide:
            raise KeyPermissionError("You can only create keys for yourself or for teams you belong to.")
        return None, None
    if owner_type == "team":
        if s.get(Team, owner_id) is None:
            raise KeyAdminError("That team does not exist.")
        if not scope.manages_team(owner_id):
            raise KeyPermissionError("You can only create keys for yourself or for teams you belong to.")
        return None, owner_id
    user = s.get(User, owner_id)
    kind = "service" if owner_type == "service" else "person"
    if user is None or user.kind != kind or not user.is_active:
        raise KeyAdminError("That user does not exist." if kind == "person" else "That service account does not exist.")
    if not scope.org_wide and (kind == "service" or owner_id != scope.user_id):
        raise KeyPermissionError("You can only create keys for yourself or for teams you belong to.")
    return owner_id, None


def _current_owner(s: Session, row: VirtualKey) -> tuple[str, int]:
    """The (owner type, id) the edit form shows for a key (a user's key that also names a team shows the user)."""
    if row.user_id is not None:
        user = s.get(User, row.user_id)
        return ("service" if user is not None and user.kind == "service" else "user"), row.user_id
    if row.team_id is not None:
        return "team", row.team_id
    return "org", 0


def _require_admin(scope: Scope, limits: KeyLimits, budget: KeyBudget) -> None:
    if not (limits.empty and budget.empty) and not is_admin(scope):
        raise KeyPermissionError(ADMIN_ONLY)


def _check_given(scope: Scope, limits: KeyLimits | None, budget: KeyBudget | None) -> None:
    """Only admins set a key's limits and budget; each part given must be valid (None leaves it as it is)."""
    if not is_admin(scope):
        raise KeyPermissionError(ADMIN_ONLY)
    if limits is not None:
        check_limits(limits)
    if budget is not None:
        check_budget(budget)


def _put_given(s: Session, key_id: int, limits: KeyLimits | None, budget: KeyBudget | None, actor: str) -> None:
    if limits is not None:
        put_limits(s, "key", key_id, limits, actor=actor)
    if budget is not None:
        put_budget(s, "key", key_id, budget.daily_usd, budget.monthly_usd, actor=actor)


def create_console_key(
    engine: Engine,
    spec: KeySpec,
    *,
    scope: Scope,
    actor: str,
    limits: KeyLimits | None = None,
    budget: KeyBudget | None = None,
    now: datetime | None = None,
) -> MintedKey:
    """A key created from the console: validated, owned, and with its limits and budget in one transaction."""
    limits, budget = check_limits(limits or KeyLimits()), check_budget(budget or KeyBudget())
    require_member(scope, "create")
    _require_admin(scope, limits, budget)
    name = _check_name(spec.name)
    expires = _check_expiry(spec.expires_at, now or utcnow())
    with session(engine) as s:
        user_id, team_id = _owner(s, scope, spec.owner_type, spec.owner_id)
        row, secret = new_key_row(
            name=name,
            user_id=user_id,
            team_id=team_id,
            allowed_aliases=_check_aliases(s, spec.allowed_aliases),
            expires_at=expires,
            created_by=actor,
        )
        add_key(s, row, actor)
        assert row.id is not None
        _put_given(s, row.id, limits, budget, actor)
        s.commit()
        return MintedKey(id=row.id, secret=secret, prefix=row.prefix)


def rotate_key(engine: Engine, key_id: int, *, scope: Scope, actor: str, now: datetime | None = None) -> MintedKey:
    """A new secret for the same key (name, owner, models, scopes, expiry, limits, budget); the old one is revoked.

    One transaction: the new key exists and the old one is revoked, or neither happened.
    """
    now = now or utcnow()
    with session(engine) as s:
        old = managed_key(s, scope, key_id, "rotate")
        if old.revoked_at is not None:
            raise KeyAdminError("This key is revoked: create a new key instead.")
        if old.expires_at is not None and utc(old.expires_at) <= now:
            raise KeyAdminError("This key has expired: create a new key instead.")
        assert old.id is not None
        new, secret = new_key_row(
            name=old.name,
            user_id=old.user_id,
            team_id=old.team_id,
            allowed_aliases=list(old.allowed_aliases),
            scopes=list(old.scopes),
            expires_at=old.expires_at and utc(old.expires_at),
            rotated_from_id=old.id,
            created_by=actor,
        )
        add_key(s, new, actor, action="key.rotate")
        assert new.id is not None
        old.revoked_at = now
        s.add(old)
        after = {"name": old.name, "prefix": old.prefix, "reason": "rotated", "replaced_by": new.id}
        record(s, actor=actor, action="key.revoke", target_type="virtual_key", target_id=str(old.id), after=after)
        limits = s.get(RateLimit, ("key", old.id))
        if limits is not None:
            put_limits(s, "key", new.id, KeyLimits.of(limits), actor=actor)
        budget = s.get(Budget, ("key", old.id))
        if budget is not None:
            put_budget(s, "key", new.id, budget.daily_usd, budget.monthly_usd, actor=actor)
        s.commit()
        return MintedKey(id=new.id, secret=secret, prefix=new.prefix)


def update_key(
    engine: Engine,
    key_id: int,
    spec: KeySpec,
    *,
    scope: Scope,
    actor: str,
    limits: KeyLimits | None = None,
    budget: KeyBudget | None = None,
    now: datetime | None = None,
) -> None:
    """Change a key's name, models, expiry and owner (audited with what changed) and, for admins, its limits
    and budget (None leaves them as they are); all in one transaction."""
    name = _check_name(spec.name)
    if limits is not None or budget is not None:
        _check_given(scope, limits, budget)
    with session(engine) as s:
        row = managed_key(s, scope, key_id, "change")
        if row.revoked_at is not None:
            raise KeyAdminError("This key is revoked and can no longer be changed.")
        if (spec.owner_type, spec.owner_id) == _current_owner(s, row):  # unchanged: keep the user and team both
            user_id, team_id = row.user_id, row.team_id
        else:
            user_id, team_id = _owner(s, scope, spec.owner_type, spec.owner_id)
        expires = spec.expires_at and utc(spec.expires_at)
        current = row.expires_at and utc(row.expires_at)
        if expires != current:
            _check_expiry(expires, now or utcnow())
        wanted: dict[str, Any] = {"name": name, "allowed_aliases": _check_aliases(s, spec.allowed_aliases)}
        wanted |= {"expires_at": expires, "user_id": user_id, "team_id": team_id}
        have: dict[str, Any] = {"name": row.name, "allowed_aliases": sorted(row.allowed_aliases)}
        have |= {"expires_at": current, "user_id": row.user_id, "team_id": row.team_id}
        changed = [k for k in wanted if wanted[k] != have[k]]
        if changed:
            for k in changed:
                setattr(row, k, wanted[k])
            s.add(row)
            before, after = ({k: _plain(d[k]) for k in changed} for d in (have, wanted))
            target = str(key_id)
            record(
                s,
                actor=actor,
                action="key.update",
                target_type="virtual_key",
                target_id=target,
                before=before,
                after=after,
            )
        _put_given(s, key_id, limits, budget, actor)
        s.commit()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def set_key_limits(
    engine: Engine,
    key_id: int,
    *,
    scope: Scope,
    actor: str,
    limits: KeyLimits | None = None,
    budget: KeyBudget | None = None,
) -> None:
    """Admins only: a key's rate limits and budget (None leaves that part as it is), audited, in one transaction."""
    _check_given(scope, limits, budget)
    with session(engine) as s:
        managed_key(s, scope, key_id, "change")
        _put_given(s, key_id, limits, budget, actor)
        s.commit()
