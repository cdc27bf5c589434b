"""Virtual keys page: the list (search, status and page in the URL), revoke and rotate, the one-time secret.

Every handler checks the caller again and works inside their team scope; the secret of a new or rotated key
lives in `new_secret` only until the dialog showing it is dismissed, and never in the URL or a log.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from llm_console import routes
from llm_console.auth.guard import current_user, has_role
from llm_console.auth.policy import requires
from llm_console.presenters import keys as present
from llm_console.services.context import get_context
from llm_console.services.key_admin import rotate_key
from llm_console.services.key_list import STATUSES, list_keys
from llm_console.services.keys import revoke_key
from llm_console.services.scope import Scope, scope_for
from llm_console.services.sessions import SessionUser

ACTIONS = ("revoke", "rotate")


async def caller(state: rx.State, minimum: str) -> tuple[SessionUser, Scope] | None:
    """The signed-in user and their scope when they have at least `minimum`, else None."""
    user = await current_user(state)
    if user is None or not has_role(user, minimum):
        return None
    scope = await asyncio.to_thread(scope_for, get_context().engine, user_id=user.user_id, role=user.role)
    return user, scope


def apply_config_here() -> None:
    """The gateway in this process drops what it cached from the configuration (keys and their limits,
    prompts, export settings) now, not at its next refresh; other replicas hear it on Redis or refresh."""
    get_context().runtime.config_changed()


class KeysState(rx.State):
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    search: str = ""
    status: str = "all"
    error: str = ""
    notice: str = ""
    can_create: bool = False
    confirm_action: str = ""
    confirm_id: str = ""
    confirm_name: str = ""
    secret_title: str = ""
    new_secret: str = ""

    def _params(self) -> dict[str, str]:
        raw = dict(self.router.url.query_parameters)
        return {k: str(v)[:200] for k, v in raw.items() if k in ("q", "status", "page")}

    def _href(self, **changes: str) -> str:
        params = {"q": self.search, "status": "" if self.status == "all" else self.status, "page": ""}
        params |= changes
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{routes.KEYS}?{query}" if query else routes.KEYS

    async def _reload(self, scope: Scope) -> None:
        raw = self._params().get("page", "1")
        page = int(raw) if raw.isdigit() else 1
        data = await asyncio.to_thread(
            list_keys, get_context().engine, scope, search=self.search, status=self.status, page=page
        )
        self.rows, self.total, self.page, self.pages = present.rows(data), data.total, data.page, data.pages

    @rx.event
    @requires("viewer")
    async def load(self) -> Any:
        who = await caller(self, "viewer")
        if who is None:
            return rx.redirect(routes.LOGIN, replace=True)
        params = self._params()
        self.search = params.get("q", "").strip()
        self.status = params.get("status", "all") if params.get("status") in STATUSES else "all"
        self.can_create = has_role(who[0], "member")
        # A secret shown once never outlives the page it was shown on (nor a sign-out on the same tab).
        self.confirm_action = self.error = self.notice = self.new_secret = self.secret_title = ""
        await self._reload(who[1])
        return None

    @rx.event
    @requires("viewer")
    async def set_filter(self, name: str, value: str) -> Any:
        """Navigate to the list with the search or status changed (the URL is the state)."""
        if await caller(self, "viewer") is None or name not in ("q", "status"):
            return None
        return rx.redirect(self._href(**{name: str(value or "")[:200].strip(), "page": ""}))

    @rx.event
    @requires("viewer")
    async def search_keys(self, form: dict[str, Any]) -> Any:
        if await caller(self, "viewer") is None:
            return None
        return rx.redirect(self._href(q=str(form.get("q", "") or "")[:200].strip()))

    @rx.event
    @requires("viewer")
    async def goto_page(self, page: int) -> Any:
        if await caller(self, "viewer") is None or not str(page).isdigit():
            return None
        return rx.redirect(self._href(page=str(max(1, min(int(page), self.pages)))))

    @rx.event
    @requires("member")
    async def ask(self, action: str, key_id: str) -> None:
        """Open the confirmation for revoking or rotating a key shown on this page."""
        if await caller(self, "member") is None or action not in ACTIONS:
            return
        shown = next((r for r in self.rows if r["id"] == str(key_id)), None)
        if shown is not None:
            self.confirm_action, self.confirm_id, self.confirm_name = action, shown["id"], shown["name"]
            self.error = self.notice = ""

    @rx.event
    @requires("member")
    async def cancel(self, still_open: bool = False) -> None:
        if not still_open and await caller(self, "member") is not None:
            self.confirm_action = ""

    @rx.event
    @requires("member")
    async def confirm(self) -> None:
        """Revoke or rotate the key the confirmation names (the service checks the caller may)."""
        who = await caller(self, "member")
        action, key_id, self.confirm_action = self.confirm_action, self.confirm_id, ""
        if who is None or action not in ACTIONS or not key_id.isdigit():
            return
        user, scope = who
        engine = get_context().engine
        try:
            if action == "revoke":
                await asyncio.to_thread(revoke_key, engine, int(key_id), actor=user.email, scope=scope)
                self.notice = f"Revoked {self.confirm_name}."
            else:
                minted = await asyncio.to_thread(rotate_key, engine, int(key_id), scope=scope, actor=user.email)
                self.secret_title, self.new_secret = f"New secret for {self.confirm_name}", minted.secret
                self.notice = f"Rotated {self.confirm_name}: the old secret no longer works."
        except ValueError as exc:
            self.error = str(exc)
        apply_config_here()
        await self._reload(scope)

    @rx.event
    @requires("viewer")
    async def dismiss_secret(self, still_open: bool = False) -> None:
        """Forget the one-time secret once its dialog closes (for anyone: forgetting a secret is always safe)."""
        if not still_open:
            self.new_secret = self.secret_title = ""

    def _show_secret(self, title: str, secret: str) -> None:
        """Called by the create form (same socket) to show a new key's secret once."""
        self.secret_title, self.new_secret, self.error = title, secret, ""
