"""Telemetry page: where Langfuse and OpenTelemetry export send traces, and whether that works.

Operators and admins see both sinks' status and settings, refreshed live; only admins change them or send a
test. The Langfuse secret key and the OTLP headers arrive in a submitted form, go to the service and are
never kept in state: the page only learns whether one is set. Every handler checks the caller itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.auth.cookies import session_token
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.presenters.telemetry import form_values, langfuse_card, langfuse_fields, otlp_card, otlp_fields
from llm_console.services import telemetry_admin as admin
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser

VIEWER, EDITOR = "operator", "admin"
SINKS = {"langfuse": "Langfuse", "otlp": "OpenTelemetry"}
REFUSED = "Only operators and admins can see the telemetry export."
READ_ONLY = "Only admins can change the telemetry export."


def _views() -> tuple[admin.LangfuseView, admin.OtlpView]:
    ctx = get_context()
    return admin.load_views(ctx.engine, ctx.runtime.box, ctx.settings)


class TelemetryState(rx.State):
    langfuse: dict[str, str] = {}
    otlp: dict[str, str] = {}
    can_edit: bool = False
    error: str = ""
    notice: str = ""
    form_open: str = ""  # the sink whose dialog is open, or ""
    form: dict[str, str] = {}
    form_error: str = ""
    testing: str = ""
    test_result: dict[str, str] = {}  # sink, ok ("true" or ""), message
    _live_generation: int = 0

    async def _user(self, minimum: str) -> SessionUser | None:
        user = await current_user(self)
        if has_role(user, minimum):
            return user
        if has_role(user, VIEWER):
            self.error = READ_ONLY
        else:
            self.error, self.langfuse, self.otlp, self.can_edit = REFUSED, {}, {}, False
        return None

    def _show(self, views: tuple[admin.LangfuseView, admin.OtlpView]) -> None:
        now = datetime.now(UTC)
        self.langfuse, self.otlp = langfuse_card(views[0], now), otlp_card(views[1], now)

    @rx.event
    @requires(VIEWER)
    async def load(self) -> Any:
        user = await self._user(VIEWER)
        if user is None:
            return None
        self.can_edit = has_role(user, EDITOR)
        self.error, self.notice, self.test_result, self.form_open = "", "", {}, ""
        self._show(await asyncio.to_thread(_views))
        self._live_generation += 1
        return TelemetryState.live(self._live_generation)

    @rx.event
    @requires(EDITOR)
    async def edit(self, sink: str) -> None:
        if await self._user(EDITOR) is None or sink not in SINKS:
            return
        views = await asyncio.to_thread(_views)
        self._show(views)
        self.form = form_values(views[0] if sink == "langfuse" else views[1])
        self.form_error, self.form_open = "", sink

    @rx.event
    @requires(EDITOR)
    async def close_form(self, is_open: bool) -> None:
        if not is_open:
            self.form_open, self.form_error = "", ""

    async def _saved(self, view: admin.LangfuseView | admin.OtlpView, sink: str) -> None:
        self.form_open, self.form_error, self.error = "", "", ""
        self.notice = f"Saved the {SINKS[sink]} export" + (" (on)." if view.enabled else " (off).")
        self._show(await asyncio.to_thread(_views))

    async def _save(self, sink: str, form: dict[str, Any]) -> None:
        user = await self._user(EDITOR)
        if user is None:
            return
        ctx = get_context()
        where = (ctx.engine, ctx.runtime.box, ctx.settings, user.email)
        view: admin.LangfuseView | admin.OtlpView
        try:
            if sink == "langfuse":
                view = await asyncio.to_thread(admin.save_langfuse, *where, **langfuse_fields(form))
            else:
                view = await asyncio.to_thread(admin.save_otlp, *where, **otlp_fields(form))
        except ValueError as exc:
            self.form_error = str(exc)
            return
        await self._saved(view, sink)

    @rx.event
    @requires(EDITOR)
    async def save_langfuse(self, form: dict[str, Any]) -> None:
        await self._save("langfuse", form)

    @rx.event
    @requires(EDITOR)
    async def save_otlp(self, form: dict[str, Any]) -> None:
        await self._save("otlp", form)

    async def _background_user(self, minimum: str) -> SessionUser | None:
        async with self:
            cookie = self.router.headers.cookie
        user = await get_context().sessions.resolve(session_token(cookie))
        return user if has_role(user, minimum) else None

    @rx.event(background=True)
    @requires(EDITOR)
    async def send_test(self, sink: str) -> None:
        """Send one test trace to the sink's saved settings now and show what came back (outside the lock)."""
        if sink not in SINKS or await self._background_user(EDITOR) is None:
            return
        async with self:
            self.testing, self.test_result, self.error, self.notice = sink, {}, "", ""
        ctx = get_context()
        try:
            ok, message = await admin.test_sink(ctx.engine, ctx.runtime.box, ctx.settings, sink)
            views = await asyncio.to_thread(_views)
        finally:
            async with self:
                self.testing = ""
        async with self:
            self.test_result = {"sink": sink, "ok": "true" if ok else "", "message": message}
            self._show(views)

    @rx.event(background=True)
    @requires(VIEWER)
    async def live(self, generation: int) -> None:
        """Refresh the status cards until the tab closes, navigates away or a newer loop starts."""
        from llm_console.llm_console import app

        interval = get_context().settings.dashboard_live_interval_s
        while True:
            await asyncio.sleep(interval)
            async with self:
                token = self.router.session.client_token
                here = self.router.url.path.rstrip("/") == routes.TELEMETRY
                stale = generation != self._live_generation or not here
            if stale or token not in app.event_namespace.token_to_sid:
                return
            if await self._background_user(VIEWER) is None:
                return
            views = await asyncio.to_thread(_views)
            async with self:
                if generation != self._live_generation:
                    return
                self._show(views)
