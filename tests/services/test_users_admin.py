"""Users from the console: only an active admin changes roles and activation; never their own; never the last admin."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.auth.policy import ATTR
from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Budget, ConsoleSession, Membership, Team, User
from llm_console.services.budgets import get_budget
from llm_console.services.sessions import SessionUser, resolve, start_session
from llm_console.services.teams import add_member, create_team
from llm_console.services.users import (
    NotAllowed,
    UserError,
    authenticate,
    create_user,
    list_users,
    normalize_email,
    set_active,
    set_role,
    update_name,
)
from llm_console.settings import Settings
from llm_console.state import invitations as invites_state
from llm_console.state import organization as org_state
from llm_console.state import service_accounts as sa_state
from llm_console.state import teams as teams_state
from llm_console.state.invitations import InvitesState
from llm_console.state.organization import UsersState
from llm_console.state.service_accounts import ServiceAccountsState
from llm_console.state.teams import TeamsState


def person(engine: Engine, email: str, role: str, password: str | None = None) -> SessionUser:
    user = create_user(engine, email=email, password=password, role=role, actor="test")
    assert user.id is not None
    return SessionUser(user.id, user.email, user.name, user.role)


def events(engine: Engine, action: str) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


def row(engine: Engine, user_id: int) -> User:
    with session(engine) as s:
        user = s.get(User, user_id)
    assert user is not None
    return user


def snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with session(engine) as s:
        users = [(u.id, u.email, u.role, u.is_active, u.name) for u in s.exec(select(User))]
        members = [(m.user_id, m.team_id, m.role) for m in s.exec(select(Membership))]
        budgets = [(b.entity_type, b.entity_id, b.daily_usd, b.monthly_usd) for b in s.exec(select(Budget))]
        audits = [(e.id,) for e in s.exec(select(AuditEvent))]
    return [*users, *members, *budgets, *audits]


def test_admin_changes_another_users_role_with_an_audit_event(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "viewer")

    set_role(engine, user_id=ana.user_id, role="operator", actor=admin)

    assert row(engine, ana.user_id).role == "operator"
    (event,) = events(engine, "user.role")
    assert (event.actor, event.target_id) == ("root@example.com", str(ana.user_id))
    assert event.before == {"email": "ana@example.com", "role": "viewer"}
    assert event.after == {"email": "ana@example.com", "role": "operator"}


@pytest.mark.parametrize("role", ["viewer", "member", "operator"])
def test_a_non_admin_cannot_change_their_own_role_team_or_budget(engine: Engine, role: str) -> None:
    person(engine, "root@example.com", "admin")
    me = person(engine, f"{role}@example.com", role)
    with session(engine) as s:
        team = Team(name="research")
        s.add(team)
        s.commit()
        assert team.id is not None
    before = snapshot(engine)

    with pytest.raises(NotAllowed):
        set_role(engine, user_id=me.user_id, role="admin", actor=me)
    with pytest.raises(NotAllowed):
        set_active(engine, user_id=me.user_id, active=False, actor=me)
    with pytest.raises(NotAllowed):
        add_member(engine, team_id=team.id, user_id=me.user_id, role="admin", actor=me)
    # Even a session that claims "admin" is checked against the users table.
    with pytest.raises(NotAllowed):
        set_role(engine, user_id=me.user_id, role="admin", actor=SessionUser(me.user_id, me.email, "", "admin"))

    assert snapshot(engine) == before
    assert row(engine, me.user_id).role == role
    assert get_budget(engine, "user", me.user_id) is None


def test_admin_cannot_change_their_own_role(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    person(engine, "other@example.com", "admin")

    with pytest.raises(NotAllowed, match="your own role"):
        set_role(engine, user_id=admin.user_id, role="viewer", actor=admin)
    with pytest.raises(NotAllowed):
        set_active(engine, user_id=admin.user_id, active=False, actor=admin)
    assert row(engine, admin.user_id).role == "admin"


def test_the_last_active_admin_stays(engine: Engine) -> None:
    first = person(engine, "first@example.com", "admin")
    second = person(engine, "second@example.com", "admin")

    set_role(engine, user_id=second.user_id, role="member", actor=first)
    # first is now the only admin; a stale session of second's still claiming admin changes nothing
    with pytest.raises(NotAllowed):
        set_role(engine, user_id=first.user_id, role="member", actor=second)
    with pytest.raises(NotAllowed):
        set_active(engine, user_id=first.user_id, active=False, actor=second)
    assert row(engine, first.user_id).role == "admin" and row(engine, first.user_id).is_active


def test_a_deactivated_admin_cannot_act(engine: Engine) -> None:
    first = person(engine, "first@example.com", "admin")
    second = person(engine, "second@example.com", "admin")
    ana = person(engine, "ana@example.com", "viewer")

    set_active(engine, user_id=second.user_id, active=False, actor=first)
    with pytest.raises(NotAllowed):
        set_role(engine, user_id=ana.user_id, role="admin", actor=second)
    assert row(engine, ana.user_id).role == "viewer"


def test_deactivation_ends_sessions_and_sign_in(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "member", password="ana-password-1")
    token = start_session(engine, row(engine, ana.user_id), ttl_hours=1)
    assert resolve(engine, token) is not None

    set_active(engine, user_id=ana.user_id, active=False, actor=admin)

    assert resolve(engine, token) is None
    with session(engine) as s:
        assert s.exec(select(ConsoleSession).where(ConsoleSession.user_id == ana.user_id)).first() is None
    assert authenticate(engine, "ana@example.com", "ana-password-1") is None
    (event,) = events(engine, "user.deactivate")
    assert event.after == {"email": "ana@example.com", "is_active": False, "sessions_ended": 1}

    set_active(engine, user_id=ana.user_id, active=True, actor=admin)
    assert authenticate(engine, "ana@example.com", "ana-password-1") is not None
    assert len(events(engine, "user.activate")) == 1


def test_a_role_change_reaches_existing_sessions(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "operator")
    token = start_session(engine, row(engine, ana.user_id), ttl_hours=1)

    set_role(engine, user_id=ana.user_id, role="viewer", actor=admin)

    resolved = resolve(engine, token)
    assert resolved is not None and resolved.role == "viewer"


def test_unknown_roles_and_users_are_readable_errors(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "viewer")

    with pytest.raises(UserError, match="role must be one of"):
        set_role(engine, user_id=ana.user_id, role="superuser", actor=admin)
    with pytest.raises(UserError, match="no user with id"):
        set_role(engine, user_id=9999, role="viewer", actor=admin)


def test_names_are_cleaned_and_own_name_may_change(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "viewer")

    update_name(engine, user_id=ana.user_id, name="  <script>alert(1)</script> Ana ", actor=ana)
    assert row(engine, ana.user_id).name == "<script>alert(1)</script> Ana"  # kept as text; pages render text
    with pytest.raises(UserError, match="control characters"):
        update_name(engine, user_id=ana.user_id, name="Ana\x00\n", actor=ana)
    with pytest.raises(UserError, match="longer than"):
        update_name(engine, user_id=ana.user_id, name="x" * 201, actor=admin)
    with pytest.raises(NotAllowed):
        update_name(engine, user_id=admin.user_id, name="Pwned", actor=ana)
    assert row(engine, admin.user_id).name == ""


@pytest.mark.parametrize(
    "bad",
    [
        "no-at-sign",
        "a@b@c",
        "@example.com",
        "ana@",
        "ana @example.com",
        "<ana>@x.com",
        "ana\n@x.com",
        "ana@x.com\x00",
        "a" * 330 + "@x",
    ],
)
def test_hostile_emails_are_refused(bad: str) -> None:
    with pytest.raises(UserError):
        normalize_email(bad)


def test_list_users_filters_pages_and_escapes_search(engine: Engine) -> None:
    admin = person(engine, "root@example.com", "admin")
    for i in range(7):
        person(engine, f"user{i}@example.com", "member" if i % 2 else "viewer")
    person(engine, "per%cent@example.com", "viewer")
    ana = person(engine, "ana_b@example.com", "viewer")
    set_active(engine, user_id=ana.user_id, active=False, actor=admin)

    page = list_users(engine, page_size=4)
    assert (page.total, page.pages, page.page, len(page.rows)) == (10, 3, 1, 4)
    assert [r.email for r in list_users(engine, page=3, page_size=4).rows] == ["user5@example.com", "user6@example.com"]
    assert list_users(engine, page=99, page_size=4).page == 3
    assert {r.email for r in list_users(engine, search="%").rows} == {"per%cent@example.com"}
    assert {r.email for r in list_users(engine, search="_").rows} == {"ana_b@example.com"}
    assert {r.email for r in list_users(engine, search="' OR 1=1 --").rows} == set()
    assert list_users(engine, role="member").total == 3
    assert [r.email for r in list_users(engine, status="inactive").rows] == ["ana_b@example.com"]
    assert list_users(engine, role="bogus", status="bogus").total == 10


class Console:
    """The state modules' view of the app (engine, settings, key cache) and who the socket is signed in as."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.engine = engine
        self.settings = Settings(env="dev", public_url="https://console.example.com")
        self.runtime = SimpleNamespace(keys=SimpleNamespace(invalidate=lambda: None))
        self.user: SessionUser | None = None

        async def signed_in(_state: object) -> SessionUser | None:
            return self.user

        monkeypatch.setattr(org_state, "current_user", signed_in)
        for module in (org_state, teams_state, invites_state, sa_state):
            monkeypatch.setattr(module, "get_context", lambda: self)


