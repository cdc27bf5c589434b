"""Service accounts: users of kind "service" that own keys for machines; they have no password and never sign in.

Deactivating or deleting one revokes all of its keys in the same transaction, so a half-done removal that
leaves a live key behind cannot happen.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from llm_console.db.engine import session
from llm_console.db.models import Budget, Membership, RateLimit, Team, User, VirtualKey, utcnow
from llm_console.services.audit import record
from llm_console.services.keys import MintedKey, create_key
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import add_membership
from llm_console.services.users import UserError, clean_name, insert_user, require_admin

EMAIL_DOMAIN = "service.local"
SERVICE_ROLE = "member"  # never used to sign in; the role only matters to reports that group by it
MAX_SLUG = 60


class ServiceAccountError(UserError):
    """A readable reason a service-account change was refused."""


@dataclass(frozen=True, slots=True)
class ServiceAccountRow:
    id: int
    name: str
    email: str
    team_id: int | None
    team: str
    is_active: bool
    active_keys: int
    created_at: datetime


def slug(name: str) -> str:
    """ "CI bot (prod)" -> "ci-bot-prod": lower-case ASCII letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_SLUG].strip("-")


def _account(s: Session, account_id: int) -> User:
    user = s.get(User, account_id)
    if user is None or user.kind != "service":
        raise ServiceAccountError(f"no service account with id {account_id}")
    return user


def create_service_account(
    engine: Engine, *, name: str, actor: SessionUser, team_id: int | None = None
) -> ServiceAccountRow:
    """A new service account named `name` (email svc-<slug>@service.local), optionally in one team."""
    name = clean_name(name, what="service account name")
    if not name:
        raise ServiceAccountError("a service account needs a name")
    base = slug(name) or f"account-{secrets.token_hex(3)}"
    email = f"svc-{base}@{EMAIL_DOMAIN}"
    with session(engine) as s:
        require_admin(s, actor)
        if s.exec(select(User.id).where(User.email == email)).first() is not None:
            raise ServiceAccountError(f"a service account like {name!r} already exists ({email})")
        team = None if team_id is None else s.get(Team, team_id)
        if team_id is not None and team is None:
            raise ServiceAccountError(f"no team with id {team_id}")
        user = insert_user(
            s, email=email, password=None, role=SERVICE_ROLE, actor=actor.email, name=name, kind="service"
        )
        if team is not None:
            add_membership(s, team_id=team_id or 0, user_id=user.id or 0, role="member", actor=actor.email)
        s.commit()
        return ServiceAccountRow(
            user.id or 0, name, email, team_id, team.name if team else "", True, 0, user.created_at
        )


def list_service_accounts(engine: Engine) -> list[ServiceAccountRow]:
    """Every service account by name, with its (first) team and how many unrevoked keys it holds."""
    keys = (
        select(VirtualKey.user_id, func.count().label("n"))
        .where(VirtualKey.revoked_at == None)  # noqa: E711
        .group_by(VirtualKey.user_id)  # type: ignore[arg-type]
        .subquery()
    )
    with session(engine) as s:
        accounts = s.exec(
            select(User, func.coalesce(keys.c.n, 0))
            .outerjoin(keys, keys.c.user_id == User.id)
            .where(User.kind == "service")
            .order_by(func.lower(User.name), col(User.id))
        ).all()
        teams: dict[int, tuple[int, str]] = {}
        for uid, tid, tname in s.exec(
            select(Membership.user_id, Team.id, Team.name)
            .join(Team, Team.id == Membership.team_id)  # type: ignore[arg-type]
            .where(col(Membership.user_id).in_([u.id for u, _ in accounts]))
            .order_by(Team.name)
        ):
            teams.setdefault(uid, (tid or 0, tname))
    rows = []
    for user, n in accounts:
        tid, tname = teams.get(user.id or 0, (None, ""))
        rows.append(
            ServiceAccountRow(user.id or 0, user.name, user.email, tid, tname, user.is_active, int(n), user.created_at)
        )
    return rows


def mint_key(engine: Engine, *, account_id: int, key_name: str, actor: SessionUser) -> MintedKey:
    """A new key owned by an active service account (and its team); the secret is returned only here."""
    key_name = clean_name(key_name, what="key name") or "service key"
    with session(engine) as s:
        require_admin(s, actor)
        account = _account(s, account_id)
        if not account.is_active:
            raise ServiceAccountError("this service account is deactivated; it cannot get new keys")
        team_id = s.exec(
            select(Membership.team_id).where(Membership.user_id == account_id).order_by(Membership.team_id)  # type: ignore[arg-type]
        ).first()
    return create_key(engine, name=key_name, actor=actor.email, user_id=account_id, team_id=team_id)


def _revoke_keys(s: Session, account_id: int, actor: str) -> int:
    now, revoked = utcnow(), 0
    for key in s.exec(select(VirtualKey).where(VirtualKey.user_id == account_id, VirtualKey.revoked_at == None)):  # noqa: E711
        key.revoked_at = now
        s.add(key)
        record(s, actor=actor, action="key.revoke", target_type="virtual_key", target_id=str(key.id))
        revoked += 1
    return revoked


def _retire(s: Session, account_id: int, actor: SessionUser) -> tuple[User, int]:
    """The account, once the caller is checked to be an admin and its keys are revoked (how many)."""
    require_admin(s, actor)
    account = _account(s, account_id)
    return account, _revoke_keys(s, account_id, actor.email)


def deactivate_service_account(engine: Engine, *, account_id: int, actor: SessionUser) -> int:
    """Deactivate the account and revoke every key it holds, together; returns how many keys were revoked."""
    with session(engine) as s:
        account, revoked = _retire(s, account_id, actor)
        if not account.is_active and not revoked:
            return 0
        account.is_active = False
        s.add(account)
        record(
            s,
            actor=actor.email,
            action="service_account.deactivate",
            target_type="user",
            target_id=str(account_id),
            before={"name": account.name, "is_active": True},
            after={"name": account.name, "is_active": False, "keys_revoked": revoked},
        )
        s.commit()
        return revoked


def delete_service_account(engine: Engine, *, account_id: int, actor: SessionUser) -> int:
    """Delete the account (its keys revoked first, in the same transaction; the keys stay for the logs)."""
    with session(engine) as s:
        account, revoked = _retire(s, account_id, actor)
        s.exec(delete(Membership).where(Membership.user_id == account_id))  # type: ignore[arg-type]
        for table in (Budget, RateLimit):
            s.exec(delete(table).where(table.entity_type == "user", table.entity_id == account_id))  # type: ignore[arg-type]
        before = {"name": account.name, "email": account.email, "is_active": account.is_active}
        s.delete(account)
        record(
            s,
            actor=actor.email,
            action="service_account.delete",
            target_type="user",
            target_id=str(account_id),
            before=before,
            after={"keys_revoked": revoked},
        )
        s.commit()
        return revoked
