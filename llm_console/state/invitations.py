"""Organization page: the "Invite user" dialog and the pending invitations (admins invite and revoke).

The new link (it holds the token) lives in `link` only until the dialog closes; it is never stored.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.services.context import get_context
from llm_console.services.invitations import create_invitation, list_pending, revoke_invitation
from llm_console.state.organization import (
    READ_ROLE,
    WRITE_ROLE,
    admin_call,
    caller,
    change,
    form_text,
    reader,
    team_choice,
    when,
    with_team_options,
)


class InvitesState(rx.State):
    pending: list[dict[str, str]] = []
    team_options: list[dict[str, str]] = []
    can_write: bool = False
    open: bool = False
    link: str = ""
    link_for: str = ""
    error: str = ""
    notice: str = ""  # `change()` sets it with `error`

    async def _reload(self) -> None:
        rows, self.team_options = await with_team_options(list_pending)
        self.pending = [
            {
                "id": str(r.id),
                "email": r.email,
                "role": r.role,
                "team": f"{r.team} ({r.team_role})" if r.team else "—",
                "created_by": r.created_by,
                "expires": when(r.expires_at),
            }
            for r in rows
        ]

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        self.open, self.link, self.link_for, self.error, self.notice = False, "", "", "", ""
        if await reader(self) is None:
            self.pending, self.team_options = [], []
            return
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def set_open(self, open: bool) -> None:
        """Open the dialog empty, or close it and forget the link it showed."""
        if await caller(self, WRITE_ROLE) is None:
            return
        self.open, self.link, self.link_for, self.error = bool(open), "", "", ""

    @rx.event
    @requires(WRITE_ROLE)
    async def create(self, form: dict[str, Any]) -> None:
        if (who := await admin_call(self)) is None:
            return
        me, settings = who[0], get_context().settings
        ok, made = await change(
            self,
            create_invitation,
            email=form_text(form, "email", 320),
            role=str(form.get("role", "") or "member")[:20],
            team_id=team_choice(form),
            team_role=str(form.get("team_role", "") or "member")[:20],
            base_url=settings.public_url or self.router.url.origin,
            ttl_hours=settings.invite_ttl_hours,
            actor=me,
        )
        if ok:
            self.link, self.link_for = made.link, f"{made.email} ({made.role}), valid until {when(made.expires_at)} UTC"
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def revoke(self, invitation_id: str) -> None:
        if (who := await admin_call(self, invitation_id)) is None:
            return
        me, (target,) = who
        await change(self, revoke_invitation, invitation_id=target, actor=me)
        await self._reload()
