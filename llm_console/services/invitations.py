"""Invitations: an admin makes a one-time sign-up link; the link holds a random token, the table its SHA-256.

Accepting creates the account, its team membership and marks the invitation used in one transaction, so a
link works once, until it expires or is revoked. OIDC sign-in honours a pending invitation for the same
email through `pending_invitation_for` and `apply_invitation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from llm_console.crypto import random_token, sha256_hex
from llm_console.db.engine import session
from llm_console.db.models import Invitation, Team, User, utcnow
from llm_console.db.queries.filters import utc
from llm_console.services.audit import record
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import TEAM_ROLES, add_membership
from llm_console.services.users import (
    ROLES,
    UserError,
    check_password,
    clean_name,
    insert_user,
    normalize_email,
    require_admin,
)

INVITE_PATH = "/invite"
MAX_TOKEN = 100
MESSAGES = {
    "invalid": "This invitation link is not valid. Ask an admin for a new one.",
    "expired": "This invitation has expired. Ask an admin for a new one.",
    "used": "This invitation has already been used. Sign in instead.",
    "revoked": "This invitation was withdrawn. Ask an admin for a new one.",
    "email_taken": "An account with this email already exists. Sign in instead.",
    "password": "Choose a password of at least 8 characters.",
    "name": "Enter a name of at most 200 characters, without control characters.",
}


class InvitationError(UserError):
    """A readable reason an invitation could not be made or used; `code` names it for URLs (see MESSAGES)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, MESSAGES["invalid"]))
        self.code = code


@dataclass(frozen=True, slots=True)
class CreatedInvitation:
    id: int
    email: str
    role: str
    link: str  # holds the token: shown once, never stored
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationRow:
    id: int
    email: str
    role: str
    team: str
    team_role: str
    created_by: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    """What the public invite page may show: whom it is for and the role it grants, nothing else."""

    email: str
    role: str


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    id: int
    email: str
    role: str
    team_id: int | None
    team_role: str


