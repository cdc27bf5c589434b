"""The public invite page (no console shell): whom the invitation is for, and a plain form that creates the account.

The form posts to /auth/invite/accept, which sets the httpOnly session cookie and opens the console.
"""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.native_form import native_form
from llm_console.state.invite import InviteState


def account_form() -> rx.Component:
    return native_form(
        rx.vstack(
            rx.text("You are invited as ", rx.text.strong(InviteState.role), " with the email", size="2"),
            rx.code(InviteState.email, id="invite-email-shown", size="2", variant="ghost"),
            rx.el.input(type="hidden", name="token", default_value=InviteState.token),
            rx.el.label("Your name", html_for="name", font_size="14px"),
            rx.input(id="name", name="name", auto_complete="name", width="100%", max_length=200),
            rx.el.label("Password (at least 8 characters)", html_for="password", font_size="14px"),
            rx.input(
                id="password",
                name="password",
                type="password",
                required=True,
                min_length=8,
                max_length=1024,
                auto_complete="new-password",
                width="100%",
            ),
            rx.button("Create account", type="submit", width="100%", size="3"),
            spacing="3",
            width="100%",
        ),
        action="/auth/invite/accept",
        method="post",
    )


@rx.page(route=routes.INVITE, title="Accept invitation · LLM Console", on_load=InviteState.load)
def invite() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("waypoints", size=22), rx.heading("LLM Console", size="6", as_="h1")),
                rx.cond(
                    InviteState.error != "",
                    rx.callout(
                        InviteState.error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"
                    ),
                ),
                rx.cond(InviteState.valid, account_form()),
                rx.link("Sign in instead", href=routes.LOGIN, size="2"),
                spacing="3",
                width="100%",
            ),
            width="100%",
            max_width="420px",
            padding="24px",
        ),
        rx.box(rx.color_mode.button(aria_label="Toggle dark mode"), position="fixed", top="12px", right="12px"),
        min_height="100vh",
        padding="16px",
    )
