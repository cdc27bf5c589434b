"""The "Create key" and "Edit key" dialog: owner, models, expiry and, for admins, limits and budget.

The owner choices are what the caller may pick (members: themselves and their teams); the services check
again. Limit and budget fields are sent only by an admin's form; anyone else sending them is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.policy import requires
from llm_console.auth.roles import has_role_name
from llm_console.presenters import keys as present
from llm_console.services.context import get_context
from llm_console.services.key_admin import (
    OWNER_TYPES,
    KeySpec,
    create_console_key,
    update_key,
)
from llm_console.services.key_list import get_key, key_choices
from llm_console.services.limits_admin import LIMIT_FIELDS
from llm_console.state.keys import KeysState, apply_config_here, caller

BUDGET_FIELDS = ("daily_usd", "monthly_usd")


class KeyFormState(rx.State):
    open: bool = False
    key_id: str = ""  # "" creates a key, an id edits that key
    error: str = ""
    is_admin: bool = False
    owner_type: str = "user"
    owner_id: str = ""
    owner_options: list[dict[str, str]] = []
    owner_types: list[dict[str, str]] = []
    aliases: list[str] = []
    selected: list[str] = []
    values: dict[str, str] = {}
    _choices: dict[str, list[dict[str, str]]] = {}

    def _set_owner_type(self, kind: str, owner_id: str = "") -> None:
        self.owner_type = kind
        self.owner_options = self._choices.get(kind, [])
        ids = [o["value"] for o in self.owner_options]
        self.owner_id = owner_id if owner_id in ids else (ids[0] if len(ids) == 1 else "")

    async def _open(self, key_id: str) -> bool:
        who = await caller(self, "member")
        if who is None:
            return False
        user, scope = who
        engine = get_context().engine
        choices = await asyncio.to_thread(key_choices, engine, scope)
        row = await asyncio.to_thread(get_key, engine, scope, int(key_id)) if key_id else None
        if key_id and (row is None or not row.can_manage):
            return False
        self._choices = present.choices(choices, current=row)
        self.owner_types = [{"value": k, "label": present.OWNER_LABELS[k]} for k in OWNER_TYPES if self._choices[k]]
        self.aliases, self.is_admin = choices.aliases, has_role_name(user.role, "admin")
        self.error, self.key_id = "", key_id
        if row is None:
            self.values, self.selected = present.blank_values(), []
            self._set_owner_type("user", str(user.user_id))
        else:
            self.values, self.selected = present.edit_values(row), list(row.allowed_aliases)
            self._set_owner_type(*present.current_owner(row))
        self.open = True
        return True

    @rx.event
    @requires("member")
    async def open_create(self) -> None:
        await self._open("")

    @rx.event
    @requires("member")
    async def open_edit(self, key_id: str) -> None:
        if str(key_id).isdigit():
            await self._open(str(key_id))

    @rx.event
    @requires("member")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "member") is not None:
            self.open, self.error = False, ""

    @rx.event
    @requires("member")
    async def choose_owner_type(self, kind: str) -> None:
        if await caller(self, "member") is not None and kind in self._choices:
            self._set_owner_type(kind)

    @rx.event
    @requires("member")
    async def choose_owner(self, owner_id: str) -> None:
        if await caller(self, "member") is not None and owner_id in {o["value"] for o in self.owner_options}:
            self.owner_id = owner_id

    @rx.event
    @requires("member")
    async def toggle_alias(self, alias: str, checked: bool) -> None:
        if await caller(self, "member") is None or alias not in self.aliases:
            return
        rest = [a for a in self.selected if a != alias]
        self.selected = [*rest, alias] if checked else rest

    @rx.event
    @requires("member")
    async def submit(self, form: dict[str, Any]) -> Any:
        """Create the key (then show its secret once) or save the edit; errors stay in the dialog."""
        who = await caller(self, "member")
        if who is None:
            return None
        user, scope = who
        engine = get_context().engine
        try:
            spec = KeySpec(
                name=str(form.get("name", "") or ""),
                owner_type=self.owner_type,
                owner_id=int(self.owner_id) if self.owner_id.isdigit() else None,
                allowed_aliases=tuple(self.selected),
                expires_at=present.parse_expiry(str(form.get("expires", "") or "")),
            )
            limits = present.parse_limits(form) if any(f in form for f in LIMIT_FIELDS) else None
            budget = present.parse_budget(form) if any(f in form for f in BUDGET_FIELDS) else None
            if self.key_id:
                await asyncio.to_thread(
                    update_key,
                    engine,
                    int(self.key_id),
                    spec,
                    scope=scope,
                    actor=user.email,
                    limits=limits,
                    budget=budget,
                )
            else:
                minted = await asyncio.to_thread(
                    create_console_key, engine, spec, scope=scope, actor=user.email, limits=limits, budget=budget
                )
        except ValueError as exc:
            self.error = str(exc)
            return None
        keys = await self.get_state(KeysState)
        if self.key_id:
            apply_config_here()  # new models or expiry apply to the next call, not after the cache's TTL
            keys.notice = f"Saved {spec.name.strip()}."
        else:
            keys._show_secret(f"Key {spec.name.strip()} created", minted.secret)
        self.open, self.error = False, ""
        await keys._reload(scope)
        return None
