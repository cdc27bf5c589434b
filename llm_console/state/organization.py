"""Organization page, Users tab: the people list (operators read, admins change roles and activation).

Every handler checks the caller again (the event guard is not the only line); the services check the
caller's row in the users table once more, so a stale or forged session changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import reflex as rx
from sqlalchemy.engine import Engine

from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser
from llm_console.services.teams import list_teams
from llm_console.services.users import ROLES, STATUSES, UserError, list_users, set_active, set_role

READ_ROLE = "operator"
WRITE_ROLE = "admin"
REFUSED = "Only an admin can change the organization."
NO_TEAM = "__none__"
Row = TypeVar("Row")


async def caller(state: rx.State, minimum: str) -> SessionUser | None:
    """The signed-in user when they have at least `minimum`, else None."""
    user = await current_user(state)
    return user if has_role(user, minimum) else None


async def change(state: Any, fn: Callable[..., Any], **kwargs: Any) -> tuple[bool, Any]:
    """Run one service change in a thread: (True, its result), or (False, None) with the readable refusal
    in `state.error`."""
    try:
        result = await asyncio.to_thread(fn, get_context().engine, **kwargs)
    except UserError as exc:  # every organization error is a UserError with a sentence for people
        state.error, state.notice = str(exc), ""
        return False, None
    state.error = ""
    return True, result


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def as_id(raw: Any) -> int | None:
    text = str(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def form_text(form: dict[str, Any], name: str, limit: int) -> str:
    return str(form.get(name, "") or "")[:limit]


def team_choice(form: dict[str, Any]) -> int | None:
    """The team a form's team select names: None for none, -1 (which the service refuses) when malformed."""
    team = str(form.get("team", "") or "")
    return None if team in ("", NO_TEAM) else as_id(team) or -1


async def reader(state: Any) -> SessionUser | None:
    """The caller when they may read the organization, else None; `state.can_write` says whether they are an admin."""
    me = await caller(state, READ_ROLE)
    state.can_write = has_role(me, WRITE_ROLE)
    return me


async def admin_call(state: Any, *raw_ids: Any) -> tuple[SessionUser, list[int]] | None:
    """The calling admin and the ids they named; None, with the refusal in `state.error`, when the caller is
    not an admin or an id is malformed."""
    me = await caller(state, WRITE_ROLE)
    ids = [as_id(raw) for raw in raw_ids]
    if me is None or None in ids:
        state.error = REFUSED
        return None
    return me, [i for i in ids if i is not None]


async def with_team_options(fn: Callable[[Engine], list[Row]]) -> tuple[list[Row], list[dict[str, str]]]:
    """`fn`'s rows and the team select's options, read side by side."""
    engine = get_context().engine
    rows, teams = await asyncio.gather(asyncio.to_thread(fn, engine), asyncio.to_thread(list_teams, engine))
    return rows, [{"value": str(t.id), "label": t.name} for t in teams]


class UsersState(rx.State):
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    search: str = ""
    role_filter: str = ""
    status_filter: str = ""
    ready: bool = False
    can_write: bool = False
    error: str = ""
    notice: str = ""

    async def _reload(self, me: SessionUser) -> None:
        data = await asyncio.to_thread(
            list_users,
            get_context().engine,
            search=self.search,
            role=self.role_filter,
            status=self.status_filter,
            page=self.page,
        )
        self.total, self.page, self.pages = data.total, data.page, data.pages
        self.rows = [
            {
                "id": str(u.id),
                "email": u.email,
                "name": u.name or "—",
                "role": u.role,
                "active": "true" if u.is_active else "false",
                "status": "active" if u.is_active else "inactive",
                "sign_in": "SSO" if u.sso else "password",
                "teams": ", ".join(u.teams) or "—",
                "last_login": when(u.last_login_at),
                "self": "true" if u.id == me.user_id else "false",
            }
            for u in data.rows
        ]

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        me = await reader(self)
        self.ready, self.error, self.notice = me is not None, "", ""
        if me is None:
            self.rows = []
            return
        await self._reload(me)

    @rx.event
    @requires(READ_ROLE)
    async def apply_filters(self, form: dict[str, Any]) -> None:
        me = await caller(self, READ_ROLE)
        if me is None:
            return
        self.search = str(form.get("search", "") or "")[:200].strip()
        self.page = 1
        try:
            await self._reload(me)
        except UserError as exc:
            self.error = str(exc)

    @rx.event
    @requires(READ_ROLE)
    async def set_filter(self, name: str, value: str) -> None:
        me = await caller(self, READ_ROLE)
        if me is None or name not in ("role", "status"):
            return
        allowed = ROLES if name == "role" else STATUSES
        chosen = value if value in allowed else ""
        self.role_filter, self.status_filter = (
            (chosen, self.status_filter) if name == "role" else (self.role_filter, chosen)
        )
        self.page = 1
        await self._reload(me)

    @rx.event
    @requires(READ_ROLE)
    async def goto(self, page: int) -> None:
        me = await caller(self, READ_ROLE)
        if me is None or not str(page).isdigit():
            return
        self.page = max(1, min(int(page), self.pages))
        await self._reload(me)

    @rx.event
    @requires(WRITE_ROLE)
    async def change_role(self, user_id: str, role: str) -> None:
        if (who := await admin_call(self, user_id)) is None:
            return
        me, (target,) = who
        if (await change(self, set_role, user_id=target, role=str(role)[:20], actor=me))[0]:
            self.notice = f"Role changed to {role}."
        await self._reload(me)

    @rx.event
    @requires(WRITE_ROLE)
    async def toggle_active(self, user_id: str, active: bool) -> None:
        if (who := await admin_call(self, user_id)) is None:
            return
        me, (target,) = who
        if (await change(self, set_active, user_id=target, active=bool(active), actor=me))[0]:
            self.notice = "User reactivated." if active else "User deactivated and signed out everywhere."
        await self._reload(me)
