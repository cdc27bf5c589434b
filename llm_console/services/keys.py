"""Virtual keys: minted once, stored as SHA-256 and a display prefix, looked up by hash only.

Who may change a key lives here too: operators and admins manage every key, members the keys they own or
their teams own, viewers none. Console creation, rotation, edits and limits are in `services.key_admin`.
No secret or hash ever reaches an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.auth.roles import has_role_name
from llm_console.crypto import random_token, sha256_hex
from llm_console.db.engine import session
from llm_console.db.models import User, VirtualKey, utcnow
from llm_console.db.queries.filters import utc
from llm_console.services.audit import record
from llm_console.services.scope import Scope

KEY_PREFIX = "sk-llmc-"
SCOPES = ("analytics",)
"""Rights a key may carry beyond calling models: "analytics" reads /api/v1/analytics (an admin key)."""


class KeyAdminError(ValueError):
    """A readable reason a key could not be created or changed."""


class KeyPermissionError(KeyAdminError):
    """The signed-in user may not make this change."""


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


def can_manage_key(scope: Scope, key: Any) -> bool:
    """Operators and admins: any key; members: their own, and those of teams where their team role is member
    or above (a team's viewers only read its keys); viewers: none."""
    if not has_role_name(scope.role, "member"):
        return False
    return (key.user_id is not None and key.user_id == scope.user_id) or scope.manages_team(key.team_id)


def mint_secret() -> tuple[str, str]:
    secret = KEY_PREFIX + random_token(32)
    return secret, secret[: len(KEY_PREFIX) + 6]


def new_key_row(**fields: Any) -> tuple[VirtualKey, str]:
    """A key row holding a freshly minted secret's hash and prefix, and that secret (shown once, never stored)."""
    secret, prefix = mint_secret()
    return VirtualKey(key_hash=hash_key(secret), prefix=prefix, **fields), secret


def add_key(s: Session, row: VirtualKey, actor: str, action: str = "key.create") -> None:
    """Add a key row and its audit event (name, prefix, aliases, owner, expiry: never the secret or hash)."""
    s.add(row)
    s.flush()
    after: dict[str, Any] = {"name": row.name, "prefix": row.prefix, "allowed_aliases": row.allowed_aliases}
    for name in ("user_id", "team_id", "rotated_from_id"):
        if getattr(row, name) is not None:
            after[name] = getattr(row, name)
    if row.expires_at is not None:
        after["expires_at"] = utc(row.expires_at).isoformat()
    if row.scopes:
        after["scopes"] = row.scopes
    record(s, actor=actor, action=action, target_type="virtual_key", target_id=str(row.id), after=after)


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
    row, secret = new_key_row(
        name=name,
        user_id=user_id,
        team_id=team_id,
        allowed_aliases=list(allowed_aliases or []),
        expires_at=expires_at,
        scopes=sorted(set(scopes or ())),
        created_by=actor,
    )
    with session(engine) as s:
        add_key(s, row, actor)
        s.commit()
        assert row.id is not None
        return MintedKey(id=row.id, secret=secret, prefix=row.prefix)


def require_member(scope: Scope, what: str) -> None:
    if not has_role_name(scope.role, "member"):
        raise KeyPermissionError(f"Viewers cannot {what} keys.")


def managed_key(s: Session, scope: Scope | None, key_id: int, what: str) -> VirtualKey:
    """The key, if `scope` (None: a trusted caller such as the CLI) may change it; one message for unseen keys."""
    row = s.get(VirtualKey, key_id)
    if row is None or (scope is not None and not scope.sees(team_id=row.team_id, user_id=row.user_id)):
        raise KeyAdminError("No such key.")
    if scope is not None:
        require_member(scope, what)
        if not can_manage_key(scope, row):
            raise KeyPermissionError(f"You cannot {what} this key.")
    return row


def revoke_key(engine: Engine, key_id: int, *, actor: str, scope: Scope | None = None) -> bool:
    """Revoke a key now; False when it was already revoked or (without a scope) does not exist."""
    with session(engine) as s:
        if scope is not None:
            row: VirtualKey | None = managed_key(s, scope, key_id, "revoke")
        else:
            row = s.get(VirtualKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        s.add(row)
        after = {"name": row.name, "prefix": row.prefix}
        record(s, actor=actor, action="key.revoke", target_type="virtual_key", target_id=str(key_id), after=after)
        s.commit()
        return True


def find_by_hash(engine: Engine, key_hash: str) -> VirtualKey | None:
    """The key with this hash; one owned by a deactivated user comes back revoked (not saved)."""
    with session(engine) as s:
        row = s.exec(select(VirtualKey).where(VirtualKey.key_hash == key_hash)).first()
        if row is not None and row.revoked_at is None and row.user_id is not None:
            owner = s.get(User, row.user_id)
            if owner is None or not owner.is_active:
                s.expunge(row)
                row.revoked_at = utcnow()
        return row
