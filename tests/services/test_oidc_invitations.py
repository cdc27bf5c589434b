"""OIDC sign-up honours an invitation, but only for an email the IdP verified."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import Invitation, Membership, Team
from llm_console.services.invitations import create_invitation
from llm_console.services.oidc_accounts import OIDCIdentity, RolePolicy, SignInRefused, sign_in
from llm_console.services.sessions import SessionUser
from llm_console.services.users import create_user

ISSUER = "https://idp.example.com"


@pytest.fixture
def invited(engine: Engine) -> int:
    admin = create_user(engine, email="root@example.com", password=None, role="admin", actor="t")
    with session(engine) as s:
        team = Team(name="research")
        s.add(team)
        s.commit()
        team_id = team.id
    assert admin.id is not None and team_id is not None
    create_invitation(
        engine,
        email="Newcomer@Example.com",
        role="operator",
        base_url="http://console.test",
        ttl_hours=24,
        actor=SessionUser(admin.id, admin.email, "", "admin"),
        team_id=team_id,
        team_role="member",
    )
    return team_id


def identity(verified: bool) -> OIDCIdentity:
    return OIDCIdentity(ISSUER, "sub-1", "newcomer@example.com", verified, "New Comer", ())


def test_a_verified_email_takes_up_its_invitation(engine: Engine, invited: int) -> None:
    user = sign_in(engine, identity(True), policy=RolePolicy({}, "viewer", auto_provision=False))
    assert user.role == "operator" and user.oidc_subject == "sub-1"
    with session(engine) as s:
        assert s.exec(select(Membership).where(Membership.user_id == user.id)).one().team_id == invited
        assert s.exec(select(Invitation)).one().accepted_at is not None


def test_an_unverified_email_never_takes_up_an_invitation(engine: Engine, invited: int) -> None:
    with pytest.raises(SignInRefused) as refused:
        sign_in(engine, identity(False), policy=RolePolicy({}, "viewer", auto_provision=False))
    assert refused.value.code == "oidc_no_account"
    user = sign_in(engine, identity(False), policy=RolePolicy({}, "viewer", auto_provision=True))
    assert user.role == "viewer"  # provisioned with the default, not the invitation's role
    with session(engine) as s:
        assert s.exec(select(Invitation)).one().accepted_at is None
        assert s.exec(select(Membership).where(Membership.user_id == user.id)).first() is None
