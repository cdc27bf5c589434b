"""Service accounts own keys, never sign in, and take their keys down with them, atomically."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, User, VirtualKey
from llm_console.services.keys import hash_key
from llm_console.services.service_accounts import (
    ServiceAccountError,
    create_service_account,
    deactivate_service_account,
    delete_service_account,
    list_service_accounts,
    mint_key,
    slug,
)
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import create_team
from llm_console.services.users import NotAllowed, authenticate, create_user, list_users


def person(engine: Engine, email: str, role: str) -> SessionUser:
    user = create_user(engine, email=email, password=None, role=role, actor="test")
    assert user.id is not None
    return SessionUser(user.id, user.email, user.name, user.role)


@pytest.fixture
def admin(engine: Engine) -> SessionUser:
    return person(engine, "root@example.com", "admin")


def live_keys(engine: Engine, account_id: int) -> list[VirtualKey]:
    with session(engine) as s:
        return list(
            s.exec(select(VirtualKey).where(VirtualKey.user_id == account_id, VirtualKey.revoked_at == None))  # noqa: E711
        )


def test_create_in_a_team_and_mint_keys(engine: Engine, admin: SessionUser) -> None:
    team = create_team(engine, name="apps", actor=admin)
    account = create_service_account(engine, name="CI bot (prod)", team_id=team.id, actor=admin)

    assert account.email == "svc-ci-bot-prod@service.local"
    minted = mint_key(engine, account_id=account.id, key_name="deploys", actor=admin)
    with session(engine) as s:
        key = s.get(VirtualKey, minted.id)
        user = s.get(User, account.id)
    assert key is not None and (key.user_id, key.team_id, key.key_hash) == (
        account.id,
        team.id,
        hash_key(minted.secret),
    )
    assert user is not None and (user.kind, user.password_hash) == ("service", None)
    (listed,) = list_service_accounts(engine)
    assert (listed.name, listed.team, listed.active_keys, listed.is_active) == ("CI bot (prod)", "apps", 1, True)
    assert [r.email for r in list_users(engine).rows] == ["root@example.com"]  # people only


def test_service_accounts_never_sign_in(engine: Engine, admin: SessionUser) -> None:
    account = create_service_account(engine, name="batch", actor=admin)
    assert authenticate(engine, account.email, "") is None
    assert authenticate(engine, account.email, "anything-at-all") is None


def test_names_slugs_and_duplicates(engine: Engine, admin: SessionUser) -> None:
    assert slug("  ÜBER  Bot!! ") == "ber-bot"
    create_service_account(engine, name="ci-bot", actor=admin)
    with pytest.raises(ServiceAccountError, match="already exists"):
        create_service_account(engine, name="CI bot", actor=admin)
    odd = create_service_account(engine, name="日本語", actor=admin)
    assert odd.email.startswith("svc-account-") and odd.name == "日本語"
    with pytest.raises(ServiceAccountError, match="needs a name"):
        create_service_account(engine, name=" ", actor=admin)
    with pytest.raises(ServiceAccountError, match="no team"):
        create_service_account(engine, name="x", team_id=99, actor=admin)


def test_only_admins_manage_service_accounts(engine: Engine, admin: SessionUser) -> None:
    op = person(engine, "op@example.com", "operator")
    account = create_service_account(engine, name="batch", actor=admin)
    for attempt in (
        lambda: create_service_account(engine, name="mine", actor=op),
        lambda: mint_key(engine, account_id=account.id, key_name="k", actor=op),
        lambda: deactivate_service_account(engine, account_id=account.id, actor=op),
        lambda: delete_service_account(engine, account_id=account.id, actor=op),
    ):
        with pytest.raises(NotAllowed):
            attempt()
    assert [a.name for a in list_service_accounts(engine)] == ["batch"]


def test_deactivation_revokes_every_key_and_blocks_new_ones(engine: Engine, admin: SessionUser) -> None:
    account = create_service_account(engine, name="batch", actor=admin)
    for i in range(3):
        mint_key(engine, account_id=account.id, key_name=f"k{i}", actor=admin)

    assert deactivate_service_account(engine, account_id=account.id, actor=admin) == 3

    assert live_keys(engine, account.id) == []
    with pytest.raises(ServiceAccountError, match="deactivated"):
        mint_key(engine, account_id=account.id, key_name="again", actor=admin)
    with session(engine) as s:
        acts = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]  # type: ignore[arg-type]
    assert acts[-4:] == ["key.revoke", "key.revoke", "key.revoke", "service_account.deactivate"]


def test_a_failed_deactivation_leaves_every_key_live(engine: Engine, admin: SessionUser) -> None:
    account = create_service_account(engine, name="batch", actor=admin)
    for i in range(3):
        mint_key(engine, account_id=account.id, key_name=f"k{i}", actor=admin)

    def boom(*_: object) -> None:
        raise RuntimeError("database went away mid-transaction")

    # The account row is written last (after the key revocations): fail exactly there.
    event.listen(User, "before_update", boom)
    try:
        with pytest.raises(RuntimeError):
            deactivate_service_account(engine, account_id=account.id, actor=admin)
    finally:
        event.remove(User, "before_update", boom)

    assert len(live_keys(engine, account.id)) == 3
    assert list_service_accounts(engine)[0].is_active


def test_delete_revokes_keys_in_the_same_transaction(engine: Engine, admin: SessionUser) -> None:
    account = create_service_account(engine, name="batch", actor=admin)
    minted = mint_key(engine, account_id=account.id, key_name="k", actor=admin)

    assert delete_service_account(engine, account_id=account.id, actor=admin) == 1

    with session(engine) as s:
        key = s.get(VirtualKey, minted.id)
        assert s.get(User, account.id) is None
    assert key is not None and key.revoked_at is not None
    assert list_service_accounts(engine) == []
    with pytest.raises(ServiceAccountError, match="no service account"):
        delete_service_account(engine, account_id=account.id, actor=admin)


def test_people_are_not_service_accounts(engine: Engine, admin: SessionUser) -> None:
    with pytest.raises(ServiceAccountError, match="no service account"):
        mint_key(engine, account_id=admin.user_id, key_name="k", actor=admin)
