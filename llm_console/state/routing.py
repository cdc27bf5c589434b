"""Routing rules page: the alias list, the chosen alias (?alias=) as an editable draft, and its preview.

Everyone signed in reads it and may run the preview; changing the draft, saving, creating and deleting
aliases is for operators and admins (checked by the event guard and again inside every handler).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from llm_console import routes
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.gateway.routing import STRATEGIES
from llm_console.services import routing_rules as rules
from llm_console.services.context import get_context
from llm_console.services.deployments import TIMEOUT_FIELDS, ConfigError
from llm_console.services.routing_preview import load_plan, preview, preview_rows
from llm_console.services.sessions import SessionUser

EDIT_ROLE = "operator"
NUMBER_FIELDS = ("retries", "backoff_ms", "retry_after_cap_s", *TIMEOUT_FIELDS)
FIELDS = (*NUMBER_FIELDS, "engine_fallback")  # the draft's text fields; the last one is a strategy name
UNITS = {"retries": "", "backoff_ms": " ms"}


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _page(alias: str) -> tuple[list[rules.Rule], list[rules.Link]]:
    """Every rule and every deployment (runs in a thread)."""
    engine = get_context().engine
    return rules.list_rules(engine), rules.deployment_choices(engine)


def alias_href(alias: str) -> str:
    return f"{routes.ROUTING}?{urlencode({'alias': alias})}" if alias else routes.ROUTING


async def allowed(state: rx.State, role: str) -> SessionUser | None:
    user = await current_user(state)
    return user if has_role(user, role) else None


class RoutingState(rx.State):
    aliases: list[dict[str, str]] = []
    selected: str = ""
    found: bool = False
    can_edit: bool = False
    error: str = ""
    notice: str = ""
    strategy: str = "weighted"
    links: list[dict[str, str]] = []
    fallbacks: list[str] = []
    fields: dict[str, str] = {}
    hints: dict[str, str] = {}
    choices: list[dict[str, str]] = []  # deployments not linked yet
    deployment_options: list[dict[str, str]] = []  # every deployment (the create dialog)
    fallback_choices: list[str] = []
    form_key: int = 0
    preview_rows: list[dict[str, str]] = []
    preview_summary: str = ""
    preview_refusal: str = ""
    preview_seed: int = 0
    _deployments: list[dict[str, str]] = []  # every deployment, as a link row at weight 1

    def _alias_param(self) -> str:
        return str(self.router.url.query_parameters.get("alias", "") or "")[:300]

    def _show(self, all_rules: list[rules.Rule], deployments: list[rules.Link]) -> None:
        """The list, and the selected alias's stored rule as the draft."""
        self.aliases = [
            {
                "alias": r.alias,
                "strategy": r.strategy,
                "deployments": f"{sum(1 for x in r.links if x.weight > 0 and x.enabled)} of {len(r.links)} in rotation",
                "selected": "yes" if r.alias == self.selected else "",
            }
            for r in all_rules
        ]
        rule = next((r for r in all_rules if r.alias == self.selected), None)
        self.found, self.form_key = rule is not None, self.form_key + 1
        defaults = rules.gateway_defaults(get_context().settings)
        stale_s = get_context().settings.fleet_engine_stale_s
        self.hints = {
            **{k: f"inherits gateway default {v:g}{UNITS.get(k, ' s')}" for k, v in defaults.items()},
            "engine_fallback": f"used when no deployment has an engine sample newer than {stale_s:g} s",
        }
        self.fallback_choices = [r.alias for r in all_rules if r.alias != self.selected]
        self._deployments = [self._link_row(d) for d in deployments]
        self.deployment_options = [{"value": d["id"], "label": d["deployment"]} for d in self._deployments]
        if rule is None:
            self.links, self.fallbacks, self.fields = [], [], {}
            return
        self.strategy, self.fallbacks = rule.strategy, list(rule.fallbacks)
        self.links = [self._link_row(x) for x in rule.links]
        values = {"retries": rule.retries, "backoff_ms": rule.backoff_ms, "retry_after_cap_s": rule.retry_after_cap_s}
        fields = {k: _num(values.get(k, rule.timeouts.get(k))) for k in NUMBER_FIELDS}
        self.fields = {**fields, "engine_fallback": rule.engine_fallback or ""}
        self._refresh_choices()

    def _link_row(self, x: rules.Link) -> dict[str, str]:
        status = "disabled" if not x.enabled else ""
        return {"id": str(x.deployment_id), "deployment": x.deployment, "weight": str(x.weight), "status": status}

    def _refresh_choices(self) -> None:
        linked = {row["id"] for row in self.links}
        self.choices = [
            {"value": d["id"], "label": d["deployment"]} for d in self._deployments if d["id"] not in linked
        ]

    def _draft(self) -> rules.RuleChange:
        """The draft as a RuleChange (a ConfigError says what is wrong with it)."""
        weights = {int(row["id"]): row["weight"] for row in self.links}
        return rules.parse_form(self.strategy, weights, self.fallbacks, self.fields)

    async def _preview(self, change: rules.RuleChange | None) -> None:
        plan = await asyncio.to_thread(load_plan, get_context().engine, self.selected, change)
        result = preview(plan, get_context().runtime.balancer, seed=self.preview_seed)
        self.preview_rows, self.preview_summary = preview_rows(result), result.summary()
        self.preview_refusal = result.refusal

    async def _reload(self) -> None:
        self.selected = self._alias_param()
        self._show(*await asyncio.to_thread(_page, self.selected))
        self.preview_rows, self.preview_summary, self.preview_refusal = [], "", ""
        if self.found:
            await self._preview(None)

    @rx.event
    @requires("viewer")
    async def load(self) -> Any:
        user = await allowed(self, "viewer")
        if user is None:
            return rx.redirect(routes.LOGIN, replace=True)
        self.can_edit, self.error, self.notice, self.preview_seed = has_role(user, EDIT_ROLE), "", "", 0
        try:
            await self._reload()
        except ConfigError as exc:
            self.error = str(exc)
        if self.selected and not self.found:
            self.error = "There is no alias by that name (it may have been deleted)."
        return None

    @rx.event
    @requires("viewer")
    async def select_alias(self, alias: str) -> Any:
        if await allowed(self, "viewer") is None:
            return None
        return rx.redirect(alias_href(str(alias)[:300]))

    @rx.event
    @requires("viewer")
    async def run_preview(self) -> None:
        """Where the next 100 requests would go under the draft (the stored rule, for viewers); a new seed per click."""
        user = await allowed(self, "viewer")
        if user is None or not self.found:
            return
        self.preview_seed += 1
        try:
            await self._preview(self._draft() if has_role(user, EDIT_ROLE) else None)
            self.error = ""
        except ConfigError as exc:
            self.error = str(exc)