async def call(state_cls: type, handler: str, *args: object, state: object = None) -> object:
    instance = state if state is not None else state_cls(_reflex_internal_init=True)
    await state_cls.event_handlers[handler].fn(instance, *args)
    return instance


@pytest.mark.parametrize("role", ["viewer", "member", "operator"])
async def test_handlers_refuse_non_admins_and_change_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    admin = person(engine, "root@example.com", "admin")
    me = person(engine, f"{role}@example.com", role)
    team = create_team(engine, name="apps", actor=admin)
    console = Console(engine, monkeypatch)
    console.user = me
    before = snapshot(engine)

    users = await call(UsersState, "change_role", str(me.user_id), "admin")
    assert users.error  # type: ignore[attr-defined]
    await call(UsersState, "toggle_active", str(admin.user_id), False)
    teams = TeamsState(_reflex_internal_init=True)
    teams.selected = str(team.id)
    for handler, args in [
        ("add_member", ({"email": me.email, "role": "admin"},)),
        ("set_member_role", (str(me.user_id), "admin")),
        ("create", ({"name": "mine"},)),
        ("delete", ()),
    ]:
        await call(TeamsState, handler, *args, state=teams)
        assert teams.error, handler
    invites = await call(InvitesState, "create", {"email": "friend@example.com", "role": "admin"})
    assert invites.link == ""  # type: ignore[attr-defined]
    await call(ServiceAccountsState, "create", {"name": "my-bot"})
    accounts = await call(ServiceAccountsState, "mint", str(me.user_id))
    assert accounts.secret == ""  # type: ignore[attr-defined]

    assert snapshot(engine) == before


