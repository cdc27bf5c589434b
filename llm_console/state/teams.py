"""Organization page, Teams tab: teams with member counts, the selected team's members and their team roles."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.guard import has_role
from llm_console.auth.policy import requires
from llm_console.services import teams as svc
from llm_console.services.context import get_context
from llm_console.state.organization import READ_ROLE, REFUSED, WRITE_ROLE, as_id, caller, change


def _text(form: dict[str, Any], name: str, limit: int) -> str:
    return str(form.get(name, "") or "")[:limit]


class TeamsState(rx.State):
    teams: list[dict[str, str]] = []
    selected: str = ""
    selected_name: str = ""
    selected_description: str = ""
    members: list[dict[str, str]] = []
    can_write: bool = False
    error: str = ""
    notice: str = ""

    async def _reload(self) -> None:
        engine = get_context().engine
        teams = await asyncio.to_thread(svc.list_teams, engine)
        self.teams = [
            {"id": str(t.id), "name": t.name, "description": t.description or "—", "members": str(t.members)}
            for t in teams
        ]
        chosen = next((t for t in teams if str(t.id) == self.selected), None)
        self.selected = str(chosen.id) if chosen else ""
        self.selected_name = chosen.name if chosen else ""
        self.selected_description = chosen.description if chosen else ""
        members = await asyncio.to_thread(svc.team_members, engine, chosen.id) if chosen else []
        self.members = [
            {
                "user_id": str(m.user_id),
                "email": m.email,
                "name": m.name or "—",
                "role": m.role,
                "kind": "service account" if m.kind == "service" else ("person" if m.is_active else "inactive"),
            }
            for m in members
        ]

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        me = await caller(self, READ_ROLE)
        self.error, self.notice = "", ""
        if me is None:
            self.teams, self.members, self.can_write, self.selected = [], [], False, ""
            return
        self.can_write = has_role(me, WRITE_ROLE)
        await self._reload()

    @rx.event
    @requires(READ_ROLE)
    async def select(self, team_id: str) -> None:
        if await caller(self, READ_ROLE) is None:
            return
        self.selected = str(team_id)[:12]
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def create(self, form: dict[str, Any]) -> None:
        me = await caller(self, WRITE_ROLE)
        if me is None:
            self.error = REFUSED
            return
        ok, team = await change(
            self, svc.create_team, name=_text(form, "name", 300), description=_text(form, "description", 1100), actor=me
        )
        if ok:
            self.selected, self.notice = str(team.id), f"Team {team.name} created."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def update(self, form: dict[str, Any]) -> None:
        me = await caller(self, WRITE_ROLE)
        team_id = as_id(self.selected)
        if me is None or team_id is None:
            self.error = REFUSED
            return
        ok, _ = await change(
            self,
            svc.update_team,
            team_id=team_id,
            name=_text(form, "name", 300),
            description=_text(form, "description", 1100),
            actor=me,
        )
        if ok:
            self.notice = "Team saved."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def delete(self) -> None:
        me = await caller(self, WRITE_ROLE)
        team_id = as_id(self.selected)
        if me is None or team_id is None:
            self.error = REFUSED
            return
        if (await change(self, svc.delete_team, team_id=team_id, actor=me))[0]:
            self.selected, self.notice = "", "Team deleted."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def add_member(self, form: dict[str, Any]) -> None:
        me = await caller(self, WRITE_ROLE)
        team_id = as_id(self.selected)
        if me is None or team_id is None:
            self.error = REFUSED
            return
        ok, _ = await change(
            self,
            svc.add_member_by_email,
            team_id=team_id,
            email=_text(form, "email", 320),
            role=_text(form, "role", 20) or "member",
            actor=me,
        )
        if ok:
            self.notice = "Member added."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def set_member_role(self, user_id: str, role: str) -> None:
        me = await caller(self, WRITE_ROLE)
        team_id, target = as_id(self.selected), as_id(user_id)
        if me is None or team_id is None or target is None:
            self.error = REFUSED
            return
        await change(self, svc.set_member_role, team_id=team_id, user_id=target, role=str(role)[:20], actor=me)
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def remove_member(self, user_id: str) -> None:
        me = await caller(self, WRITE_ROLE)
        team_id, target = as_id(self.selected), as_id(user_id)
        if me is None or team_id is None or target is None:
            self.error = REFUSED
            return
        if (await change(self, svc.remove_member, team_id=team_id, user_id=target, actor=me))[0]:
            self.notice = "Member removed."
        await self._reload()
