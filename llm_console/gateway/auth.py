"""Virtual-key authentication: shape check, SHA-256, then a short-TTL in-memory cache over the DB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import Headers

from llm_console.gateway.errors import GatewayError, unauthorized
from llm_console.limits.plan import NO_LIMITS, LimitPlan
from llm_console.services.keys import hash_key, looks_like_key

NEGATIVE_TTL_S = 2.0
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    user_id: int | None
    team_id: int | None
    allowed_aliases: frozenset[str]
    expires_at: float | None
    revoked: bool
    scopes: frozenset[str] = frozenset()  # rights beyond calling models ("analytics")
    plan: LimitPlan = NO_LIMITS  # the rate limits and budgets of the key, its user and its team

    def may_use(self, alias: str) -> bool:
        return not self.allowed_aliases or alias in self.allowed_aliases


def bearer_token(headers: Headers) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key")


def _epoch(value: datetime | None) -> float | None:
    """SQLite hands datetimes back without a zone; they are stored as UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class KeyCache:
    """Maps key hash -> KeyInfo (or a remembered miss) for `ttl` seconds, and never past the moment the
    key's limit plan stops being valid (a temporary budget increase expiring), so such a change applies
    on every replica at its time without any event."""

    def __init__(self, lookup: Callable[[str], KeyInfo | None], ttl: float) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._entries: dict[str, tuple[float, KeyInfo | None]] = {}
        self._pending: dict[str, asyncio.Future[KeyInfo | None]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every entry; a lookup already running when this is called is not cached either."""
        self._entries.clear()
        self._pending.clear()
        self._generation += 1

    async def get(self, key_hash: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._entries.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._pending.get(key_hash)
        if pending is not None:  # a lookup for this key is already running: share it
            return await asyncio.shield(pending)
        generation = self._generation
        task = asyncio.ensure_future(asyncio.to_thread(self._lookup, key_hash))
        self._pending[key_hash] = task
        try:
            info = await asyncio.shield(task)
        finally:
            if self._pending.get(key_hash) is task:
                del self._pending[key_hash]
        if self._ttl > 0 and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            ttl = self._ttl if info is not None else min(self._ttl, NEGATIVE_TTL_S)
            if info is not None and info.plan.valid_until is not None:
                ttl = min(ttl, info.plan.valid_until - time.time())  # valid_until is wall-clock time
            if ttl > 0:
                self._entries[key_hash] = (now + ttl, info)
        return info

    async def authenticate(self, headers: Headers) -> KeyInfo:
        """The valid key for these headers, else a 401 GatewayError (same message for every cause)."""
        token = bearer_token(headers)
        if not token:
            raise unauthorized("Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key'.")
        if not looks_like_key(token):
            raise unauthorized()
        info = await self.get(hash_key(token))
        if info is None or info.revoked:
            raise unauthorized()
        if info.expires_at is not None and info.expires_at <= time.time():
            raise GatewayError(401, "This API key has expired.", type="authentication_error", code="expired_api_key")
        return info


def key_info_from_row(row: object, plan: LimitPlan = NO_LIMITS) -> KeyInfo:
    return KeyInfo(
        id=row.id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        team_id=row.team_id,  # type: ignore[attr-defined]
        allowed_aliases=frozenset(row.allowed_aliases or ()),  # type: ignore[attr-defined]
        expires_at=_epoch(row.expires_at),  # type: ignore[attr-defined]
        revoked=row.revoked_at is not None,  # type: ignore[attr-defined]
        scopes=frozenset(row.scopes or ()),  # type: ignore[attr-defined]
        plan=plan,
    )
