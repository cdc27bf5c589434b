"""Organization page, Service accounts tab: create, mint a key (its secret shown once), deactivate.

The new key's secret lives in `secret` only until the admin dismisses it; it is never stored or logged.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.services import service_accounts as svc
from llm_console.services.context import get_context
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


class ServiceAccountsState(rx.State):
    rows: list[dict[str, str]] = []
    team_options: list[dict[str, str]] = []
    can_write: bool = False
    secret: str = ""
    secret_for: str = ""
    error: str = ""
    notice: str = ""

    async def _reload(self) -> None:
        rows, self.team_options = await with_team_options(svc.list_service_accounts)
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

    @rx.event
    @requires(READ_ROLE)
    async def load(self) -> None:
        self.secret, self.secret_for, self.error, self.notice = "", "", "", ""
        if await reader(self) is None:
            self.rows, self.team_options = [], []
            return
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def create(self, form: dict[str, Any]) -> None:
        if (who := await admin_call(self)) is None:
            return
        ok, made = await change(
            self,
            svc.create_service_account,
            name=form_text(form, "name", 300),
            team_id=team_choice(form),
            actor=who[0],
        )
        if ok:
            self.notice = f"Service account {made.name} created. Mint a key for it below."
        await self._reload()

    @rx.event
    @requires(WRITE_ROLE)
    async def mint(self, account_id: str) -> None:
        if (who := await admin_call(self, account_id)) is None:
            return
        me, (target,) = who
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
        if (who := await admin_call(self, account_id)) is None:
            return
        me, (target,) = who
        ok, revoked = await change(self, svc.deactivate_service_account, account_id=target, actor=me)
        if ok:
            get_context().runtime.keys.invalidate()  # this process stops honouring the keys now, not after the TTL
            self.notice = f"Service account deactivated; {revoked} key(s) revoked."
        await self._reload()
