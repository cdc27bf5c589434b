"""Who is signed in, for the page shell; and the login page's options and message."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.auth.guard import current_user
from llm_console.auth.roles import ROLE_RANK
from llm_console.services.context import get_context

SSO_ADVICE = "try again, or ask an administrator."
# Keyed by the `?error=` codes the auth routes send; anything else shows nothing (no text is echoed back).
LOGIN_ERRORS = {
    "invalid": "Wrong email or password.",
    "expired": "Your session has ended; sign in again.",
    "local_disabled": "Password sign-in is turned off; use single sign-on.",
    "oidc_disabled": "Single sign-on is not configured.",
    "oidc_unavailable": "The identity provider cannot be reached or is misconfigured; " + SSO_ADVICE,
    "oidc_state": "That sign-in attempt expired or was started in another browser; sign in again.",
    "oidc_denied": "The identity provider did not sign you in.",
    "oidc_failed": "Single sign-on failed: the identity provider's answer could not be verified; " + SSO_ADVICE,
    "oidc_no_role": "Your identity provider groups give you no role in this console; ask an administrator.",
    "oidc_no_account": "There is no console account for you yet; ask an administrator for an invitation.",
    "oidc_no_email": "The identity provider sent no email address, which a new account needs; ask an administrator.",
    "oidc_unlinked": (
        "An account with your email already exists, but it could not be linked safely (the identity provider "
        "did not confirm the email, or the account is linked to another sign-in); ask an administrator."
    ),
    "oidc_inactive": "This account is disabled; ask an administrator.",
    "oidc_service": "Service accounts cannot sign in to the console.",
}


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
    """Public: shows which sign-in methods are on and the message for an `?error=` code."""

    error: str = ""
    email: str = ""
    sso_enabled: bool = False
    sso_label: str = ""
    local_enabled: bool = True

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        if await current_user(self) is not None:
            return rx.redirect(routes.OVERVIEW, replace=True)
        settings = get_context().settings
        self.sso_enabled = settings.oidc_enabled
        self.sso_label = settings.oidc_display_name[:80]
        self.local_enabled = settings.local_login_enabled
        params = self.router.url.query_parameters
        self.error = LOGIN_ERRORS.get(str(params.get("error", "")), "")
        self.email = str(params.get("email", ""))[:320]
        return None
