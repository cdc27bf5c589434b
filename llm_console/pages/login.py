"""Sign-in: a plain form posted to the backend, which sets an httpOnly cookie and reloads the page."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.native_form import native_form
from llm_console.state.session import LoginState


@rx.page(route=routes.LOGIN, title="Sign in · LLM Console", on_load=LoginState.load)
def login() -> rx.Component:
    return rx.center(
        rx.card(
            native_form(
                rx.vstack(
                    rx.hstack(rx.icon("waypoints", size=22), rx.heading("LLM Console", size="6", as_="h1")),
                    rx.text("Sign in to the operator console.", color=rx.color("gray", 11)),
                    rx.cond(
                        LoginState.error != "",
                        rx.callout(
                            LoginState.error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"
                        ),
                    ),
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
            ),
            width="100%",
            max_width="380px",
            padding="24px",
        ),
        rx.box(rx.color_mode.button(aria_label="Toggle dark mode"), position="fixed", top="12px", right="12px"),
        min_height="100vh",
        padding="16px",
    )
