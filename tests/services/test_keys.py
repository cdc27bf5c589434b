"""Virtual keys: minted with a fixed prefix, stored only as SHA-256, audited without the secret."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, VirtualKey
from llm_console.services.keys import KEY_PREFIX, create_key, find_by_hash, hash_key, looks_like_key, revoke_key

from .conftest import everything_stored


def audit_events(engine: Engine) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]


def test_key_format(engine: Engine) -> None:
    minted = create_key(engine, name="ci", actor="admin@example.com")

    assert KEY_PREFIX == "sk-llmc-"
    assert re.fullmatch(r"sk-llmc-[A-Za-z0-9_-]{43}", minted.secret)
    assert minted.prefix == minted.secret[:14]
    assert looks_like_key(minted.secret)
    assert create_key(engine, name="ci2", actor="a").secret != minted.secret


def test_only_the_sha256_is_stored(engine: Engine, db_path: Path) -> None:
    minted = create_key(engine, name="ci", actor="admin", allowed_aliases=["m"])

    with session(engine) as s:
        row = s.get(VirtualKey, minted.id)
    assert row is not None
    assert row.key_hash == hashlib.sha256(minted.secret.encode()).hexdigest() == hash_key(minted.secret)
    assert row.prefix == minted.prefix
    assert (row.name, row.allowed_aliases, row.revoked_at) == ("ci", ["m"], None)
    stored = everything_stored(engine, db_path)
    assert minted.secret.encode() not in stored
    assert minted.secret[len(minted.prefix) :].encode() not in stored  # nor the part after the display prefix


def test_create_is_audited_without_the_secret(engine: Engine) -> None:
    minted = create_key(engine, name="ci", actor="admin@example.com", allowed_aliases=["a", "b"])

    (event,) = audit_events(engine)
    assert (event.actor, event.action, event.target_type, event.target_id) == (
        "admin@example.com",
        "key.create",
        "virtual_key",
        str(minted.id),
    )
    assert event.after == {"name": "ci", "prefix": minted.prefix, "allowed_aliases": ["a", "b"]}
    assert minted.secret not in repr(event.model_dump())


def test_find_by_hash(engine: Engine) -> None:
    minted = create_key(engine, name="ci", actor="a")
    found = find_by_hash(engine, hash_key(minted.secret))
    assert found is not None and found.id == minted.id
    assert find_by_hash(engine, hash_key(minted.secret + "x")) is None
    assert find_by_hash(engine, minted.secret) is None  # the secret itself is never a lookup key


def test_expiry_is_stored(engine: Engine) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    minted = create_key(engine, name="ci", actor="a", expires_at=when)
    row = find_by_hash(engine, hash_key(minted.secret))
    assert row is not None and row.expires_at is not None
    assert row.expires_at.replace(tzinfo=UTC) == when


def test_revoke(engine: Engine) -> None:
    minted = create_key(engine, name="ci", actor="a")
    before = datetime.now(UTC) - timedelta(seconds=1)

    assert revoke_key(engine, minted.id, actor="boss") is True
    assert revoke_key(engine, minted.id, actor="boss") is False  # already revoked: no second event
    assert revoke_key(engine, 9999, actor="boss") is False

    row = find_by_hash(engine, hash_key(minted.secret))
    assert row is not None and row.revoked_at is not None
    assert row.revoked_at.replace(tzinfo=UTC) >= before
    assert [(e.action, e.actor, e.target_id) for e in audit_events(engine)] == [
        ("key.create", "a", str(minted.id)),
        ("key.revoke", "boss", str(minted.id)),
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sk-llmc-" + "a" * 43, True),
        ("sk-llmc-" + "a" * 12, True),  # 20 characters: the shortest accepted
        ("sk-llmc-" + "a" * 11, False),
        ("sk-llmc-" + "a" * 92, True),  # 100 characters: the longest accepted
        ("sk-llmc-" + "a" * 93, False),
        ("sk-other-" + "a" * 40, False),
        ("SK-LLMC-" + "a" * 40, False),
        ("", False),
        ("' OR 1=1 --", False),
        ("sk-llmc-" + "é" * 20, False),
        (" sk-llmc-" + "a" * 40, False),
    ],
)
def test_looks_like_key(value: str, ok: bool) -> None:
    assert looks_like_key(value) is ok
