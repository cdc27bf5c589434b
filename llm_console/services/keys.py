"""Virtual keys: minted once, stored as SHA-256 and a display prefix, looked up by hash only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import random_token, sha256_hex
from llm_console.db.engine import session
from llm_console.db.models import VirtualKey, utcnow
from llm_console.services.audit import record

KEY_PREFIX = "sk-llmc-"
SCOPES = ("analytics",)
"""Rights a key may carry beyond calling models: "analytics" reads /api/v1/analytics (an admin key)."""


@dataclass(frozen=True, slots=True)
class MintedKey:
    id: int
    secret: str
    prefix: str


def hash_key(secret: str) -> str:
    return sha256_hex(secret)


def looks_like_key(secret: str) -> bool:
    """Cheap shape check so junk never reaches the database."""
    return secret.startswith(KEY_PREFIX) and 20 <= len(secret) <= 100 and secret.isascii()


def create_key(
    engine: Engine,
    *,
    name: str,
    actor: str,
    user_id: int | None = None,
    team_id: int | None = None,
    allowed_aliases: list[str] | None = None,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
) -> MintedKey:
    """Mint a key; the secret is returned here and never again. Unknown scopes are a ValueError."""
    unknown = sorted(set(scopes or ()) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    secret = KEY_PREFIX + random_token(32)
    prefix = secret[: len(KEY_PREFIX) + 6]
    row = VirtualKey(
        key_hash=hash_key(secret),
        prefix=prefix,
        name=name,
        user_id=user_id,
        team_id=team_id,
        allowed_aliases=list(allowed_aliases or []),
        expires_at=expires_at,
        scopes=sorted(set(scopes or ())),
    )
    after: dict[str, object] = {"name": name, "prefix": prefix, "allowed_aliases": row.allowed_aliases}
    if row.scopes:
        after["scopes"] = row.scopes
    with session(engine) as s:
        s.add(row)
        s.flush()
        record(
            s,
            actor=actor,
            action="key.create",
            target_type="virtual_key",
            target_id=str(row.id),
            after=after,
        )
        s.commit()
        assert row.id is not None
        return MintedKey(id=row.id, secret=secret, prefix=prefix)


def revoke_key(engine: Engine, key_id: int, *, actor: str) -> bool:
    with session(engine) as s:
        row = s.get(VirtualKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        s.add(row)
        record(s, actor=actor, action="key.revoke", target_type="virtual_key", target_id=str(key_id))
        s.commit()
        return True


def find_by_hash(engine: Engine, key_hash: str) -> VirtualKey | None:
    with session(engine) as s:
        return s.exec(select(VirtualKey).where(VirtualKey.key_hash == key_hash)).first()
