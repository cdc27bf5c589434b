"""Who may call which console event: every handler declares its minimum role, and the event guard enforces it.

`@requires("operator")` under `@rx.event` records the role on the function; the guard refuses any event
whose handler declared nothing (default deny). `requires(PAGE_ROLE)` on a mixin handler means "the
`_minimum_role` of the page state it ends up on". Handlers still check the user themselves where what
they return depends on who asks (team scope, bodies), so a guard bug alone exposes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from llm_console.auth.roles import ROLE_RANK

F = TypeVar("F", bound=Callable[..., Any])
ATTR = "_llmc_minimum_role"
PAGE_ROLE = "page"
"""Resolved per state class to its `_minimum_role` (for handlers shared through a mixin)."""


def requires(role: str) -> Callable[[F], F]:
    """Declare the lowest role allowed to call the decorated event handler."""
    if role != PAGE_ROLE and role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(fn: F) -> F:
        setattr(fn, ATTR, role)
        return fn

    return mark


def declared_role(fn: Callable[..., Any], state_cls: type) -> str | None:
    """The minimum role `fn` declared, resolved for `state_cls`; None when it declared nothing."""
    role = getattr(fn, ATTR, None)
    if role == PAGE_ROLE:
        return str(getattr(state_cls, "_minimum_role", "") or "") or None
    return role
