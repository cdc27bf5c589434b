"""Default-deny event guard: any connected socket can call any handler, so every event is checked here."""

from __future__ import annotations

import logging
from functools import lru_cache

import reflex as rx
from reflex.state import (
    BaseState,
    FrontendEventExceptionState,
    OnLoadInternalState,
    State,
    StateUpdate,
    UpdateVarsInternalState,
)
from reflex_base.event import Event
from reflex_base.utils.format import format_event_handler

from llm_console.auth.cookies import session_token
from llm_console.auth.roles import has_role_name
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser

log = logging.getLogger("llm_console.auth")


async def current_user(state: BaseState) -> SessionUser | None:
    """The signed-in user of the socket that sent the current event (from its httpOnly cookie)."""
    return await get_context().sessions.resolve(session_token(state.router.headers.cookie))


def has_role(user: SessionUser | None, minimum: str) -> bool:
    return user is not None and has_role_name(user.role, minimum)


@lru_cache(maxsize=1)
def public_events() -> frozenset[str]:
    """Reflex's own page-lifecycle events plus the few of ours that check the session themselves."""
    from llm_console.state.session import LoginState, SessionState

    handlers = [
        State.event_handlers["hydrate"],
        State.event_handlers["hydrate_and_load"],
        State.event_handlers["set_is_hydrated"],
        OnLoadInternalState.event_handlers["on_load_internal"],
        OnLoadInternalState.event_handlers["set_is_hydrated"],
        UpdateVarsInternalState.event_handlers["update_vars_internal"],
        FrontendEventExceptionState.event_handlers["handle_frontend_exception"],
        SessionState.event_handlers["check"],
        LoginState.event_handlers["load"],
    ]
    return frozenset(format_event_handler(h) for h in handlers)


class AuthMiddleware(rx.Middleware):
    """Swallows every non-public event from a socket without a valid session."""

    async def preprocess(self, app: rx.App, state: BaseState, event: Event) -> StateUpdate | None:  # type: ignore[override]
        if event.name in public_events():
            return None
        if await current_user(state) is not None:
            return None
        log.warning(
            "refused event %s from %s: no valid session", event.name[:200], state.router.session.client_ip or "?"
        )
        return StateUpdate()
