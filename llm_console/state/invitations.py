"""Organization page: the "Invite user" dialog and the pending invitations (admins invite and revoke).

The new link (it holds the token) lives in `link` only until the dialog closes; it is never stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.guard import has_role
from llm_console.auth.policy import requires
from llm_console.services.context import get_context
from llm_console.services.invitations import create_invitation, list_pending, revoke_invitation
from llm_console.services.teams import list_teams
from llm_console.state.organization import READ_ROLE, REFUSED, WRITE_ROLE, as_id, caller, change, when

NO_TEAM = "__none__"


class InvitesState(rx.State):
    pending: list[dict[str, str]] = []
    team_options: list[dict[str, str]] = []
    can_write: bool = False
    open: bool = False
    link: str = ""
    link_for: str = ""
    error: str = ""

    async def _reload(self) -> None:
        engine = get_context().engine
        rows, teams = await asyncio.gather(
            asyncio.to_thread(list_pending, engine), asyncio.to_thread(list_teams, engine)
        )
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
        self.team_options = [{"value": str(t.id), "label": t.name} for t in teams]

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        me = await caller(self, READ_ROLE)
        self.open, self.link, self.link_for, self.error = False, "", "", ""
        if me is None:
            self.pending, self.team_options, self.can_write = [], [], False
            return
        self.can_write = has_role(me, WRITE_ROLE)
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
        me = await caller(self, WRITE_ROLE)
        if me is None:
            self.error = REFUSED
            return
        settings = get_context().settings
        team = str(form.get("team", "") or "")
        ok, made = await change(
            self,
            create_invitation,
            email=str(form.get("email", "") or "")[:320],
            role=str(form.get("role", "") or "member")[:20],
            team_id=None if team in ("", NO_TEAM) else as_id(team) or -1,
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
        me = await caller(self, WRITE_ROLE)
        target = as_id(invitation_id)
        if me is None or target is None:
            self.error = REFUSED
            return
        await change(self, revoke_invitation, invitation_id=target, actor=me)
        await self._reload()