class RoutingEditState(rx.State):
    """Operators and admins: edit the draft, save it as one audited change, create and delete aliases."""

    create_open: bool = False
    create_error: str = ""

    async def _editor(self) -> tuple[str, RoutingState] | None:
        """The caller's email and the page state when they may edit, else None (and a readable refusal)."""
        user = await allowed(self, EDIT_ROLE)
        page = await self.get_state(RoutingState)
        if user is None:
            page.error, page.notice = "Only operators and admins can change routing rules.", ""
            return None
        return user.email, page

    @rx.event
    @requires(EDIT_ROLE)
    async def set_strategy(self, value: str) -> None:
        if (who := await self._editor()) is not None and value in STRATEGIES:
            who[1].strategy = value

    @rx.event
    @requires(EDIT_ROLE)
    async def set_weight(self, deployment_id: str, value: str) -> None:
        if (who := await self._editor()) is not None:
            page = who[1]
            page.links = [{**r, "weight": str(value)[:20]} if r["id"] == deployment_id else r for r in page.links]

    @rx.event
    @requires(EDIT_ROLE)
    async def set_field(self, name: str, value: str) -> None:
        if (who := await self._editor()) is not None and name in FIELDS:
            who[1].fields = {**who[1].fields, name: str(value)[:40]}

    @rx.event
    @requires(EDIT_ROLE)
    async def add_link(self, deployment_id: str) -> None:
        if (who := await self._editor()) is not None:
            page = who[1]
            row = next((d for d in page._deployments if d["id"] == deployment_id), None)
            if row is not None and all(r["id"] != deployment_id for r in page.links):
                page.links = [*page.links, row]
                page._refresh_choices()

    @rx.event
    @requires(EDIT_ROLE)
    async def remove_link(self, deployment_id: str) -> None:
        if (who := await self._editor()) is not None:
            page = who[1]
            page.links = [r for r in page.links if r["id"] != deployment_id]
            page._refresh_choices()

    @rx.event
    @requires(EDIT_ROLE)
    async def add_fallback(self, alias: str) -> None:
        if (who := await self._editor()) is not None:
            page = who[1]
            if alias in page.fallback_choices and alias not in page.fallbacks:
                page.fallbacks = [*page.fallbacks, alias]

    @rx.event
    @requires(EDIT_ROLE)
    async def remove_fallback(self, alias: str) -> None:
        if (who := await self._editor()) is not None:
            who[1].fallbacks = [f for f in who[1].fallbacks if f != alias]

    @rx.event
    @requires(EDIT_ROLE)
    async def save(self) -> None:
        """The whole draft as one audited change; the page then shows what is stored."""
        if (who := await self._editor()) is None:
            return
        actor, page = who
        try:
            change = page._draft()
            changed = await asyncio.to_thread(
                rules.save_rule, get_context().engine, alias=page.selected, change=change, actor=actor
            )
            await page._reload()
        except ConfigError as exc:
            page.error, page.notice = str(exc), ""
            return
        interval = get_context().settings.route_refresh_interval_s
        page.error = ""
        page.notice = f"Saved; gateways use it within {interval:g} s." if changed else "Nothing changed."

    @rx.event
    @requires(EDIT_ROLE)
    async def set_create_open(self, is_open: bool) -> None:
        if await self._editor() is not None:
            self.create_open, self.create_error = bool(is_open), ""

    @rx.event
    @requires(EDIT_ROLE)
    async def create_alias(self, form: dict[str, Any]) -> Any:
        if (who := await self._editor()) is None:
            return None
        deployment = str(form.get("deployment", "") or "")
        try:
            rule = await asyncio.to_thread(
                rules.create_alias,
                get_context().engine,
                alias=str(form.get("alias", "") or "")[:1000],
                deployment_id=int(deployment) if deployment.isdigit() else None,
                actor=who[0],
            )
        except ConfigError as exc:
            self.create_error = str(exc)
            return None
        self.create_open, self.create_error = False, ""
        return rx.redirect(alias_href(rule.alias))

    @rx.event
    @requires(EDIT_ROLE)
    async def delete_alias(self) -> Any:
        if (who := await self._editor()) is None:
            return None
        actor, page = who
        try:
            await asyncio.to_thread(rules.delete_alias, get_context().engine, alias=page.selected, actor=actor)
        except ConfigError as exc:
            page.error, page.notice = str(exc), ""
            return None
        return rx.redirect(routes.ROUTING)
