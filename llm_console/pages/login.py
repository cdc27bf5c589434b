"""Sign-in: the single sign-on button (a full-page link to the backend) and/or the password form, which
posts to the backend; both end with an httpOnly cookie set by the backend and a full page load."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.native_form import native_form
from llm_console.state.session import LoginState

OIDC_LOGIN = "/auth/oidc/login"


def sso_button() -> rx.Component:
    # A link styled as a button (never a button inside a link); reload_document so the backend route is hit.
    return rx.button(
        rx.link(
            rx.icon("key-round", size=18), LoginState.sso_label, href=OIDC_LOGIN, reload_document=True, underline="none"
        ),
        as_child=True,
        size="3",
        variant="soft",
        width="100%",
        id="sso-login",
    )


def password_form() -> rx.Component:
    return native_form(
        rx.vstack(
            rx.el.label("Email", html_for="email", font_size="14px"),
            rx.input(
                id="email",
                name="email",
                type="email",
                required=True,
                auto_complete="username",
                default_value=LoginState.email,
                width="100%",
                max_length=320,
            ),
            rx.el.label("Password", html_for="password", font_size="14px"),
            rx.input(
                id="password",
                name="password",
                type="password",
                required=True,
                auto_complete="current-password",
                width="100%",
                max_length=1024,
            ),
            rx.button("Sign in", type="submit", width="100%", size="3"),
            spacing="3",
            width="100%",
        ),
        action="/auth/login",
        method="post",
        width="100%",
    )


@rx.page(route=routes.LOGIN, title="Sign in · LLM Console", on_load=LoginState.load)
def login() -> rx.Component:
    return rx.el.main(
        rx.center(
            rx.card(
                rx.vstack(
                    rx.hstack(rx.icon("waypoints", size=22), rx.heading("LLM Console", size="6", as_="h1")),
                    rx.text("Sign in to the operator console.", color=rx.color("gray", 11)),
                    rx.cond(
                        LoginState.error != "",
                        rx.callout(
                            LoginState.error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"
                        ),
                    ),
                    rx.cond(LoginState.sso_enabled, sso_button()),
                    rx.cond(
                        LoginState.sso_enabled & LoginState.local_enabled,
                        rx.text(
                            "or with a local account",
                            size="2",
                            color=rx.color("gray", 11),
                            align="center",
                            width="100%",
                        ),
                    ),
                    rx.cond(LoginState.local_enabled, password_form()),
                    rx.cond(
                        ~LoginState.sso_enabled & ~LoginState.local_enabled,
                        rx.callout(
                            "No sign-in method is turned on: configure single sign-on (LLMC_OIDC_*) "
                            "or set LLMC_LOCAL_LOGIN_ENABLED=true.",
                            icon="info",
                            width="100%",
                        ),
                    ),
                    spacing="3",
                    width="100%",
                ),
                width="100%",
                max_width="380px",
                padding="24px",
            ),
            rx.box(rx.color_mode.button(aria_label="Toggle dark mode"), position="fixed", top="12px", right="12px"),
            min_height="100vh",
            padding="16px",
        )
    )
