"""Config as code: the operator's YAML, its dry-run diff, the apply, and the export download.

The YAML text is the operator's own input; nothing decrypted from the database ever reaches this state.
Apply stays disabled until a dry run of exactly this text (with these switches) succeeded, and re-validates.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import reflex as rx

from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.services.config_io import ImportPlan, apply_import, export_config, preview_import
from llm_console.services.config_schema import MAX_BYTES
from llm_console.services.context import get_context
from llm_console.services.deployments import ConfigError
from llm_console.services.sessions import SessionUser

EXPORT_NAME = "llm-console-config.yaml"


class ConfigIOState(rx.State):
    allowed: bool = False
    can_allow_private: bool = False  # adding hosts to the SSRF allow-list is an admin's call
    text: str = ""
    litellm: bool = False
    allow_private: bool = False
    problems: list[str] = []
    warnings: list[str] = []
    rows: list[dict[str, str]] = []
    summary: str = ""
    result: str = ""
    can_apply: bool = False
    _previewed: str = ""

    async def _operator(self) -> SessionUser | None:
        user = await current_user(self)
        return user if has_role(user, "operator") else None

    def _fingerprint(self) -> str:
        return hashlib.sha256(f"{self.litellm}|{self.allow_private}|{self.text}".encode()).hexdigest()

    def _stale(self) -> None:
        """The input changed: the last preview no longer describes it."""
        self.can_apply, self._previewed, self.result = False, "", ""
        self.rows, self.summary, self.problems, self.warnings = [], "", [], []

    def _show(self, plan: ImportPlan) -> None:
        self.rows, self.summary, self.warnings, self.problems = plan.rows(), plan.summary(), list(plan.warnings), []

    def _refuse(self, exc: ConfigError) -> None:
        self.problems = list(getattr(exc, "problems", None) or [str(exc)])
        self.can_apply, self.rows, self.summary = False, [], ""

    async def _plan(self, fn: Callable[..., ImportPlan], user: SessionUser, **extra: Any) -> ImportPlan | None:
        """Dry-run or apply this text with these switches and show the plan; None, with the problems shown, when
        the import is refused."""
        ctx = get_context()
        try:
            plan = await asyncio.to_thread(
                fn,
                ctx.engine,
                ctx.runtime.box,
                self.text,
                litellm=self.litellm,
                allow_private=self.allow_private,
                role=user.role,
                extra_allowlist=ctx.settings.upstream_allowlist,
                **extra,
            )
        except ConfigError as exc:
            self._refuse(exc)
            return None
        self._show(plan)
        return plan

    @rx.event
    @requires("viewer")
    async def load(self) -> None:
        user = await current_user(self)
        self.allowed, self.can_allow_private = has_role(user, "operator"), has_role(user, "admin")
        # The editor may hold literal API keys and the plan upstream hosts: start every visit empty.
        self.text, self.litellm, self.allow_private = "", False, False
        self._stale()

    @rx.event
    @requires("operator")
    async def set_text(self, value: str) -> None:
        if await self._operator() is None:
            return
        self.text = str(value)[: MAX_BYTES + 1]
        self._stale()

    @rx.event
    @requires("operator")
    async def set_litellm(self, value: bool) -> None:
        if await self._operator() is None:
            return
        self.litellm = bool(value)
        self._stale()

    @rx.event
    @requires("admin")
    async def set_allow_private(self, value: bool) -> None:
        if not has_role(await current_user(self), "admin"):
            return
        self.allow_private = bool(value)
        self._stale()

    @rx.event
    @requires("operator")
    async def preview(self) -> None:
        user = await self._operator()
        if user is None:
            return
        self.result = ""
        plan = await self._plan(preview_import, user)
        if plan is None:
            return
        self.can_apply = plan.has_changes
        self._previewed = self._fingerprint() if plan.has_changes else ""

    @rx.event
    @requires("operator")
    async def apply(self) -> None:
        user = await self._operator()
        if user is None:
            return
        if not self.can_apply or self._previewed != self._fingerprint():
            self.problems, self.can_apply = ["Preview the changes of this exact text first."], False
            return
        plan = await self._plan(apply_import, user, actor=user.email)
        if plan is None:
            return
        # The text may hold literal API keys: it is not kept once they are stored (encrypted).
        self.text, self.can_apply, self._previewed = "", False, ""
        self.result = f"Applied: {plan.summary()}. The editor was cleared; export to see the stored configuration."

    @rx.event
    @requires("operator")
    async def load_current(self) -> None:
        """Put the current configuration into the editor, to edit and re-import."""
        if await self._operator() is None:
            return
        self.text = await asyncio.to_thread(export_config, get_context().engine)
        self.litellm = False
        self._stale()

    @rx.event
    @requires("operator")
    async def export(self) -> Any:
        if await self._operator() is None:
            return None
        text = await asyncio.to_thread(export_config, get_context().engine)
        return rx.download(data=text, filename=EXPORT_NAME, mime_type="application/yaml")
