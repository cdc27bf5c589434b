"""Linking and provisioning OIDC identities: (issuer, subject) first, verified email only, roles from groups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.db.models import AuditEvent, User
from llm_console.services.oidc_accounts import (
    OIDCIdentity,
    RolePolicy,
    SignInRefused,
    identity_from_claims,
    mapped_role,
    sign_in,
)
from llm_console.services.users import create_user
from llm_console.state.session import LOGIN_ERRORS

ISS = "https://idp.example.com/realms/main"
MAP = {"llm-admins": "admin", "ml-ops": "operator", "staff": "viewer"}
POLICY = RolePolicy(MAP, "viewer", True)
ROOT = Path(__file__).resolve().parents[2]


def who(sub: str = "s-1", email: str | None = "ada@example.com", verified: bool = False, *groups: str) -> OIDCIdentity:
    return OIDCIdentity(ISS, sub, email, verified, "Ada", tuple(groups))


def actions(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    return [(e.action, e.actor) for e in rows]


def refusal(engine: Engine, identity: OIDCIdentity, policy: RolePolicy = POLICY) -> str:
    with pytest.raises(SignInRefused) as caught:
        sign_in(engine, identity, policy=policy)
    return caught.value.code


def test_claims_to_identity() -> None:
    claims = {"iss": ISS, "sub": "42", "email": " Ada@Example.COM ", "email_verified": True, "groups": "ml-ops"}
    ident = identity_from_claims(claims, groups_claim="groups")
    assert (ident.email, ident.email_verified, ident.groups) == ("ada@example.com", True, ("ml-ops",))
    nested = {"iss": ISS, "sub": "42", "realm_access": {"roles": ["a", 3, "b"]}, "email_verified": "false"}
    ident = identity_from_claims(nested, groups_claim="realm_access.roles")
    assert ident.groups == ("a", "b") and ident.email is None and not ident.email_verified
    assert identity_from_claims({**claims, "email_verified": "yes"}, groups_claim="groups").email_verified is False
    assert identity_from_claims({**claims, "groups": {"x": 1}}, groups_claim="groups").groups == ()
    namespaced = {"iss": ISS, "sub": "1", "https://example.com/groups": ["ml-ops"]}  # Auth0-style claim names
    assert identity_from_claims(namespaced, groups_claim="https://example.com/groups").groups == ("ml-ops",)


def test_highest_mapped_role_wins() -> None:
    assert mapped_role(("staff", "ml-ops", "llm-admins", "other"), MAP) == "admin"
    assert mapped_role(("staff", "ml-ops"), MAP) == "operator"
    assert mapped_role(("other",), MAP) is None
    assert mapped_role((), {}) is None


def test_provisions_then_finds_by_issuer_and_subject(engine: Engine) -> None:
    first = sign_in(engine, who("s-1", "ada@example.com", False, "ml-ops"), policy=POLICY)
    assert first.role == "operator" and first.last_login_at is not None and first.password_hash is None
    again = sign_in(engine, who("s-1", "changed@example.com", False, "staff"), policy=POLICY)
    assert again.id == first.id and again.role == "viewer" and again.email == "ada@example.com"
    assert actions(engine) == [
        ("user.create", "oidc:ada@example.com"),
        ("user.oidc_link", "oidc:ada@example.com"),
        ("user.role", "oidc:changed@example.com"),
    ]
    # Another subject with the first one's email is someone else: never merged on an unverified email.
    assert refusal(engine, who("s-2", "ada@example.com", False)) == "oidc_unlinked"
    assert refusal(engine, who("s-2", "ada@example.com", True)) == "oidc_unlinked"  # that account is linked


def test_verified_email_links_an_unlinked_account_once(engine: Engine) -> None:
    local = create_user(engine, email="ada@example.com", password="local-password", role="admin", actor="t")
    assert refusal(engine, who("s-1", "ada@example.com", False)) == "oidc_unlinked"
    linked = sign_in(engine, who("s-1", "ada@example.com", True, "llm-admins"), policy=POLICY)
    assert linked.id == local.id and (linked.oidc_issuer, linked.oidc_subject) == (ISS, "s-1")
    assert [a for a, _ in actions(engine)] == ["user.create", "user.oidc_link"]
    assert refusal(engine, who("s-9", "ada@example.com", True)) == "oidc_unlinked"


def test_roles_without_a_role_map_stay_with_the_console(engine: Engine) -> None:
    console_owned = RolePolicy({}, "member", True)
    user = sign_in(engine, who("s-1"), policy=console_owned)
    assert user.role == "member"
    with Session(engine) as s:
        stored = s.get(User, user.id)
        assert stored is not None
        stored.role = "admin"
        s.add(stored)
        s.commit()
    assert sign_in(engine, who("s-1"), policy=console_owned).role == "admin"
    assert refusal(engine, who("s-2", "new@example.com"), RolePolicy({}, "none", True)) == "oidc_no_role"
    assert sign_in(engine, who("s-1"), policy=RolePolicy({}, "none", True)).role == "admin"


def test_role_map_with_default_none_refuses_unmapped(engine: Engine) -> None:
    strict = RolePolicy(MAP, "none", True)
    assert sign_in(engine, who("s-1", "a@example.com", False, "ml-ops"), policy=strict).role == "operator"
    assert refusal(engine, who("s-1", "a@example.com", False, "other"), strict) == "oidc_no_role"
    assert refusal(engine, who("s-2", "b@example.com", False), strict) == "oidc_no_role"
    with Session(engine) as s:
        assert len(s.exec(select(User)).all()) == 1


def test_auto_provision_off_and_missing_email(engine: Engine) -> None:
    assert refusal(engine, who("s-1"), RolePolicy(MAP, "viewer", False)) == "oidc_no_account"
    assert refusal(engine, who("s-1", None)) == "oidc_no_email"
    create_user(engine, email="ada@example.com", password=None, role="viewer", actor="t")
    assert sign_in(engine, who("s-1", "ada@example.com", True), policy=RolePolicy(MAP, "viewer", False)).id


def test_service_accounts_and_disabled_users_are_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(User(email="bot@example.com", kind="service"))
        s.add(User(email="old@example.com", is_active=False, oidc_issuer=ISS, oidc_subject="s-old"))
        s.commit()
    assert refusal(engine, who("s-bot", "bot@example.com", True)) == "oidc_service"
    assert refusal(engine, who("s-old", "old@example.com")) == "oidc_inactive"
    with Session(engine) as s:
        bot = s.exec(select(User).where(User.email == "bot@example.com")).one()
        assert bot.oidc_subject is None  # the refused link was not kept


def test_every_refusal_code_has_a_readable_message() -> None:
    sources = ["llm_console/auth/oidc.py", "llm_console/services/oidc_accounts.py", "llm_console/auth/routes.py"]
    codes: set[str] = set()
    for path in sources:
        text = (ROOT / path).read_text()
        codes |= set(re.findall(r'(?:OIDCError|SignInRefused|_refused)\(\s*"([a-z_]+)"', text))
    assert {"oidc_state", "oidc_failed", "oidc_denied", "oidc_no_role", "local_disabled"} <= codes
    assert codes <= set(LOGIN_ERRORS), codes - set(LOGIN_ERRORS)
