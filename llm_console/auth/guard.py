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
from llm_console.auth.policy import declared_role
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
    from llm_console.state.invite import InviteState
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
        InviteState.event_handlers["load"],  # answers only for the token in its own URL
    ]
    return frozenset(format_event_handler(h) for h in handlers)


def _states(cls: type[BaseState]) -> list[type[BaseState]]:
    out = [cls]
    for sub in cls.get_substates():
        out += _states(sub)
    return out


@lru_cache(maxsize=1)
def event_roles() -> dict[str, str]:
    """Every registered event handler that declared a minimum role (`@requires`), by its event name."""
    roles: dict[str, str] = {}
    for cls in _states(State):
        for handler in cls.event_handlers.values():
            role = declared_role(handler.fn, cls)
            if role is not None:
                roles[format_event_handler(handler)] = role
    return roles


class AuthMiddleware(rx.Middleware):
    """Default deny: an event runs only if it is public, or its handler declared a role the caller has.

    Handlers without a declared role (Reflex's generic `setvar` included) are refused for everyone.
    """

    async def preprocess(self, app: rx.App, state: BaseState, event: Event) -> StateUpdate | None:  # type: ignore[override]
        if event.name in public_events():
            return None
        needed = event_roles().get(event.name)
        user = await current_user(state)
        if needed is not None and has_role(user, needed):
            return None
        if user is None:
            reason = "no valid session"
        elif needed is None:
            reason = "no role declared for it"
        else:
            reason = f"needs {needed}"
        log.warning(
            "refused event %s for %s from %s: %s",
            event.name[:200],
            user.role if user is not None else "anonymous",
            state.router.session.client_ip or "?",
            reason,
        )
        return StateUpdate()
