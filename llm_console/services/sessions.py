"""Server-side console sessions: the browser holds a random token, the table its hash."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import delete, select

from llm_console.crypto import random_token, sha256_hex
from llm_console.db.engine import session
from llm_console.db.models import ConsoleSession, User, utcnow

COOKIE_NAME = "llmc_session"


@dataclass(frozen=True, slots=True)
class SessionUser:
    user_id: int
    email: str
    name: str
    role: str


def start_session(engine: Engine, user: User, *, ttl_hours: float, client_ip: str = "", user_agent: str = "") -> str:
    token = random_token(32)
    assert user.id is not None
    with session(engine) as s:
        s.add(
            ConsoleSession(
                token_hash=sha256_hex(token),
                user_id=user.id,
                expires_at=utcnow() + timedelta(hours=ttl_hours),
                client_ip=client_ip[:64],
                user_agent=user_agent[:300],
            )
        )
        s.commit()
    return token


def resolve(engine: Engine, token: str | None) -> SessionUser | None:
    """The signed-in user for a cookie token, or None when absent, expired or disabled."""
    if not token or len(token) > 100:
        return None
    with session(engine) as s:
        row = s.exec(
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)  # type: ignore[arg-type]
            .where(ConsoleSession.token_hash == sha256_hex(token))
        ).first()
    if row is None:
        return None
    sess, user = row
    expires = sess.expires_at if sess.expires_at.tzinfo else sess.expires_at.replace(tzinfo=UTC)
    if expires <= utcnow() or not user.is_active or user.kind != "person" or user.id is None:
        return None
    return SessionUser(user_id=user.id, email=user.email, name=user.name, role=user.role)


def end_session(engine: Engine, token: str | None) -> None:
    if not token:
        return
    with session(engine) as s:
        s.exec(delete(ConsoleSession).where(ConsoleSession.token_hash == sha256_hex(token)))  # type: ignore[arg-type]
        s.commit()


class SessionCache:
    """Resolves cookie tokens with a few seconds of memory, so every UI event is not a DB query."""

    TTL_S = 5.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._entries: dict[str, tuple[float, SessionUser | None]] = {}

    async def resolve(self, token: str | None) -> SessionUser | None:
        if not token:
            return None
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = await asyncio.to_thread(resolve, self._engine, token)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token] = (now + self.TTL_S, user)
        return user

    def forget(self, token: str | None) -> None:
        if token:
            self._entries.pop(token, None)
