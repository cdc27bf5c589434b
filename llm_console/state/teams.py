"""Organization page, Teams tab: teams with member counts, the selected team's members and their team roles."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.services import teams as svc
from llm_console.services.context import get_context
from llm_console.state.organization import READ_ROLE, WRITE_ROLE, admin_call, caller, change, form_text, reader


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
        self.error, self.notice = "", ""
        if await reader(self) is None:
            self.teams, self.members, self.selected = [], [], ""
            return
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
        if (who := await admin_call(self)) is None:
            return
        ok, team = await change(
            self,
            svc.create_team,
            name=form_text(form, "name", 300),
            description=form_text(form, "description", 1100),
            actor=who[0],
        )
        if ok:
            self.selected, self.notice = str(team.id), f"Team {team.name} created."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def update(self, form: dict[str, Any]) -> None:
        if (who := await admin_call(self, self.selected)) is None:
            return
        me, (team_id,) = who
        ok, _ = await change(
            self,
            svc.update_team,
            team_id=team_id,
            name=form_text(form, "name", 300),
            description=form_text(form, "description", 1100),
            actor=me,
        )
        if ok:
            self.notice = "Team saved."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def delete(self) -> None:
        if (who := await admin_call(self, self.selected)) is None:
            return
        me, (team_id,) = who
        if (await change(self, svc.delete_team, team_id=team_id, actor=me))[0]:
            self.selected, self.notice = "", "Team deleted."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def add_member(self, form: dict[str, Any]) -> None:
        if (who := await admin_call(self, self.selected)) is None:
            return
        me, (team_id,) = who
        ok, _ = await change(
            self,
            svc.add_member_by_email,
            team_id=team_id,
            email=form_text(form, "email", 320),
            role=form_text(form, "role", 20) or "member",
            actor=me,
        )
        if ok:
            self.notice = "Member added."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def set_member_role(self, user_id: str, role: str) -> None:
        if (who := await admin_call(self, self.selected, user_id)) is None:
            return
        me, (team_id, target) = who
        await change(self, svc.set_member_role, team_id=team_id, user_id=target, role=str(role)[:20], actor=me)
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def remove_member(self, user_id: str) -> None:
        if (who := await admin_call(self, self.selected, user_id)) is None:
            return
        me, (team_id, target) = who
        if (await change(self, svc.remove_member, team_id=team_id, user_id=target, actor=me))[0]:
            self.notice = "Member removed."
        await self._reload()
