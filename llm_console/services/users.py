"""Local accounts: argon2 password hashes, roles, the bootstrap admin."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from llm_console.db.engine import session
from llm_console.db.models import User
from llm_console.services.audit import record

ROLES = ("admin", "operator", "member", "viewer")
_hasher = PasswordHasher()
# Verifying against this keeps the timing of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserError(ValueError):
    """A readable reason a user could not be created or changed."""


def create_user(engine: Engine, *, email: str, password: str | None, role: str, actor: str, name: str = "") -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise UserError(f"not an email address: {email!r}")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < 8:
        raise UserError("password must be at least 8 characters")
    with session(engine) as s:
        if s.exec(select(User).where(User.email == email)).first() is not None:
            raise UserError(f"a user with email {email} already exists")
        user = User(email=email, name=name, role=role, password_hash=_hasher.hash(password) if password else None)
        s.add(user)
        s.flush()
        record(
            s,
            actor=actor,
            action="user.create",
            target_type="user",
            target_id=str(user.id),
            after={"email": email, "role": role},
        )
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
    if user is None or not user.is_active or not user.password_hash:
        return None
    return user


def count_admins(engine: Engine) -> int:
    with session(engine) as s:
        return s.exec(select(func.count()).select_from(User).where(User.role == "admin")).one()


def get_user(engine: Engine, user_id: int) -> User | None:
    with session(engine) as s:
        return s.get(User, user_id)
