"""Who is signed in, for the page shell; and the login page's message."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.auth.guard import current_user
from llm_console.auth.roles import ROLE_RANK

LOGIN_ERRORS = {"invalid": "Wrong email or password.", "expired": "Your session has ended; sign in again."}


class SessionState(rx.State):
    """Public: it only reads the caller's own session and sends strangers to the login page."""

    email: str = ""
    role: str = ""
    rank: int = -1  # the role's rank, for showing only the pages this user may open

    @rx.event
    async def check(self) -> rx.event.EventSpec | None:
        user = await current_user(self)
        if user is None:
            return rx.redirect(routes.LOGIN, replace=True)
        self.email, self.role, self.rank = user.email, user.role, ROLE_RANK.get(user.role, -1)
        return None


class LoginState(rx.State):
    error: str = ""
    email: str = ""

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        if await current_user(self) is not None:
            return rx.redirect(routes.OVERVIEW, replace=True)
        params = self.router.url.query_parameters
        self.error = LOGIN_ERRORS.get(str(params.get("error", "")), "")
        self.email = str(params.get("email", ""))[:320]
        return None
