"""Limit tiers: the page (operators and up; the range of the upgrade suggestions in the URL, refreshed live),
the tier form and its delete confirmation, and the assign dialog (admins only). After every change this
process's gateway drops its cached keys, so the next request here sees the new limits at once."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import reflex as rx

from llm_console import routes
from llm_console.auth.policy import requires
from llm_console.presenters.tiers import NO_TIER, TiersView, parse_tier_form, tier_form_values, tiers_view
from llm_console.services.context import get_context
from llm_console.services.filters import ParsedFilters, parse_filters
from llm_console.services.tier_admin import delete_tier, list_tiers, save_tier
from llm_console.services.tier_insights import assign_by_name, load_tiers_page
from llm_console.state.dashboard import DashboardMixin
from llm_console.state.keys import apply_config_here, caller

DEFAULT_RANGE = "7d"


class TiersState(DashboardMixin, rx.State):
    _minimum_role: ClassVar[str] = "operator"
    _route: ClassVar[str] = routes.LIMIT_TIERS
    _export_tables: ClassVar[tuple[str, ...]] = ("tiers", "distribution", "suggestions")
    tiers: list[dict[str, str]] = []
    chart: list[dict[str, str | int]] = []
    distribution: list[dict[str, str]] = []
    suggestions: list[dict[str, str]] = []
    tier_options: list[dict[str, str]] = []
    rule: str = ""
    range_text: str = ""
    can_edit: bool = False
    notice: str = ""
    error: str = ""

    def _parse(self) -> ParsedFilters:
        """The suggestions look at the last 7 days unless the URL names another range."""
        params = self._params()
        if "range" not in params and "from" not in params:
            params["range"] = DEFAULT_RANGE
        return parse_filters(params)

    def _load_for(self, parsed: ParsedFilters, role: str, user_id: int) -> TiersView:
        f = parsed.filters
        return tiers_view(load_tiers_page(get_context().engine, role=role, start=f.start, end=f.end))

    def _apply(self, result: Any) -> None:
        v: TiersView = result
        self.tiers, self.chart, self.distribution, self.suggestions = v.tiers, v.chart, v.distribution, v.suggestions
        self.tier_options, self.rule, self.range_text = v.tier_options, v.rule, v.range_text
        self.can_edit, self.as_of = v.can_edit, v.as_of

    async def _changed(self, notice: str) -> None:
        """After a change: this process's gateway reads limits afresh, the page says what happened and reloads."""
        apply_config_here()
        self.notice, self.error = notice, ""
        await self._refresh()


class TierFormState(rx.State):
    """Create or edit a tier (admins), and delete one nobody holds."""

    open: bool = False
    editing: str = ""  # the name of the tier being edited; "" for a new one
    error: str = ""
    values: dict[str, str] = {}
    confirm_id: str = ""
    confirm_name: str = ""
    _tier_id: int = 0

    @rx.event
    @requires("admin")
    async def open_new(self) -> None:
        if await caller(self, "admin") is not None:
            self._tier_id, self.editing, self.values, self.error, self.open = 0, "", tier_form_values(None), "", True

    @rx.event
    @requires("admin")
    async def open_edit(self, tier_id: str) -> None:
        if await caller(self, "admin") is None:
            return
        tiers = await asyncio.to_thread(list_tiers, get_context().engine)
        tier = next((t for t in tiers if str(t.id) == str(tier_id)), None)
        if tier is not None:
            self._tier_id, self.editing, self.values = tier.id, tier.name, tier_form_values(tier)
            self.error, self.open = "", True

    @rx.event
    @requires("admin")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "admin") is not None:
            self.open, self.error = False, ""

    @rx.event
    @requires("admin")
    async def submit(self, form: dict[str, Any]) -> None:
        """Create the tier, or replace the edited tier's values (everyone on it gets them)."""
        who = await caller(self, "admin")
        if who is None:
            return
        try:
            typed = parse_tier_form({k: str(v or "") for k, v in dict(form).items()})
            tier = await asyncio.to_thread(
                save_tier,
                get_context().engine,
                role=who[0].role,
                actor=who[0].email,
                tier_id=self._tier_id or None,
                settings=get_context().settings,
                name=typed.name,
                description=typed.description,
                rank=typed.rank,
                limits=typed.limits,
                budget=typed.budget,
            )
        except ValueError as exc:
            self.error = str(exc)
            return
        self.open, self.error = False, ""
        page = await self.get_state(TiersState)
        await page._changed(f"Saved the tier {tier.name}.")

    @rx.event
    @requires("admin")
    async def ask_delete(self, tier_id: str, name: str) -> None:
        if await caller(self, "admin") is not None:
            self.confirm_id, self.confirm_name = str(tier_id)[:12], str(name)[:60]

    @rx.event
    @requires("admin")
    async def cancel_delete(self) -> None:
        if await caller(self, "admin") is not None:
            self.confirm_id = ""

    @rx.event
    @requires("admin")
    async def confirm_delete(self) -> None:
        who = await caller(self, "admin")
        tier_id, name, self.confirm_id = self.confirm_id, self.confirm_name, ""
        if who is None or not tier_id.isdigit():
            return
        page = await self.get_state(TiersState)
        try:
            await asyncio.to_thread(
                delete_tier,
                get_context().engine,
                role=who[0].role,
                actor=who[0].email,
                tier_id=int(tier_id),
                settings=get_context().settings,
            )
        except ValueError as exc:
            page.notice, page.error = "", str(exc)
            return
        await page._changed(f"Deleted the tier {name}.")


class TierAssignState(rx.State):
    """Put a user, team or key (chosen by name) on a tier, or take them off (admins)."""

    open: bool = False
    error: str = ""

    @rx.event
    @requires("admin")
    async def open_assign(self) -> None:
        if await caller(self, "admin") is not None:
            self.open, self.error = True, ""

    @rx.event
    @requires("admin")
    async def close(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "admin") is not None:
            self.open, self.error = False, ""

    @rx.event
    @requires("admin")
    async def submit(self, form: dict[str, Any]) -> None:
        who = await caller(self, "admin")
        if who is None:
            return
        raw = str(form.get("tier") or "")
        if raw != NO_TIER and not (raw.isdigit() and len(raw) <= 12):
            self.error = "Choose a tier, or no tier."
            return
        try:
            ref, tier = await asyncio.to_thread(
                assign_by_name,
                get_context().engine,
                role=who[0].role,
                actor=who[0].email,
                entity_type=str(form.get("entity_type") or ""),
                name=str(form.get("name") or ""),
                tier_id=None if raw == NO_TIER else int(raw),
                settings=get_context().settings,
            )
        except ValueError as exc:
            self.error = str(exc)
            return
        self.open, self.error = False, ""
        page = await self.get_state(TiersState)
        await page._changed(f"{ref.label} is now on {tier}." if tier else f"{ref.label} is on no tier now.")