def invite_link(base_url: str, token: str) -> str:
    """`<base_url>/invite?token=...`; the base must be an http(s) origin (settings.public_url or the page's)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvitationError("invalid", "set LLMC_PUBLIC_URL to the console's http(s) address to make invite links")
    return f"{base_url.strip().rstrip('/')}{INVITE_PATH}?token={token}"


def create_invitation(
    engine: Engine,
    *,
    email: str,
    role: str,
    base_url: str,
    ttl_hours: float,
    actor: SessionUser,
    team_id: int | None = None,
    team_role: str = "member",
) -> CreatedInvitation:
    """A new invitation (older pending ones for the same email are revoked); the link is returned only here."""
    email = normalize_email(email)
    if role not in ROLES:
        raise InvitationError("invalid", f"role must be one of {', '.join(ROLES)}")
    if team_role not in TEAM_ROLES:
        raise InvitationError("invalid", f"team role must be one of {', '.join(TEAM_ROLES)}")
    if not 0 < ttl_hours <= 24 * 366:
        raise InvitationError("invalid", "an invitation must expire within a year")
    token = random_token(32)
    link = invite_link(base_url, token)
    now = utcnow()
    with session(engine) as s:
        require_admin(s, actor)
        if s.exec(select(User.id).where(User.email == email)).first() is not None:
            raise InvitationError("email_taken", f"{email} already has an account")
        if team_id is not None and s.get(Team, team_id) is None:
            raise InvitationError("invalid", f"no team with id {team_id}")
        for old in _pending(s, email, now):
            old.revoked_at = now
            s.add(old)
            record(
                s,
                actor=actor.email,
                action="invitation.revoke",
                target_type="invitation",
                target_id=str(old.id),
                before={"email": email},
                after={"replaced": True},
            )
        row = Invitation(
            token_hash=sha256_hex(token),
            email=email,
            role=role,
            team_id=team_id,
            team_role=team_role,
            created_by=actor.email,
            created_at=now,
            expires_at=now + timedelta(hours=ttl_hours),
        )
        s.add(row)
        s.flush()
        after: dict[str, object] = {"email": email, "role": role, "expires_at": row.expires_at.isoformat()}
        if team_id is not None:
            after.update(team_id=team_id, team_role=team_role)
        record(
            s,
            actor=actor.email,
            action="invitation.create",
            target_type="invitation",
            target_id=str(row.id),
            after=after,
        )
        s.commit()
        assert row.id is not None
        return CreatedInvitation(row.id, email, role, link, row.expires_at)


def _pending(s: Session, email: str, now: datetime) -> list[Invitation]:
    return list(
        s.exec(
            select(Invitation)
            .where(Invitation.email == email, Invitation.accepted_at == None, Invitation.revoked_at == None)  # noqa: E711
            .where(Invitation.expires_at > now)
            .order_by(col(Invitation.id).desc())
        )
    )


def revoke_invitation(engine: Engine, *, invitation_id: int, actor: SessionUser) -> None:
    with session(engine) as s:
        require_admin(s, actor)
        row = s.get(Invitation, invitation_id)
        if row is None:
            raise InvitationError("invalid", f"no invitation with id {invitation_id}")
        if row.accepted_at is not None:
            raise InvitationError("used", "this invitation was already accepted")
        if row.revoked_at is not None:
            return
        row.revoked_at = utcnow()
        s.add(row)
        record(
            s,
            actor=actor.email,
            action="invitation.revoke",
            target_type="invitation",
            target_id=str(invitation_id),
            before={"email": row.email, "role": row.role},
        )
        s.commit()


def list_pending(engine: Engine) -> list[InvitationRow]:
    """Invitations that can still be accepted, newest first."""
    with session(engine) as s:
        rows = s.exec(
            select(Invitation, Team.name)
            .outerjoin(Team, Team.id == Invitation.team_id)  # type: ignore[arg-type]
            .where(Invitation.accepted_at == None, Invitation.revoked_at == None)  # noqa: E711
            .where(Invitation.expires_at > utcnow())
            .order_by(col(Invitation.id).desc())
            .limit(500)
        ).all()
    return [
        InvitationRow(
            inv.id or 0,
            inv.email,
            inv.role,
            team or "",
            inv.team_role if team else "",
            inv.created_by,
            inv.created_at,
            inv.expires_at,
        )
        for inv, team in rows
    ]


def _by_token(s: Session, token: str) -> Invitation:
    """The usable invitation for `token`, else InvitationError naming why (invalid, revoked, used, expired)."""
    if not token or len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise InvitationError("invalid")
    row = s.exec(select(Invitation).where(Invitation.token_hash == sha256_hex(token))).first()
    if row is None:
        raise InvitationError("invalid")
    if row.revoked_at is not None:
        raise InvitationError("revoked")
    if row.accepted_at is not None:
        raise InvitationError("used")
    if utc(row.expires_at) <= utcnow():
        raise InvitationError("expired")
    return row


def lookup(engine: Engine, token: str) -> InvitationInfo:
    """The email and role of a usable invitation (for the public page), else InvitationError."""
    with session(engine) as s:
        row = _by_token(s, token)
    return InvitationInfo(row.email, row.role)


def _mark_accepted(s: Session, invitation_id: int) -> bool:
    """Claim the invitation; False when another request claimed or revoked it first."""
    result = s.exec(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.accepted_at == None, Invitation.revoked_at == None)  # type: ignore[arg-type]  # noqa: E711
        .values(accepted_at=utcnow())
    )
    return int(result.rowcount or 0) == 1


def accept(engine: Engine, *, token: str, name: str, password: str) -> User:
    """Create the invited account (with its team membership) and use up the invitation, all or nothing."""
    try:
        name = clean_name(name)
    except UserError:
        raise InvitationError("name") from None
    try:
        check_password(password)
    except UserError:
        raise InvitationError("password") from None
    with session(engine) as s:
        row = _by_token(s, token)
        if s.exec(select(User.id).where(User.email == row.email)).first() is not None:
            raise InvitationError("email_taken")
        if not _mark_accepted(s, row.id or 0):
            raise InvitationError("used")
        try:
            user = insert_user(s, email=row.email, password=password, role=row.role, actor=row.email, name=name)
            if row.team_id is not None:
                add_membership(s, team_id=row.team_id, user_id=user.id or 0, role=row.team_role, actor=row.email)
            record(
                s,
                actor=row.email,
                action="invitation.accept",
                target_type="invitation",
                target_id=str(row.id),
                after={"user_id": user.id, "email": row.email, "role": row.role},
            )
            s.commit()
        except IntegrityError:
            s.rollback()
            raise InvitationError("email_taken") from None
        return user


def pending_invitation_for(engine: Engine, email: str) -> PendingInvitation | None:
    """The newest usable invitation for `email` (any case), or None; OIDC sign-up takes its role and team."""
    try:
        email = normalize_email(email)
    except UserError:
        return None
    with session(engine) as s:
        rows = _pending(s, email, utcnow())
    if not rows:
        return None
    row = rows[0]
    return PendingInvitation(row.id or 0, row.email, row.role, row.team_id, row.team_role)


def apply_invitation(s: Session, invitation: PendingInvitation, *, user_id: int, actor: str) -> bool:
    """In the caller's transaction: mark `invitation` used by `user_id` and add its team membership (audited).

    False when it was used or revoked meanwhile (then nothing is written; the caller decides what to do).
    """
    if not _mark_accepted(s, invitation.id):
        return False
    if invitation.team_id is not None:
        add_membership(s, team_id=invitation.team_id, user_id=user_id, role=invitation.team_role, actor=actor)
    record(
        s,
        actor=actor,
        action="invitation.accept",
        target_type="invitation",
        target_id=str(invitation.id),
        after={"user_id": user_id, "email": invitation.email, "role": invitation.role},
    )
    return True
