"""Local accounts: argon2 password hashes, roles, activation, the bootstrap admin; every change audited.

Changes made from the console take the signed-in `actor` (a SessionUser) and check it here against the
users table itself, so a stale session or a forged socket event cannot change anything: only an active
admin changes roles or activation, nobody changes their own role or deactivates themselves, and the last
active admin always stays.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, or_, select

from llm_console.auth.roles import ROLES
from llm_console.db.engine import session
from llm_console.db.models import ConsoleSession, Membership, Team, User
from llm_console.services.audit import record
from llm_console.services.sessions import SessionUser

STATUSES = ("active", "inactive")
MAX_NAME = 200
MAX_PASSWORD = 1024
PAGE_SIZE = 50
_EMAIL_FORBIDDEN = set(' <>()[]\\,;:"`')
_hasher = PasswordHasher()
# Verifying against this keeps the timing of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserError(ValueError):
    """A readable reason a user could not be created or changed."""


class NotAllowed(UserError):
    """The signed-in user may not make this change (not an admin, or a change to themselves)."""


def normalize_email(raw: str) -> str:
    """A lower-cased email with one "@", no spaces, quotes, brackets or control characters; else UserError."""
    email = str(raw).strip().lower()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in local
        or len(email) > 320
        or any(c in _EMAIL_FORBIDDEN or not c.isprintable() for c in email)
    ):
        raise UserError(f"not an email address: {email[:80]!r}")
    return email


def clean_name(raw: str, *, what: str = "name", limit: int = MAX_NAME) -> str:
    """A display name: trimmed, NFC, at most `limit` characters, no control characters (shown as text)."""
    name = unicodedata.normalize("NFC", str(raw)).strip()
    if len(name) > limit:
        raise UserError(f"{what} is longer than {limit} characters")
    if any(not c.isprintable() for c in name):
        raise UserError(f"{what} contains control characters")
    return name


def check_password(password: str) -> str:
    if len(password) < 8:
        raise UserError("password must be at least 8 characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password is longer than {MAX_PASSWORD} characters")
    return password


def insert_user(
    s: Session, *, email: str, password: str | None, role: str, actor: str, name: str = "", kind: str = "person"
) -> User:
    """Add a user in the caller's transaction (validated, audited); the caller commits."""
    email = normalize_email(email)
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if password is not None:
        check_password(password)
    name = clean_name(name)
    if s.exec(select(User).where(User.email == email)).first() is not None:
        raise UserError(f"a user with email {email} already exists")
    user = User(
        email=email, name=name, role=role, kind=kind, password_hash=_hasher.hash(password) if password else None
    )
    s.add(user)
    s.flush()
    after: dict[str, object] = {"email": email, "role": role}
    if kind != "person":
        after["kind"] = kind
    record(s, actor=actor, action="user.create", target_type="user", target_id=str(user.id), after=after)
    return user


def create_user(engine: Engine, *, email: str, password: str | None, role: str, actor: str, name: str = "") -> User:
    with session(engine) as s:
        user = insert_user(s, email=email, password=password, role=role, actor=actor, name=name)
        s.commit()
        return user


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The active user with this email and password, else None (same cost either way)."""
    with session(engine) as s:
        user = s.exec(select(User).where(User.email == email.strip().lower())).first()
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active or not user.password_hash or user.kind != "person":
        return None
    return user


def count_admins(engine: Engine) -> int:
    with session(engine) as s:
        return s.exec(select(func.count()).select_from(User).where(User.role == "admin")).one()


def get_user(engine: Engine, user_id: int) -> User | None:
    with session(engine) as s:
        return s.get(User, user_id)


def require_admin(s: Session, actor: SessionUser) -> User:
    """The actor's own row, read now; NotAllowed unless it is an active admin (sessions may be seconds stale)."""
    row = s.get(User, actor.user_id)
    if row is None or not row.is_active or row.role != "admin" or row.kind != "person":
        raise NotAllowed("only an admin can change users, teams, invitations or service accounts")
    return row


def _active_admins(s: Session) -> int:
    # FOR UPDATE (PostgreSQL) so two admins demoting each other at once cannot both pass the check.
    ids = s.exec(
        select(User.id).where(User.role == "admin", User.is_active == True, User.kind == "person").with_for_update()  # noqa: E712
    ).all()
    return len(ids)


