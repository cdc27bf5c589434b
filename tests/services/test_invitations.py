"""Invitations: the link's token is stored only as SHA-256, works once, expires, can be revoked."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from reflex.istate.data import RouterData
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Invitation, Membership, User, utcnow
from llm_console.services.invitations import (
    InvitationError,
    accept,
    apply_invitation,
    create_invitation,
    invite_link,
    list_pending,
    lookup,
    pending_invitation_for,
    revoke_invitation,
)
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import create_team
from llm_console.services.users import NotAllowed, authenticate, create_user
from llm_console.state import invite as invite_state
from llm_console.state.invite import InviteState

from .conftest import everything_stored

BASE = "https://console.example.com"


def person(engine: Engine, email: str, role: str) -> SessionUser:
    user = create_user(engine, email=email, password=None, role=role, actor="test")
    assert user.id is not None
    return SessionUser(user.id, user.email, user.name, user.role)


@pytest.fixture
def admin(engine: Engine) -> SessionUser:
    return person(engine, "root@example.com", "admin")


def invite(engine: Engine, admin: SessionUser, email: str = "new@example.com", **kw: object) -> tuple[int, str]:
    made = create_invitation(engine, email=email, base_url=BASE, ttl_hours=72, actor=admin, **{"role": "member", **kw})  # type: ignore[arg-type]
    parts = urlsplit(made.link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/invite"
    return made.id, parse_qs(parts.query)["token"][0]


def code_of(exc: pytest.ExceptionInfo[InvitationError]) -> str:
    return exc.value.code


def test_the_token_is_stored_only_as_its_hash(engine: Engine, admin: SessionUser, db_path: Path) -> None:
    inv_id, token = invite(engine, admin)

    with session(engine) as s:
        row = s.get(Invitation, inv_id)
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "invitation.create")).one()
    assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.encode() not in everything_stored(engine, db_path)
    assert len(token) >= 40
    assert event.after is not None and token not in str(event.after)
    assert lookup(engine, token).email == "new@example.com"


def test_accept_creates_the_account_with_role_and_team_once(engine: Engine, admin: SessionUser) -> None:
    team = create_team(engine, name="apps", actor=admin)
    _, token = invite(engine, admin, "New@Example.com", role="operator", team_id=team.id, team_role="viewer")

    user = accept(engine, token=token, name="Nia <b>N</b>", password="long-enough-pw")

    assert (user.email, user.role, user.name, user.kind) == ("new@example.com", "operator", "Nia <b>N</b>", "person")
    assert authenticate(engine, "new@example.com", "long-enough-pw") is not None
    with session(engine) as s:
        assert s.get(Membership, (user.id, team.id)) is not None
        acts = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]  # type: ignore[arg-type]
    assert acts[-3:] == ["user.create", "team.member.add", "invitation.accept"]
    with pytest.raises(InvitationError) as again:
        accept(engine, token=token, name="Second", password="long-enough-pw")
    assert code_of(again) == "used"
    assert list_pending(engine) == []


def test_expired_revoked_and_bogus_tokens_are_refused_readably(engine: Engine, admin: SessionUser) -> None:
    old_id, old = invite(engine, admin, "old@example.com")
    with session(engine) as s:
        row = s.get(Invitation, old_id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        s.add(row)
        s.commit()
    gone_id, gone = invite(engine, admin, "gone@example.com")
    revoke_invitation(engine, invitation_id=gone_id, actor=admin)

    for token, code in [
        (old, "expired"),
        (gone, "revoked"),
        ("nope", "invalid"),
        ("", "invalid"),
        ("x" * 5000, "invalid"),
        ("' OR 1=1 --", "invalid"),
        ("tok\x00en", "invalid"),
    ]:
        with pytest.raises(InvitationError) as exc:
            accept(engine, token=token, name="N", password="long-enough-pw")
        assert code_of(exc) == code, token[:20]
        assert str(exc.value)  # a sentence for the page
    with session(engine) as s:
        assert s.exec(select(User).where(User.email.in_(["old@example.com", "gone@example.com"]))).first() is None  # type: ignore[attr-defined]


def test_bad_name_or_password_leaves_the_invitation_usable(engine: Engine, admin: SessionUser) -> None:
    _, token = invite(engine, admin)
    for name, password, code in [
        ("N", "short", "password"),
        ("x" * 300, "long-enough-pw", "name"),
        ("a\x07", "long-enough-pw", "name"),
    ]:
        with pytest.raises(InvitationError) as exc:
            accept(engine, token=token, name=name, password=password)
        assert code_of(exc) == code
    assert accept(engine, token=token, name="", password="long-enough-pw").email == "new@example.com"


def test_email_taken_is_refused_at_creation_and_at_acceptance(engine: Engine, admin: SessionUser) -> None:
    with pytest.raises(InvitationError) as at_create:
        invite(engine, admin, "ROOT@example.com")
    assert code_of(at_create) == "email_taken"
    _, token = invite(engine, admin, "late@example.com")
    create_user(engine, email="late@example.com", password=None, role="viewer", actor="oidc")
    with pytest.raises(InvitationError) as at_accept:
        accept(engine, token=token, name="L", password="long-enough-pw")
    assert code_of(at_accept) == "email_taken"


@pytest.mark.parametrize("email", ["not-an-email", "a@b@c", "x<script>@evil.com", "a b@c.d", "a@b.c\r\nBcc: x@y"])
def test_hostile_emails_are_refused(engine: Engine, admin: SessionUser, email: str) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        invite(engine, admin, email)


def test_only_admins_invite_or_revoke(engine: Engine, admin: SessionUser) -> None:
    op = person(engine, "op@example.com", "operator")
    with pytest.raises(NotAllowed):
        invite(engine, op, "friend@example.com", role="admin")
    inv_id, _ = invite(engine, admin)
    with pytest.raises(NotAllowed):
        revoke_invitation(engine, invitation_id=inv_id, actor=op)
    assert [p.email for p in list_pending(engine)] == ["new@example.com"]


def test_reinviting_replaces_the_pending_invitation(engine: Engine, admin: SessionUser) -> None:
    _, first = invite(engine, admin, role="viewer")
    _, second = invite(engine, admin, role="operator")
    with pytest.raises(InvitationError) as exc:
        lookup(engine, first)
    assert code_of(exc) == "revoked"
    assert lookup(engine, second).role == "operator"
    assert [p.role for p in list_pending(engine)] == ["operator"]


def test_links_need_an_http_base(engine: Engine, admin: SessionUser) -> None:
    assert invite_link("http://10.0.0.5:3000/", "t") == "http://10.0.0.5:3000/invite?token=t"
    for base in ("", "javascript:alert(1)", "ftp://x", "https://x/?a=b"):
        with pytest.raises(InvitationError):
            invite_link(base, "t")


def test_pending_invitation_for_oidc_sign_up(engine: Engine, admin: SessionUser) -> None:
    team = create_team(engine, name="apps", actor=admin)
    invite(engine, admin, "sso@example.com", role="operator", team_id=team.id, team_role="admin")

    pending = pending_invitation_for(engine, "SSO@example.com")
    assert pending is not None and (pending.role, pending.team_id, pending.team_role) == ("operator", team.id, "admin")
    assert pending_invitation_for(engine, "nobody@example.com") is None
    assert pending_invitation_for(engine, "garbage") is None
    user = create_user(engine, email="sso@example.com", password=None, role=pending.role, actor="oidc")
    with session(engine) as s:
        assert apply_invitation(s, pending, user_id=user.id or 0, actor="sso@example.com")
        s.commit()
    with session(engine) as s:
        assert s.get(Membership, (user.id, team.id)) is not None
        assert not apply_invitation(s, pending, user_id=user.id or 0, actor="sso@example.com")
    assert pending_invitation_for(engine, "sso@example.com") is None


def test_concurrent_accepts_create_one_account(engine: Engine, admin: SessionUser) -> None:
    _, token = invite(engine, admin)
    results: list[str] = []

    def go() -> None:
        try:
            accept(engine, token=token, name="Racer", password="long-enough-pw")
            results.append("ok")
        except InvitationError as exc:
            results.append(exc.code)
        except Exception as exc:  # SQLite may report the loser as busy: still a refusal
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    with session(engine) as s:
        assert len(s.exec(select(User).where(User.email == "new@example.com")).all()) == 1


async def invite_page(engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str) -> InviteState:
    monkeypatch.setattr(invite_state, "get_context", lambda: SimpleNamespace(engine=engine))
    state = InviteState(_reflex_internal_init=True)
    router = RouterData.from_router_data({"pathname": "/invite", "asPath": f"/invite?{query}"})
    object.__setattr__(state, "router", router)
    await InviteState.event_handlers["load"].fn(state)
    return state


async def test_the_public_page_shows_only_email_and_role(
    engine: Engine, admin: SessionUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = create_team(engine, name="secret-project", actor=admin)
    _, token = invite(engine, admin, role="operator", team_id=team.id)

    page = await invite_page(engine, monkeypatch, f"token={token}")

    assert (page.valid, page.email, page.role, page.error, page.token) == (
        True,
        "new@example.com",
        "operator",
        "",
        token,
    )
    shown = repr(page.get_delta())
    assert "secret-project" not in shown and "root@example.com" not in shown


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "not valid"),
        ("token=nope", "not valid"),
        ("token=" + "x" * 500, "not valid"),
        ("token=nope&error=<script>", "not valid"),
    ],
)
async def test_the_public_page_explains_unusable_links(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str, message: str
) -> None:
    page = await invite_page(engine, monkeypatch, query)
    assert not page.valid and page.email == "" and message in page.error


async def test_the_public_page_shows_the_routes_error_code(
    engine: Engine, admin: SessionUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = invite(engine, admin)
    page = await invite_page(engine, monkeypatch, f"token={token}&error=password")
    assert page.valid and "at least 8 characters" in page.error
    revoke_invitation(engine, invitation_id=list_pending(engine)[0].id, actor=admin)
    page = await invite_page(engine, monkeypatch, f"token={token}")
    assert not page.valid and "withdrawn" in page.error and page.email == ""
