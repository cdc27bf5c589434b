"""Who may read the analytics API: a console session (by its httpOnly cookie) or an admin key.

An admin key is a virtual key carrying the "analytics" scope; it is looked up by SHA-256 only, through a
short cache. Every failure is an OpenAI-shaped 401 that reads the same whether the key is unknown,
revoked or expired; a valid key without the scope gets a 403.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy.engine import Engine
from starlette.requests import Request

from llm_console.auth.cookies import session_token
from llm_console.auth.roles import has_role_name
from llm_console.gateway.auth import KeyCache, KeyInfo, key_info_from_row
from llm_console.gateway.errors import GatewayError
from llm_console.services.keys import find_by_hash, hash_key, looks_like_key
from llm_console.services.scope import Scope, scope_for
from llm_console.services.sessions import SessionUser

ANALYTICS_SCOPE = "analytics"
KEY_TTL_S = 5.0


class SessionResolver(Protocol):
    async def resolve(self, token: str | None) -> SessionUser | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a signed-in console user, or an admin key (which reads everything)."""

    kind: Literal["session", "key"]
    subject: str
    role: str
    scope: Scope | None = None  # a member's or viewer's team scope; None reads the whole organization

    def at_least(self, role: str) -> bool:
        return has_role_name(self.role, role)


def lookup_key(engine: Engine, key_hash: str) -> KeyInfo | None:
    """The key with this hash, as the gateway sees it (scopes included), or None."""
    row = find_by_hash(engine, key_hash)
    return key_info_from_row(row) if row is not None and row.id is not None else None


def _unauthorized(message: str, code: str) -> GatewayError:
    return GatewayError(
        401, message, type="authentication_error", code=code, headers={"WWW-Authenticate": 'Bearer realm="analytics"'}
    )


BAD_KEY = "Invalid API key."
NO_CREDENTIALS = (
    "Sign in to the console, or send 'Authorization: Bearer <key>' with a key that has the analytics scope."
)


class Authenticator:
    """Resolves a request to a Principal or raises the GatewayError to answer with."""

    def __init__(
        self,
        get_engine: Callable[[], Engine],
        get_sessions: Callable[[], SessionResolver],
        *,
        key_ttl_s: float = KEY_TTL_S,
    ) -> None:
        self._get_sessions = get_sessions
        self._get_engine = get_engine
        self.keys = KeyCache(lambda key_hash: lookup_key(get_engine(), key_hash), ttl=key_ttl_s)

    async def __call__(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if header is not None:  # an explicit credential wins over a cookie the browser also sent
            return await self._key(header)
        token = session_token(request.headers.get("cookie"))
        if token is None:
            raise _unauthorized(NO_CREDENTIALS, "missing_credentials")
        user = await self._get_sessions().resolve(token)
        if user is None:
            raise _unauthorized("Your console session has expired or is not valid; sign in again.", "invalid_session")
        scope = await asyncio.to_thread(scope_for, self._get_engine(), user_id=user.user_id, role=user.role)
        return Principal("session", user.email, user.role, None if scope.org_wide else scope)

    async def _key(self, header: str) -> Principal:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not looks_like_key(secret):
            raise _unauthorized(BAD_KEY, "invalid_api_key")
        key = await self.keys.get(hash_key(secret))
        if key is None or key.revoked or (key.expires_at is not None and key.expires_at <= time.time()):
            raise _unauthorized(BAD_KEY, "invalid_api_key")
        if ANALYTICS_SCOPE not in key.scopes:
            raise GatewayError(
                403,
                "This key may call models but not read analytics: mint one with `--scope analytics`.",
                type="permission_error",
                code="missing_scope",
            )
        return Principal("key", f"key:{key.id}", "admin")


def require(principal: Principal, role: str, what: str) -> None:
    """A 403 unless the caller's role is at least `role`."""
    if not principal.at_least(role):
        raise GatewayError(403, f"{what} needs the {role} role or above.", type="permission_error", code="forbidden")
