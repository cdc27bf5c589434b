"""Teams and their members (with a team role), changed by admins only and audited.

Membership decides what members and viewers see (services/scope.py), so only an active admin may change
it, their own included; everyone else is refused before anything is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, func, select

from llm_console.db.engine import session
from llm_console.db.models import Budget, Membership, RateLimit, Team, User, VirtualKey
from llm_console.services.audit import record
from llm_console.services.sessions import SessionUser
from llm_console.services.users import ROLES, UserError, clean_name, normalize_email, require_admin

TEAM_ROLES = ROLES
MAX_DESCRIPTION = 1000


class TeamError(UserError):
    """A readable reason a team change was refused."""


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: int
    name: str
    description: str
    members: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: int
    email: str
    name: str
    role: str  # the team role
    kind: str
    is_active: bool


def _team_name(raw: str) -> str:
    name = clean_name(raw, what="team name")
    if not name:
        raise TeamError("a team needs a name")
    return name


def _team(s: Session, team_id: int) -> Team:
    team = s.get(Team, team_id)
    if team is None:
        raise TeamError(f"no team with id {team_id}")
    return team


def _name_taken(s: Session, name: str, but: int | None = None) -> bool:
    stmt = select(Team.id).where(func.lower(Team.name) == name.lower())
    if but is not None:
        stmt = stmt.where(Team.id != but)
    return s.exec(stmt).first() is not None


def _team_role(role: str) -> str:
    if role not in TEAM_ROLES:
        raise TeamError(f"team role must be one of {', '.join(TEAM_ROLES)}")
    return role


def create_team(engine: Engine, *, name: str, description: str = "", actor: SessionUser) -> Team:
    name, description = _team_name(name), clean_name(description, what="description", limit=MAX_DESCRIPTION)
    with session(engine) as s:
        require_admin(s, actor)
        if _name_taken(s, name):
            raise TeamError(f"a team named {name!r} already exists")
        team = Team(name=name, description=description)
        s.add(team)
        s.flush()
        after = {"name": name, "description": description}
        record(s, actor=actor.email, action="team.create", target_type="team", target_id=str(team.id), after=after)
        s.commit()
        return team


def update_team(
    engine: Engine, *, team_id: int, name: str | None = None, description: str | None = None, actor: SessionUser
) -> Team:
    """Rename and/or re-describe a team (None leaves a field as it is)."""
    new_name = None if name is None else _team_name(name)
    new_desc = None if description is None else clean_name(description, what="description", limit=MAX_DESCRIPTION)
    with session(engine) as s:
        require_admin(s, actor)
        team = _team(s, team_id)
        before = {"name": team.name, "description": team.description}
        if new_name is not None and new_name != team.name:
            if _name_taken(s, new_name, but=team_id):
                raise TeamError(f"a team named {new_name!r} already exists")
            team.name = new_name
        if new_desc is not None:
            team.description = new_desc
        after = {"name": team.name, "description": team.description}
        if after == before:
            return team
        s.add(team)
        record(
            s,
            actor=actor.email,
            action="team.update",
            target_type="team",
            target_id=str(team_id),
            before=before,
            after=after,
        )
        s.commit()
        return team


def delete_team(engine: Engine, *, team_id: int, actor: SessionUser) -> None:
    """Delete a team with its memberships, budget and limits; refused while it still owns active keys."""
    with session(engine) as s:
        require_admin(s, actor)
        team = _team(s, team_id)
        live_keys = s.exec(
            select(func.count())
            .select_from(VirtualKey)
            .where(VirtualKey.team_id == team_id, VirtualKey.revoked_at == None)  # noqa: E711
        ).one()
        if live_keys:
            raise TeamError(f"team {team.name!r} still owns {live_keys} active key(s); revoke or move them first")
        members = s.exec(select(func.count()).select_from(Membership).where(Membership.team_id == team_id)).one()
        before = {"name": team.name, "description": team.description, "members": members}
        s.exec(delete(Membership).where(Membership.team_id == team_id))  # type: ignore[arg-type]
        for table in (Budget, RateLimit):
            s.exec(delete(table).where(table.entity_type == "team", table.entity_id == team_id))  # type: ignore[arg-type]
        s.delete(team)
        record(s, actor=actor.email, action="team.delete", target_type="team", target_id=str(team_id), before=before)
        s.commit()


def _member_target(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise TeamError(f"no user with id {user_id}")
    return user


def add_member(engine: Engine, *, team_id: int, user_id: int, role: str = "member", actor: SessionUser) -> None:
    role = _team_role(role)
    with session(engine) as s:
        require_admin(s, actor)
        team, user = _team(s, team_id), _member_target(s, user_id)
        if s.get(Membership, (user_id, team_id)) is not None:
            raise TeamError(f"{user.email} is already in {team.name}")
        s.add(Membership(user_id=user_id, team_id=team_id, role=role))
        record(
            s,
            actor=actor.email,
            action="team.member.add",
            target_type="team",
            target_id=str(team_id),
            after={"user_id": user_id, "email": user.email, "role": role},
        )
        s.commit()


def add_member_by_email(engine: Engine, *, team_id: int, email: str, role: str = "member", actor: SessionUser) -> None:
    """`add_member` for the user (person or service account) with this email."""
    try:
        email = normalize_email(email)
    except UserError:
        raise TeamError(f"no user with email {str(email)[:80]!r}") from None
    with session(engine) as s:
        user_id = s.exec(select(User.id).where(User.email == email)).first()
    if user_id is None:
        raise TeamError(f"no user with email {email}; invite them first")
    add_member(engine, team_id=team_id, user_id=user_id, role=role, actor=actor)


def set_member_role(engine: Engine, *, team_id: int, user_id: int, role: str, actor: SessionUser) -> None:
    role = _team_role(role)
    with session(engine) as s:
        require_admin(s, actor)
        row = s.get(Membership, (user_id, team_id))
        if row is None:
            raise TeamError("that user is not a member of this team")
        if row.role == role:
            return
        user = _member_target(s, user_id)
        before, row.role = row.role, role
        s.add(row)
        record(
            s,
            actor=actor.email,
            action="team.member.role",
            target_type="team",
            target_id=str(team_id),
            before={"user_id": user_id, "email": user.email, "role": before},
            after={"user_id": user_id, "email": user.email, "role": role},
        )
        s.commit()


def remove_member(engine: Engine, *, team_id: int, user_id: int, actor: SessionUser) -> None:
    with session(engine) as s:
        require_admin(s, actor)
        row = s.get(Membership, (user_id, team_id))
        if row is None:
            raise TeamError("that user is not a member of this team")
        user = _member_target(s, user_id)
        s.delete(row)
        record(
            s,
            actor=actor.email,
            action="team.member.remove",
            target_type="team",
            target_id=str(team_id),
            before={"user_id": user_id, "email": user.email, "role": row.role},
        )
        s.commit()


def list_teams(engine: Engine) -> list[TeamRow]:
    """Every team by name, with how many members it has."""
    counts = (
        select(Membership.team_id, func.count().label("n")).group_by(Membership.team_id).subquery()  # type: ignore[arg-type]
    )
    with session(engine) as s:
        rows = s.exec(
            select(Team, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.team_id == Team.id)
            .order_by(func.lower(Team.name))
        ).all()
    return [TeamRow(t.id or 0, t.name, t.description, int(n), t.created_at) for t, n in rows]


def team_members(engine: Engine, team_id: int) -> list[MemberRow]:
    with session(engine) as s:
        rows = s.exec(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
            .where(Membership.team_id == team_id)
            .order_by(User.email)
        ).all()
    return [MemberRow(u.id or 0, u.email, u.name, m.role, u.kind, u.is_active) for m, u in rows]


def add_membership(s: Session, *, team_id: int, user_id: int, role: str, actor: str) -> None:
    """Put a new user in a team inside the caller's transaction (invitations, sign-up); audited."""
    role = _team_role(role)
    if s.get(Team, team_id) is None or s.get(Membership, (user_id, team_id)) is not None:
        return
    s.add(Membership(user_id=user_id, team_id=team_id, role=role))
    record(
        s,
        actor=actor,
        action="team.member.add",
        target_type="team",
        target_id=str(team_id),
        after={"user_id": user_id, "role": role},
    )
