"""The public invite page: whom the invitation in the URL is for and the role it grants, or why it cannot be used.

`load` runs without a session (the invitee has no account yet), so it reveals nothing but the email and role
of the one invitation whose token the browser already holds.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from llm_console.services.context import get_context
from llm_console.services.invitations import MAX_TOKEN, MESSAGES, InvitationError, lookup


class InviteState(rx.State):
    token: str = ""
    email: str = ""
    role: str = ""
    valid: bool = False
    error: str = ""

    @rx.event
    async def load(self) -> None:
        """Public (see auth/guard.public_events): answers only for the token in this page's own URL."""
        params = self.router.url.query_parameters
        token = str(params.get("token", ""))
        self.token, self.email, self.role, self.valid = "", "", "", False
        code = str(params.get("error", ""))[:20]
        self.error = MESSAGES.get(code, "") if code else ""
        if not token or len(token) > MAX_TOKEN:
            self.error = self.error or MESSAGES["invalid"]
            return
        try:
            info = await asyncio.to_thread(lookup, get_context().engine, token)
        except InvitationError as exc:
            self.error = str(exc)
            return
        self.token, self.email, self.role, self.valid = token, info.email, info.role, True
