"""Organization page, Service accounts tab: create, mint a key (its secret shown once), deactivate.

The new key's secret lives in `secret` only until the admin dismisses it; it is never stored or logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.guard import has_role
from llm_console.auth.policy import requires
from llm_console.services import service_accounts as svc
from llm_console.services.context import get_context
from llm_console.services.teams import list_teams
from llm_console.state.invitations import NO_TEAM
from llm_console.state.organization import READ_ROLE, REFUSED, WRITE_ROLE, as_id, caller, change, when


class ServiceAccountsState(rx.State):
    rows: list[dict[str, str]] = []
    team_options: list[dict[str, str]] = []
    can_write: bool = False
    secret: str = ""
    secret_for: str = ""
    error: str = ""
    notice: str = ""

    async def _reload(self) -> None:
        engine = get_context().engine
        rows, teams = await asyncio.gather(
            asyncio.to_thread(svc.list_service_accounts, engine), asyncio.to_thread(list_teams, engine)
        )
        self.rows = [
            {
                "id": str(r.id),
                "name": r.name,
                "email": r.email,
                "team": r.team or "—",
                "keys": str(r.active_keys),
                "status": "active" if r.is_active else "inactive",
                "active": "true" if r.is_active else "false",
                "created": when(r.created_at),
            }
            for r in rows
        ]
        self.team_options = [{"value": str(t.id), "label": t.name} for t in teams]

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        me = await caller(self, READ_ROLE)
        self.secret, self.secret_for, self.error, self.notice = "", "", "", ""
        if me is None:
            self.rows, self.team_options, self.can_write = [], [], False
            return
        self.can_write = has_role(me, WRITE_ROLE)
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def create(self, form: dict[str, Any]) -> None:
        me = await caller(self, WRITE_ROLE)
        if me is None:
            self.error = REFUSED
            return
        team = str(form.get("team", "") or "")
        ok, made = await change(
            self,
            svc.create_service_account,
            name=str(form.get("name", "") or "")[:300],
            team_id=None if team in ("", NO_TEAM) else as_id(team) or -1,
            actor=me,
        )
        if ok:
            self.notice = f"Service account {made.name} created. Mint a key for it below."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def mint(self, account_id: str) -> None:
        me = await caller(self, WRITE_ROLE)
        target = as_id(account_id)
        if me is None or target is None:
            self.error = REFUSED
            return
        name = next((r["name"] for r in self.rows if r["id"] == str(target)), "")
        ok, minted = await change(self, svc.mint_key, account_id=target, key_name=f"{name or 'service'} key", actor=me)
        if ok:
            self.secret, self.secret_for, self.notice = minted.secret, name, ""
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def dismiss_secret(self) -> None:
        if await caller(self, WRITE_ROLE) is None:
            return
        self.secret, self.secret_for = "", ""

    @rx.event
    @requires(WRITE_ROLE)
    async def deactivate(self, account_id: str) -> None:
        me = await caller(self, WRITE_ROLE)
        target = as_id(account_id)
        if me is None or target is None:
            self.error = REFUSED
            return
        ok, revoked = await change(self, svc.deactivate_service_account, account_id=target, actor=me)
        if ok:
            get_context().runtime.keys.invalidate()  # this process stops honouring the keys now, not after the TTL
            self.notice = f"Service account deactivated; {revoked} key(s) revoked."
        await self._reload()
