"""Configuration page: providers, deployments and their health; tests and toggles (forms: config_forms.py).

Anyone signed in may look (nothing secret is on the page); operators and admins may change things, and
every handler checks that itself, whatever the page showed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.auth.cookies import session_token
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.presenters.config import (
    MatrixRow,
    deployment_rows,
    health_matrix,
    provider_options,
    provider_rows,
    test_summary,
)
from llm_console.services.context import get_context
from llm_console.services.deployment_admin import list_deployments, set_deployment_enabled
from llm_console.services.deployments import ConfigError
from llm_console.services.probe import probe_all, probe_deployment
from llm_console.services.providers import list_providers, set_provider_enabled
from llm_console.services.sessions import SessionUser

log = logging.getLogger("llm_console.console")
EDITOR = "operator"


def as_id(value: Any) -> int | None:
    """An id sent by the browser (any socket may send anything): a positive int, or None."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


class ConfigState(rx.State):
    providers: list[dict[str, str]] = []
    deployments: list[dict[str, str]] = []
    provider_choices: list[dict[str, str]] = []
    matrix_columns: list[str] = []
    matrix_rows: list[MatrixRow] = []
    can_edit: bool = False
    can_allow_private: bool = False
    error: str = ""
    notice: str = ""
    checking: bool = False
    testing: str = ""
    test_result: dict[str, str] = {}

    async def _user(self, minimum: str) -> SessionUser | None:
        """The caller if they hold `minimum`; otherwise None, with a message on the page."""
        user = await current_user(self)
        if not has_role(user, minimum):
            self.error = "Only operators and admins can change the configuration."
            return None
        return user

    def _snapshot(self) -> Any:
        engine = get_context().engine
        return list_providers(engine), list_deployments(engine)

    def _show(self, data: Any) -> None:
        providers, deployments = data
        self.providers, self.provider_choices = provider_rows(providers), provider_options(providers)
        self.deployments = deployment_rows(deployments)
        self.matrix_columns, self.matrix_rows = health_matrix(deployments)
        if self.test_result and all(d["id"] != self.test_result.get("id") for d in self.deployments):
            self.test_result = {}  # its deployment is gone

    async def _reload(self) -> None:
        self._show(await asyncio.to_thread(self._snapshot))

    async def _changed(self, notice: str) -> None:
        """After a change: this worker's gateway reloads its routes now (the others within their refresh
        interval), and the page shows the new tables."""
        self.error, self.notice = "", notice
        try:
            await get_context().runtime.reload_routes()
        except Exception as exc:  # the refresh loop picks the change up anyway
            log.warning("route reload after a console change failed: %s", type(exc).__name__)
        await self._reload()

    @rx.event
    @requires("viewer")
    async def load(self) -> Any:
        user = await current_user(self)
        if user is None:
            return rx.redirect(routes.LOGIN, replace=True)
        self.can_edit, self.can_allow_private = has_role(user, EDITOR), has_role(user, "admin")
        self.error, self.notice, self.test_result = "", "", {}
        await self._reload()
        return None

    async def _toggle(self, kind: str, raw_id: Any, enabled: Any) -> None:
        user, item_id = await self._user(EDITOR), as_id(raw_id)
        if user is None or item_id is None:
            return
        on = enabled is True or str(enabled).lower() == "true"
        change = set_provider_enabled if kind == "provider" else set_deployment_enabled
        try:
            await asyncio.to_thread(change, get_context().engine, item_id, on, actor=user.email)
        except ConfigError as exc:
            self.error = str(exc)
            return
        await self._changed(f"{kind.capitalize()} {'enabled' if on else 'disabled'}.")

    @rx.event
    @requires(EDITOR)
    async def toggle_provider(self, provider_id: str, enabled: bool) -> None:
        await self._toggle("provider", provider_id, enabled)

    @rx.event
    @requires(EDITOR)
    async def toggle_deployment(self, deployment_id: str, enabled: bool) -> None:
        await self._toggle("deployment", deployment_id, enabled)

    async def _background_user(self) -> SessionUser | None:
        async with self:
            cookie = self.router.headers.cookie
        user = await get_context().sessions.resolve(session_token(cookie))
        if has_role(user, EDITOR):
            return user
        async with self:
            self.error = "Only operators and admins can test deployments."
        return None

    @rx.event(background=True)
    @requires(EDITOR)
    async def test_deployment(self, deployment_id: str) -> None:
        """Call the deployment's model list now; show latency and models found, or the readable error."""
        dep_id = as_id(deployment_id)
        if dep_id is None or await self._background_user() is None:
            return
        async with self:
            name = next((d["name"] for d in self.deployments if d["id"] == str(dep_id)), f"deployment {dep_id}")
            self.testing, self.error, self.notice = str(dep_id), "", ""
        ctx = get_context()
        try:
            result = await probe_deployment(
                ctx.engine, ctx.runtime.box, dep_id, extra_allowlist=ctx.settings.upstream_allowlist
            )
            data = await asyncio.to_thread(self._snapshot)
        except ConfigError as exc:
            async with self:
                self.error = str(exc)
            return
        finally:
            async with self:
                self.testing = ""
        async with self:
            self.test_result = test_summary(dep_id, name, result)
            self._show(data)

    @rx.event(background=True)
    @requires(EDITOR)
    async def check_all(self) -> None:
        """Probe every deployment now and refresh the matrix."""
        if await self._background_user() is None:
            return
        async with self:
            if self.checking:
                return
            self.checking, self.error, self.notice = True, "", ""
        ctx = get_context()
        try:
            results = await probe_all(ctx.engine, ctx.runtime.box, extra_allowlist=ctx.settings.upstream_allowlist)
            data = await asyncio.to_thread(self._snapshot)
        finally:
            async with self:
                self.checking = False
        counts = {s: sum(r.status == s for r in results.values()) for s in ("available", "loading", "error")}
        async with self:
            self._show(data)
            self.notice = f"Checked {len(results)} deployment(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
