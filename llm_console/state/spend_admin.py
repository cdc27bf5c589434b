"""Spend administration on the Limits page: reset an entity's spend for the current day or month, grant a
temporary budget increase, revoke one; the lists of active increases and recent resets.

The handlers are marked @requires("operator") because LLMC_SPEND_ADMIN_ROLE may lower the right to operators;
each one then checks `may_administer_spend` for the caller's role itself (admins only by default), and the
services check again. The form names its entity ("type:id") in a hidden field, so a call is whole by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.presenters.tiers import increase_row, parse_entity, parse_number, reset_row
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser
from llm_console.services.spend_admin import (
    active_increases,
    grant_increase,
    may_administer_spend,
    recent_resets,
    reset_spend,
    revoke_increase,
)
from llm_console.state.keys import apply_config_here, caller
from llm_console.state.limits import LimitsState

DIALOGS = ("reset", "raise", "revoke")


def _lists() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    engine = get_context().engine
    return [increase_row(i) for i in active_increases(engine)], [reset_row(r) for r in recent_resets(engine)]


class SpendAdminState(rx.State):
    allowed: bool = False  # the caller may reset spend and raise budgets
    increases: list[dict[str, str]] = []
    resets: list[dict[str, str]] = []
    dialog: str = ""  # "" | reset | raise | revoke
    entity: str = ""  # the row's "type:id" (reset, raise) or the increase's id (revoke)
    target: str = ""  # what the dialog is about, as the page names it
    error: str = ""
    notice: str = ""

    async def _admin(self) -> SessionUser | None:
        """The caller, when their role may administer spend (LLMC_SPEND_ADMIN_ROLE)."""
        who = await caller(self, "viewer")
        if who is None or not may_administer_spend(who[0].role, get_context().settings):
            self.allowed = False
            return None
        self.allowed = True
        return who[0]

    @rx.event
    @requires("viewer")
    async def load(self) -> None:
        """The lists, for those allowed; everyone else gets nothing (and no actions)."""
        if await self._admin() is None:
            self.increases, self.resets = [], []
            return
        self.increases, self.resets = await asyncio.to_thread(_lists)

    async def _open(self, dialog: str, entity: str, target: str) -> None:
        if await self._admin() is not None:
            self.dialog, self.entity, self.target, self.error = dialog, str(entity)[:40], str(target)[:400], ""

    @rx.event
    @requires("operator")
    async def open_reset(self, entity: str, name: str) -> None:
        await self._open("reset", entity, name)

    @rx.event
    @requires("operator")
    async def open_raise(self, entity: str, name: str) -> None:
        await self._open("raise", entity, name)

    @rx.event
    @requires("operator")
    async def ask_revoke(self, increase_id: str, label: str) -> None:
        await self._open("revoke", increase_id, label)

    @rx.event
    @requires("operator")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await self._admin() is not None:
            self.dialog, self.error = "", ""

    async def _run(self, form: dict[str, Any], what: str) -> None:
        user = await self._admin()
        if user is None:
            return
        ctx = get_context()
        common = {"role": user.role, "actor": user.email, "reason": str(form.get("reason") or "")}
        try:
            if what == "revoke":
                raw = str(form.get("entity") or "")
                if not (raw.isdigit() and len(raw) <= 12):
                    raise ValueError("Choose an increase from the list.")
                await asyncio.to_thread(revoke_increase, ctx.engine, ctx.settings, increase_id=int(raw), **common)
                done = "Revoked the budget increase."
            else:
                kind, ident = parse_entity(str(form.get("entity") or ""))
                common |= {"entity_type": kind, "entity_id": ident, "period": str(form.get("period") or "")}
                if what == "reset":
                    reset = await asyncio.to_thread(reset_spend, ctx.engine, ctx.settings, **common)
                    done = f"Reset the {reset.period}'s spend of {reset.entity_name}."
                else:
                    amount = parse_number(form.get("amount"), "The amount")
                    hours = parse_number(form.get("hours"), "The duration")
                    raised = await asyncio.to_thread(
                        grant_increase, ctx.engine, ctx.settings, amount_usd=amount, hours=hours, **common
                    )
                    until = raised.expires_at.strftime("%Y-%m-%d %H:%M UTC")
                    done = f"Raised the {raised.period}'s budget of {raised.entity_name} until {until}."
        except ValueError as exc:
            self.error = str(exc)
            return
        apply_config_here()  # this process's gateway applies the change with the next request
        self.dialog, self.error, self.notice = "", "", done
        self.increases, self.resets = await asyncio.to_thread(_lists)
        page = await self.get_state(LimitsState)
        if await page._allowed():
            await page._refresh()

    @rx.event
    @requires("operator")
    async def submit_reset(self, form: dict[str, Any]) -> None:
        """Restart the entity's budget count for the current day or month (spend itself is kept)."""
        await self._run(form, "reset")

    @rx.event
    @requires("operator")
    async def submit_raise(self, form: dict[str, Any]) -> None:
        """Add an amount to the entity's daily or monthly budget for some hours."""
        await self._run(form, "raise")

    @rx.event
    @requires("operator")
    async def submit_revoke(self, form: dict[str, Any]) -> None:
        """End a temporary increase now."""
        await self._run(form, "revoke")
