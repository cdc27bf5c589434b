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
from llm_console.services import telemetry_admin as admin
from llm_console.services.context import get_context
from llm_console.services.sessions import SessionUser

VIEWER, EDITOR = "operator", "admin"
SINKS = {"langfuse": "Langfuse", "otlp": "OpenTelemetry"}
REFUSED = "Only operators and admins can see the telemetry export."
READ_ONLY = "Only admins can change the telemetry export."
STATUS_LABELS = {"off": "Off", "ok": "Connected", "error": "Error", "waiting": "Waiting for data"}
SOURCE_LABELS = {"console": "set in the console", "environment": "environment variables", "default": "defaults"}


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def when(value: datetime | None, now: datetime) -> str:
    """An instant in UTC and how long ago it was; "never" when there is none."""
    if value is None:
        return "never"
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({_ago((now - value).total_seconds())})"


def status_facts(s: admin.SinkStatus, now: datetime) -> dict[str, str]:
    error = s.last_error or ""
    return {
        "state": s.state,
        "label": STATUS_LABELS.get(s.state, s.state),
        "last_export": when(s.last_ok_at, now),
        "last_error": f"{when(s.last_error_at, now)}: {error}" if error else "none",
        "exported": f"{s.exported:,}",
        "dropped": f"{s.dropped:,}",
    }


def _common(v: admin.LangfuseView | admin.OtlpView, now: datetime) -> dict[str, str]:
    source = SOURCE_LABELS.get(v.source, v.source)
    if v.source == "console" and v.updated_at is not None:
        source += f", {when(v.updated_at, now)} by {v.updated_by or 'unknown'}"
    return {
        **status_facts(v.status, now),
        "enabled": "yes" if v.enabled else "no",
        "bodies": "yes" if v.include_bodies else "no (metadata only)",
        "sample": f"{v.sample_rate * 100:g}% of requests",
        "source": source,
    }


def langfuse_card(v: admin.LangfuseView, now: datetime) -> dict[str, str]:
    """What the Langfuse card shows: status, counts, settings; the secret only as set or not."""
    return {
        **_common(v, now),
        "target": v.host or "not set",
        "public_key": v.public_key or "not set",
        "secret": "set" if v.secret_set else "not set",
    }


def otlp_card(v: admin.OtlpView, now: datetime) -> dict[str, str]:
    """What the OTLP card shows; header values are secrets, so only their names."""
    return {
        **_common(v, now),
        "target": v.endpoint or "not set",
        "headers": ", ".join(v.header_names) if v.headers_set and v.header_names else "none",
        "service_name": v.service_name,
    }


def form_values(v: admin.LangfuseView | admin.OtlpView) -> dict[str, str]:
    """The dialog's starting values (no secrets: only whether one is stored)."""
    common = {
        "enabled": "true" if v.enabled else "",
        "include_bodies": "true" if v.include_bodies else "",
        "sample_rate": f"{v.sample_rate:g}",
    }
    if isinstance(v, admin.LangfuseView):
        return {**common, "target": v.host, "public_key": v.public_key, "secret_set": "true" if v.secret_set else ""}
    return {
        **common,
        "target": v.endpoint,
        "service_name": v.service_name,
        "secret_set": "true" if v.headers_set else "",
    }


def ticked(form: dict[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("on", "true", "1")


def sample_rate(form: dict[str, Any]) -> float:
    """The submitted sample rate as a fraction (the service checks the range)."""
    raw = str(form.get("sample_rate", "")).strip()
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"The sample rate must be a number from 0 to 1, not {raw[:40]!r}.") from None


def secret(form: dict[str, Any], name: str) -> str | None:
    """A write-only field: empty keeps the one in force (None), anything else replaces it."""
    value = str(form.get(name, "")).strip()
    return value or None


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

    @rx.event
    @requires(EDITOR)
    async def save_langfuse(self, form: dict[str, Any]) -> None:
        user = await self._user(EDITOR)
        if user is None:
            return
        ctx = get_context()
        try:
            view = await asyncio.to_thread(
                admin.save_langfuse,
                ctx.engine,
                ctx.runtime.box,
                ctx.settings,
                user.email,
                enabled=ticked(form, "enabled"),
                host=str(form.get("target", "")).strip(),
                public_key=str(form.get("public_key", "")).strip(),
                secret_key=secret(form, "secret_key"),
                include_bodies=ticked(form, "include_bodies"),
                sample_rate=sample_rate(form),
            )
        except ValueError as exc:
            self.form_error = str(exc)
            return
        await self._saved(view, "langfuse")

    @rx.event
    @requires(EDITOR)
    async def save_otlp(self, form: dict[str, Any]) -> None:
        user = await self._user(EDITOR)
        if user is None:
            return
        ctx = get_context()
        try:
            view = await asyncio.to_thread(
                admin.save_otlp,
                ctx.engine,
                ctx.runtime.box,
                ctx.settings,
                user.email,
                enabled=ticked(form, "enabled"),
                endpoint=str(form.get("target", "")).strip(),
                headers="" if ticked(form, "clear_headers") else secret(form, "headers"),
                service_name=str(form.get("service_name", "")).strip(),
                include_bodies=ticked(form, "include_bodies"),
                sample_rate=sample_rate(form),
            )
        except ValueError as exc:
            self.form_error = str(exc)
            return
        await self._saved(view, "otlp")

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
