"""Telemetry export: Langfuse and OpenTelemetry (OTLP/HTTP) settings and whether traces get through."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.auth.roles import ROLE_RANK
from llm_console.components.forms import form_error, form_notice
from llm_console.components.layout import console_page
from llm_console.components.tables import MUTED
from llm_console.components.telemetry import langfuse_dialog, otlp_dialog, sink_card
from llm_console.state.session import SessionState
from llm_console.state.telemetry import REFUSED, VIEWER
from llm_console.state.telemetry import TelemetryState as S

LANGFUSE_SETTINGS = [("Host", "target"), ("Public key", "public_key"), ("Secret key", "secret")]
OTLP_SETTINGS = [("Endpoint", "target"), ("Headers", "headers"), ("Service name", "service_name")]


@console_page(routes.TELEMETRY, "Telemetry export", on_load=[S.load])
def page() -> rx.Component:
    return rx.vstack(
        # The guard drops a viewer's events before any handler runs, so the refusal is said here.
        rx.cond(
            (SessionState.rank >= 0) & (SessionState.rank < ROLE_RANK[VIEWER]),
            rx.callout(REFUSED, icon="lock", color_scheme="amber", role="alert", size="1", id="telemetry-refused"),
        ),
        form_error(S.error, id="telemetry-error"),
        form_notice(S.notice, id="telemetry-notice"),
        rx.cond(
            S.langfuse.contains("state"),
            rx.vstack(
                rx.text(
                    "The gateway can send a trace of each request to Langfuse and to any OpenTelemetry collector, "
                    "in the background: an unreachable sink drops traces (counted below), never slows a call.",
                    size="2",
                    color=MUTED,
                ),
                rx.cond(
                    ~S.can_edit,
                    rx.text("Read-only: admins change these settings.", size="2", color=MUTED, id="telemetry-ro"),
                ),
                rx.grid(
                    sink_card(
                        "langfuse",
                        "Langfuse",
                        "Traces with their generations, tokens, cost and user, in a Langfuse project.",
                        S.langfuse,
                        LANGFUSE_SETTINGS,
                    ),
                    sink_card(
                        "otlp",
                        "OpenTelemetry (OTLP/HTTP)",
                        "One span per request with the GenAI semantic-convention attributes.",
                        S.otlp,
                        OTLP_SETTINGS,
                    ),
                    columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="4",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        rx.cond(S.can_edit, rx.fragment(langfuse_dialog(), otlp_dialog())),
        spacing="4",
        width="100%",
    )