async def test_handlers_do_what_admins_ask(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = person(engine, "root@example.com", "admin")
    ana = person(engine, "ana@example.com", "viewer")
    console = Console(engine, monkeypatch)
    console.user = admin

    users = await call(UsersState, "load")
    assert users.can_write and [r["email"] for r in users.rows] == ["ana@example.com", "root@example.com"]  # type: ignore[attr-defined]
    assert users.rows[1]["self"] == "true"  # type: ignore[attr-defined]
    await call(UsersState, "change_role", str(ana.user_id), "operator", state=users)
    assert row(engine, ana.user_id).role == "operator" and users.notice  # type: ignore[attr-defined]
    await call(UsersState, "change_role", str(admin.user_id), "viewer", state=users)
    assert "your own role" in users.error and row(engine, admin.user_id).role == "admin"  # type: ignore[attr-defined]
    await call(UsersState, "change_role", "1 OR 1=1", "viewer", state=users)
    assert users.error  # type: ignore[attr-defined]

    invites = await call(InvitesState, "create", {"email": "new@example.com", "role": "member", "team": "__none__"})
    assert invites.link.startswith("https://console.example.com/invite?token=")  # type: ignore[attr-defined]
    assert [p["email"] for p in invites.pending] == ["new@example.com"]  # type: ignore[attr-defined]
    await call(InvitesState, "set_open", False, state=invites)
    assert invites.link == ""  # type: ignore[attr-defined]
    await call(InvitesState, "create", {"email": "ana@example.com", "role": "member"}, state=invites)
    assert invites.error and invites.link == ""  # type: ignore[attr-defined]  # refused readably, not raised
    await call(InvitesState, "revoke", invites.pending[0]["id"], state=invites)  # type: ignore[attr-defined]
    await call(InvitesState, "revoke", "999999", state=invites)
    assert invites.error and invites.pending == []  # type: ignore[attr-defined]

    teams = await call(TeamsState, "create", {"name": "apps", "description": "web"})
    await call(TeamsState, "add_member", {"email": "ANA@example.com", "role": "viewer"}, state=teams)
    assert [(m["email"], m["role"]) for m in teams.members] == [("ana@example.com", "viewer")]  # type: ignore[attr-defined]
    await call(TeamsState, "add_member", {"email": "ghost@example.com"}, state=teams)
    assert "invite them first" in teams.error  # type: ignore[attr-defined]

    accounts = await call(ServiceAccountsState, "create", {"name": "ci", "team": teams.selected})  # type: ignore[attr-defined]
    (account,) = accounts.rows  # type: ignore[attr-defined]
    await call(ServiceAccountsState, "mint", account["id"], state=accounts)
    assert accounts.secret.startswith("sk-llmc-") and accounts.rows[0]["keys"] == "1"  # type: ignore[attr-defined]
    await call(ServiceAccountsState, "dismiss_secret", state=accounts)
    await call(ServiceAccountsState, "deactivate", account["id"], state=accounts)
    assert accounts.secret == "" and accounts.rows[0]["keys"] == "0"  # type: ignore[attr-defined]


async def test_viewers_do_not_even_read_the_organization(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    person(engine, "root@example.com", "admin")
    console = Console(engine, monkeypatch)
    console.user = person(engine, "viewer@example.com", "viewer")
    users = await call(UsersState, "load")
    assert not users.ready and users.rows == []  # type: ignore[attr-defined]
    console.user = person(engine, "op@example.com", "operator")
    users = await call(UsersState, "load")
    assert users.ready and not users.can_write and len(users.rows) == 3  # type: ignore[attr-defined]
    console.user = None
    assert (await call(UsersState, "load")).rows == []  # type: ignore[attr-defined]


def test_every_organization_handler_declares_its_role() -> None:
    expected = {
        "load": "operator",
        "apply_filters": "operator",
        "set_filter": "operator",
        "goto": "operator",
        "select": "operator",
    }
    for state_cls in (UsersState, TeamsState, InvitesState, ServiceAccountsState):
        ours = {n: h for n, h in state_cls.event_handlers.items() if h.fn.__module__.startswith("llm_console.")}
        assert len(ours) >= 4
        for name, handler in ours.items():
            assert getattr(handler.fn, ATTR, None) == expected.get(name, "admin"), (state_cls.__name__, name)
