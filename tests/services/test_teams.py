"""Teams: created, renamed, deleted and staffed by admins only, each change audited."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Budget, Membership, Team
from llm_console.services.budgets import set_budget
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.scope import scope_for
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import (
    TeamError,
    add_member,
    create_team,
    delete_team,
    list_teams,
    remove_member,
    set_member_role,
    team_members,
    update_team,
)
from llm_console.services.users import NotAllowed, UserError, create_user


def person(engine: Engine, email: str, role: str) -> SessionUser:
    user = create_user(engine, email=email, password=None, role=role, actor="test")
    assert user.id is not None
    return SessionUser(user.id, user.email, user.name, user.role)


def actions(engine: Engine) -> list[str]:
    with session(engine) as s:
        return [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.target_type == "team"))]


@pytest.fixture
def admin(engine: Engine) -> SessionUser:
    return person(engine, "root@example.com", "admin")


def test_create_rename_describe_and_list_with_member_counts(engine: Engine, admin: SessionUser) -> None:
    ana = person(engine, "ana@example.com", "member")
    research = create_team(engine, name="  Research ", description="LLM evals", actor=admin)
    create_team(engine, name="apps", actor=admin)
    assert research.id is not None
    add_member(engine, team_id=research.id, user_id=ana.user_id, role="operator", actor=admin)

    update_team(engine, team_id=research.id, name="Research & Evals", description="", actor=admin)

    listed = [(t.name, t.description, t.members) for t in list_teams(engine)]
    assert listed == [("apps", "", 0), ("Research & Evals", "", 1)]
    assert [(m.email, m.role) for m in team_members(engine, research.id)] == [("ana@example.com", "operator")]
    assert actions(engine) == ["team.create", "team.create", "team.member.add", "team.update"]


def test_names_are_unique_case_insensitively_and_validated(engine: Engine, admin: SessionUser) -> None:
    create_team(engine, name="Research", actor=admin)
    with pytest.raises(TeamError, match="already exists"):
        create_team(engine, name="research", actor=admin)
    with pytest.raises(TeamError, match="needs a name"):
        create_team(engine, name="   ", actor=admin)
    with pytest.raises(UserError, match="control characters"):
        create_team(engine, name="a\x1b[31mred", actor=admin)
    team = create_team(engine, name="<img src=x onerror=alert(1)>", actor=admin)
    assert team.name == "<img src=x onerror=alert(1)>"  # stored as text, rendered as text


def test_membership_roles_change_and_scope_follows(engine: Engine, admin: SessionUser) -> None:
    ana = person(engine, "ana@example.com", "member")
    team = create_team(engine, name="apps", actor=admin)
    assert team.id is not None

    add_member(engine, team_id=team.id, user_id=ana.user_id, actor=admin)
    assert scope_for(engine, user_id=ana.user_id, role="member").team_ids == {team.id}
    with pytest.raises(TeamError, match="already in"):
        add_member(engine, team_id=team.id, user_id=ana.user_id, actor=admin)
    set_member_role(engine, team_id=team.id, user_id=ana.user_id, role="viewer", actor=admin)
    with pytest.raises(TeamError, match="team role must be"):
        set_member_role(engine, team_id=team.id, user_id=ana.user_id, role="owner", actor=admin)
    remove_member(engine, team_id=team.id, user_id=ana.user_id, actor=admin)

    assert scope_for(engine, user_id=ana.user_id, role="member").team_ids == frozenset()
    assert actions(engine)[-3:] == ["team.member.add", "team.member.role", "team.member.remove"]


@pytest.mark.parametrize("role", ["viewer", "member", "operator"])
def test_non_admins_change_no_membership_not_even_their_own(engine: Engine, admin: SessionUser, role: str) -> None:
    me = person(engine, f"{role}@example.com", role)
    team = create_team(engine, name="apps", actor=admin)
    other = create_team(engine, name="other", actor=admin)
    assert team.id is not None and other.id is not None
    add_member(engine, team_id=team.id, user_id=me.user_id, role="viewer", actor=admin)
    before = len(actions(engine))

    for attempt in (
        lambda: add_member(engine, team_id=other.id or 0, user_id=me.user_id, actor=me),
        lambda: set_member_role(engine, team_id=team.id or 0, user_id=me.user_id, role="admin", actor=me),
        lambda: remove_member(engine, team_id=team.id or 0, user_id=me.user_id, actor=me),
        lambda: create_team(engine, name="mine", actor=me),
        lambda: update_team(engine, team_id=team.id or 0, name="renamed", actor=me),
        lambda: delete_team(engine, team_id=team.id or 0, actor=me),
    ):
        with pytest.raises(NotAllowed):
            attempt()

    assert len(actions(engine)) == before
    with session(engine) as s:
        assert [(m.team_id, m.role) for m in s.exec(select(Membership).where(Membership.user_id == me.user_id))] == [
            (team.id, "viewer")
        ]
        assert {t.name for t in s.exec(select(Team))} == {"apps", "other"}


def test_admins_may_change_their_own_membership(engine: Engine, admin: SessionUser) -> None:
    team = create_team(engine, name="apps", actor=admin)
    assert team.id is not None
    add_member(engine, team_id=team.id, user_id=admin.user_id, role="admin", actor=admin)
    assert [m.user_id for m in team_members(engine, team.id)] == [admin.user_id]


def test_delete_refuses_while_keys_live_then_cleans_up(engine: Engine, admin: SessionUser) -> None:
    ana = person(engine, "ana@example.com", "member")
    team = create_team(engine, name="apps", actor=admin)
    assert team.id is not None
    add_member(engine, team_id=team.id, user_id=ana.user_id, actor=admin)
    set_budget(engine, "team", team.id, 5.0, None, actor=admin.email)
    key = create_key(engine, name="apps-key", actor=admin.email, team_id=team.id)

    with pytest.raises(TeamError, match="still owns 1 active key"):
        delete_team(engine, team_id=team.id, actor=admin)
    revoke_key(engine, key.id, actor=admin.email)
    delete_team(engine, team_id=team.id, actor=admin)

    with session(engine) as s:
        assert s.get(Team, team.id) is None
        assert s.exec(select(Membership)).first() is None
        assert s.exec(select(Budget)).first() is None
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "team.delete")).one()
    assert event.before == {"name": "apps", "description": "", "members": 1}


def test_unknown_team_is_a_readable_error(engine: Engine, admin: SessionUser) -> None:
    with pytest.raises(TeamError, match="no team with id 42"):
        update_team(engine, team_id=42, name="x", actor=admin)