def _person(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise UserError(f"no user with id {user_id}")
    if user.kind != "person":
        raise UserError("that is a service account: manage it under Service accounts")
    return user


def set_role(engine: Engine, *, user_id: int, role: str, actor: SessionUser) -> User:
    """Change a person's console role (admin only, never one's own, never the last active admin's)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    with session(engine) as s:
        require_admin(s, actor)
        if user_id == actor.user_id:
            raise NotAllowed("you cannot change your own role; ask another admin")
        user = _person(s, user_id)
        before = user.role
        if before == role:
            return user
        if before == "admin" and user.is_active and _active_admins(s) <= 1:
            raise UserError("this is the last active admin; make someone else admin first")
        user.role = role
        s.add(user)
        record(
            s,
            actor=actor.email,
            action="user.role",
            target_type="user",
            target_id=str(user_id),
            before={"email": user.email, "role": before},
            after={"email": user.email, "role": role},
        )
        s.commit()
        return user


def set_active(engine: Engine, *, user_id: int, active: bool, actor: SessionUser) -> User:
    """Deactivate (signs them out everywhere) or reactivate a person; never oneself or the last active admin."""
    with session(engine) as s:
        require_admin(s, actor)
        if user_id == actor.user_id:
            raise NotAllowed("you cannot deactivate or reactivate yourself")
        user = _person(s, user_id)
        if user.is_active == active:
            return user
        if not active and user.role == "admin" and _active_admins(s) <= 1:
            raise UserError("this is the last active admin; make someone else admin first")
        user.is_active = active
        s.add(user)
        ended = 0
        if not active:
            result = s.exec(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))  # type: ignore[arg-type]
            ended = int(result.rowcount or 0)
        after: dict[str, object] = {"email": user.email, "is_active": active}
        if ended:
            after["sessions_ended"] = ended
        record(
            s,
            actor=actor.email,
            action="user.activate" if active else "user.deactivate",
            target_type="user",
            target_id=str(user_id),
            before={"email": user.email, "is_active": not active},
            after=after,
        )
        s.commit()
        return user


def update_name(engine: Engine, *, user_id: int, name: str, actor: SessionUser) -> User:
    """Change a display name: one's own, or anyone's for an admin."""
    name = clean_name(name)
    with session(engine) as s:
        if user_id != actor.user_id:
            require_admin(s, actor)
        user = s.get(User, user_id)
        if user is None or (user_id == actor.user_id and not user.is_active):
            raise UserError(f"no user with id {user_id}")
        if user.name == name:
            return user
        before, user.name = user.name, name
        s.add(user)
        record(
            s,
            actor=actor.email,
            action="user.rename",
            target_type="user",
            target_id=str(user_id),
            before={"name": before},
            after={"name": name},
        )
        s.commit()
        return user


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    email: str
    name: str
    role: str
    is_active: bool
    sso: bool
    teams: tuple[str, ...]
    last_login_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserPage:
    rows: list[UserRow]
    total: int
    page: int
    pages: int


def list_users(
    engine: Engine, *, search: str = "", role: str = "", status: str = "", page: int = 1, page_size: int = PAGE_SIZE
) -> UserPage:
    """One page of people (service accounts are listed on their own), by email; unknown filters are ignored."""
    conds: list[Any] = [User.kind == "person"]
    text = clean_name(search, what="search")[:200].lower()
    if text:
        conds.append(
            or_(
                func.lower(User.email).contains(text, autoescape=True),
                func.lower(User.name).contains(text, autoescape=True),
            )
        )
    if role in ROLES:
        conds.append(User.role == role)
    if status in STATUSES:
        conds.append(User.is_active == (status == "active"))
    page_size = max(1, min(int(page_size), 200))
    with session(engine) as s:
        total = s.exec(select(func.count()).select_from(User).where(*conds)).one()
        pages = max(1, math.ceil(total / page_size))
        page = max(1, min(int(page), pages))
        users = s.exec(
            select(User).where(*conds).order_by(col(User.email)).offset((page - 1) * page_size).limit(page_size)
        ).all()
        ids = [u.id for u in users]
        teams: dict[int, list[str]] = {}
        for uid, tname in s.exec(
            select(Membership.user_id, Team.name)
            .join(Team, Team.id == Membership.team_id)  # type: ignore[arg-type]
            .where(col(Membership.user_id).in_(ids))
            .order_by(Team.name)
        ):
            teams.setdefault(uid, []).append(tname)
    rows = [
        UserRow(
            id=u.id or 0,
            email=u.email,
            name=u.name,
            role=u.role,
            is_active=u.is_active,
            sso=u.oidc_subject is not None,
            teams=tuple(teams.get(u.id or 0, ())),
            last_login_at=u.last_login_at,
            created_at=u.created_at,
        )
        for u in users
    ]
    return UserPage(rows=rows, total=total, page=page, pages=pages)
