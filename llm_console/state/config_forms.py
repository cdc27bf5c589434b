"""The Configuration page's dialogs: provider and deployment forms, and delete confirmations.

A provider's API key arrives in the submitted form, goes to the service and is never kept in state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from llm_console.auth.guard import has_role
from llm_console.auth.policy import requires
from llm_console.services import deployment_admin, providers
from llm_console.services.context import get_context
from llm_console.services.deployment_admin import DeploymentFields
from llm_console.services.deployments import ConfigError
from llm_console.state.config import EDITOR, ConfigState, as_id

TIMEOUTS = ("connect_s", "first_byte_s", "idle_s", "total_s")


def ticked(form: dict[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("on", "true", "1")


def _listing(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


class ProviderFormState(ConfigState):
    provider_open: bool = False
    provider_form: dict[str, str] = {}
    provider_error: str = ""

    @rx.event
    @requires(EDITOR)
    async def new_provider(self) -> None:
        if await self._user(EDITOR) is None:
            return
        self.provider_form = {"id": "", "name": "", "kind": "openai", "base_url": "", "api_version": "", "has_key": ""}
        self.provider_error, self.provider_open = "", True

    @rx.event
    @requires(EDITOR)
    async def edit_provider(self, provider_id: str) -> None:
        pid = as_id(provider_id)
        if await self._user(EDITOR) is None or pid is None:
            return
        try:
            p = await asyncio.to_thread(providers.get_provider, get_context().engine, pid)
        except ConfigError as exc:
            self.error = str(exc)
            return
        self.provider_form = {
            "id": str(p.id),
            "name": p.name,
            "kind": p.kind,
            "base_url": p.api_base,
            "api_version": p.api_version,
            "has_key": "true" if p.has_key else "",
        }
        self.provider_error, self.provider_open = "", True

    @rx.event
    @requires(EDITOR)
    async def close_provider(self, is_open: bool) -> None:
        if not is_open:
            self.provider_open = False

    @rx.event
    @requires(EDITOR)
    async def save_provider(self, form: dict[str, Any]) -> None:
        user = await self._user(EDITOR)
        if user is None:
            return
        allow_private = ticked(form, "allow_private")
        if allow_private and not has_role(user, "admin"):
            self.provider_error = "Only admins can allow a private host; ask one, or use a public address."
            return
        ctx, pid = get_context(), as_id(self.provider_form.get("id"))
        common = {
            "name": form.get("name", ""),
            "kind": form.get("kind", ""),
            "base_url": form.get("base_url", ""),
            "api_key": form.get("api_key", ""),
            "api_version": form.get("api_version", ""),
            "allow_private": allow_private,
            "extra_allowlist": ctx.settings.upstream_allowlist,
            "actor": user.email,
        }
        try:
            if pid is None:
                view = await asyncio.to_thread(providers.create_provider, ctx.engine, ctx.runtime.box, **common)
            else:
                view = await asyncio.to_thread(
                    providers.update_provider,
                    ctx.engine,
                    ctx.runtime.box,
                    pid,
                    clear_api_key=ticked(form, "clear_api_key"),
                    **common,
                )
        except ConfigError as exc:
            self.provider_error = str(exc)
            return
        self.provider_open = False
        await self._changed(f"Saved provider {view.name}.")


class DeploymentFormState(ConfigState):
    deployment_open: bool = False
    deployment_form: dict[str, str] = {}
    deployment_error: str = ""

    @rx.event
    @requires(EDITOR)
    async def new_deployment(self) -> None:
        if await self._user(EDITOR) is None:
            return
        if not self.provider_choices:
            self.error = "Add a provider first: a deployment is a model served by one provider."
            return
        first = self.provider_choices[0]["value"]
        self.deployment_form = {"id": "", "provider_id": first, "weight": "1"}
        self.deployment_error, self.deployment_open = "", True

    @rx.event
    @requires(EDITOR)
    async def edit_deployment(self, deployment_id: str) -> None:
        dep_id = as_id(deployment_id)
        if await self._user(EDITOR) is None or dep_id is None:
            return
        try:
            d = await asyncio.to_thread(deployment_admin.get_deployment, get_context().engine, dep_id)
        except ConfigError as exc:
            self.error = str(exc)
            return
        self.deployment_form = {
            "id": str(d.id),
            "provider_id": str(d.provider_id),
            "provider": d.provider_name,
            "kind": d.provider_kind,
            "name": d.name,
            "model": d.model,
            "weight": "1",
            "api_version": d.api_version,
            "max_concurrency": "" if d.max_concurrency is None else str(d.max_concurrency),
            "gpu_hour_usd": "" if d.gpu_hour_usd is None else f"{d.gpu_hour_usd:g}",
            "metrics_url": d.metrics_url,
            "routes": ", ".join(a for a, _ in d.aliases) or "none yet",
            **{name: f"{d.timeouts[name]:g}" if name in d.timeouts else "" for name in TIMEOUTS},
        }
        self.deployment_error, self.deployment_open = "", True

    @rx.event
    @requires(EDITOR)
    async def close_deployment(self, is_open: bool) -> None:
        if not is_open:
            self.deployment_open = False

    @rx.event
    @requires(EDITOR)
    async def save_deployment(self, form: dict[str, Any]) -> None:
        user = await self._user(EDITOR)
        if user is None:
            return
        engine, dep_id = get_context().engine, as_id(self.deployment_form.get("id"))
        try:
            fields = DeploymentFields.from_form(form)
            if dep_id is not None:
                view = await asyncio.to_thread(
                    deployment_admin.update_deployment, engine, dep_id, fields, actor=user.email
                )
            else:
                provider_id = as_id(form.get("provider_id"))
                if provider_id is None:
                    raise ConfigError("choose the provider that serves this deployment")
                view = await asyncio.to_thread(
                    deployment_admin.create_deployment, engine, provider_id, fields, actor=user.email
                )
        except ConfigError as exc:
            self.deployment_error = str(exc)
            return
        self.deployment_open = False
        routed = f", routed from {fields.alias}" if fields.alias else ""
        await self._changed(f"Saved deployment {view.name}{routed}.")


class DeleteState(ConfigState):
    confirm_open: bool = False
    confirm: dict[str, str] = {}
    _expected: list[str] = []

    @rx.event
    @requires(EDITOR)
    async def ask_delete_provider(self, provider_id: str) -> None:
        pid = as_id(provider_id)
        if await self._user(EDITOR) is None or pid is None:
            return
        engine = get_context().engine
        try:
            view = await asyncio.to_thread(providers.get_provider, engine, pid)
            impact = await asyncio.to_thread(providers.deletion_impact, engine, pid)
        except ConfigError as exc:
            self.error = str(exc)
            return
        message = "Nothing routes to it."
        if impact.deployments:
            message = (
                f"Its {len(impact.deployments)} deployment(s) are deleted with it: {_listing(impact.deployments)}."
            )
        if impact.orphaned_aliases:
            message += f" Left with no deployment (clients get 'unknown model'): {_listing(impact.orphaned_aliases)}."
        self._expected = impact.deployments
        self.confirm = {"type": "provider", "id": str(pid), "name": view.name, "message": message}
        self.confirm_open = True

    @rx.event
    @requires(EDITOR)
    async def ask_delete_deployment(self, deployment_id: str) -> None:
        dep_id = as_id(deployment_id)
        if await self._user(EDITOR) is None or dep_id is None:
            return
        engine = get_context().engine
        try:
            view = await asyncio.to_thread(deployment_admin.get_deployment, engine, dep_id)
            impact = await asyncio.to_thread(deployment_admin.deletion_impact, engine, dep_id)
        except ConfigError as exc:
            self.error = str(exc)
            return
        message = f"Aliases that lose it: {_listing(impact.aliases)}." if impact.aliases else "No alias routes to it."
        if impact.orphaned_aliases:
            message += f" Left with no deployment (clients get 'unknown model'): {_listing(impact.orphaned_aliases)}."
        self.confirm = {"type": "deployment", "id": str(dep_id), "name": view.name, "message": message}
        self.confirm_open = True

    @rx.event
    @requires(EDITOR)
    async def cancel_delete(self) -> None:
        self.confirm_open, self.confirm = False, {}

    @rx.event
    @requires(EDITOR)
    async def confirm_delete(self) -> None:
        user, item_id, kind = await self._user(EDITOR), as_id(self.confirm.get("id")), self.confirm.get("type")
        self.confirm_open = False
        if user is None or item_id is None:
            return
        engine = get_context().engine
        try:
            if kind == "provider":
                # Deleting its deployments was confirmed for those shown: any added since, refuse.
                now = await asyncio.to_thread(providers.deletion_impact, engine, item_id)
                if now.deployments != self._expected:
                    raise ConfigError("the provider's deployments changed meanwhile; look again before deleting")
                await asyncio.to_thread(providers.delete_provider, engine, item_id, force=True, actor=user.email)
            else:
                await asyncio.to_thread(deployment_admin.delete_deployment, engine, item_id, actor=user.email)
        except ConfigError as exc:
            self.error = str(exc)
            return
        await self._changed(f"Deleted {kind} {self.confirm.get('name', '')}.")
        self.confirm = {}
