"""Telemetry page widgets: a sink's status card (badge, facts, test result) and its settings dialog."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.forms import LABEL_CLASS, check_field, form_dialog, secret_field, text_field
from llm_console.components.tables import MUTED, WRAP
from llm_console.state.telemetry import TelemetryState as S

KEEP = "set — leave empty to keep"


def sink_badge(card: Any) -> rx.Component:
    """Connected green, Error red, Waiting for data amber, Off grey."""
    return rx.badge(
        card["label"],
        color_scheme=rx.match(card["state"], ("ok", "green"), ("error", "red"), ("waiting", "amber"), "gray"),
        variant="soft",
        high_contrast=True,
        size="2",
        class_name="sink-status",
    )


def facts(card: Any, rows: list[tuple[str, str]]) -> rx.Component:
    """Label and value pairs as a description list (read as pairs by screen readers)."""
    return rx.data_list.root(
        *[
            rx.data_list.item(
                rx.data_list.label(label, min_width="150px"),
                rx.data_list.value(card[key], style=WRAP, custom_attrs={"data-fact": key}),
            )
            for label, key in rows
        ],
        size="2",
        width="100%",
    )


STATUS_FACTS = [
    ("Last export", "last_export"),
    ("Last error", "last_error"),
    ("Exported", "exported"),
    ("Dropped", "dropped"),
]
SETTING_FACTS = [
    ("Enabled", "enabled"),
    ("Request and response bodies", "bodies"),
    ("Sample rate", "sample"),
    ("Settings from", "source"),
]


def _test_result(sink: str) -> rx.Component:
    result, ok = S.test_result, S.test_result["ok"] == "true"
    return rx.cond(
        result["sink"] == sink,
        rx.callout(
            "Test: " + result["message"].to(str),
            icon=rx.cond(ok, "circle-check", "triangle-alert"),
            color_scheme=rx.cond(ok, "green", "red"),
            role=rx.cond(ok, "status", "alert"),
            size="1",
            width="100%",
            id=f"{sink}-test-result",
        ),
    )


def sink_card(sink: str, title: str, about: str, card: Any, settings: list[tuple[str, str]]) -> rx.Component:
    """One sink: its status and counts for everyone who may see the page; Edit and Send test for admins."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(title, size="3", as_="h2"),
                sink_badge(card),
                rx.spacer(),
                rx.cond(
                    S.can_edit,
                    rx.hstack(
                        rx.button(
                            "Send test",
                            on_click=S.send_test(sink),
                            loading=S.testing == sink,
                            variant="soft",
                            id=f"{sink}-test",
                            aria_label=f"Send test to {title}",
                        ),
                        rx.button("Edit", on_click=S.edit(sink), id=f"{sink}-edit", aria_label=f"Edit {title}"),
                        spacing="2",
                    ),
                ),
                width="100%",
                align="center",
                wrap="wrap",
            ),
            rx.text(about, size="2", color=MUTED),
            _test_result(sink),
            rx.heading("Status", size="2", as_="h3"),
            facts(card, STATUS_FACTS),
            rx.heading("Settings", size="2", as_="h3"),
            facts(card, settings + SETTING_FACTS),
            width="100%",
            spacing="3",
        ),
        width="100%",
        id=f"{sink}-card",
        custom_attrs={"data-state": card["state"]},
    )


def _switch(field_id: str) -> rx.Component:
    return rx.hstack(
        rx.switch(id=field_id, name="enabled", default_checked=S.form["enabled"] == "true"),
        rx.el.label("Export enabled", html_for=field_id, class_name=LABEL_CLASS),
        spacing="2",
        align="center",
    )


def _common_fields(sink: str) -> list[rx.Component]:
    return [
        check_field(
            "Include request and response bodies",
            "include_bodies",
            field_id=f"{sink}-include-bodies",
            default_checked=S.form["include_bodies"] == "true",
            hint="Off: only metadata (model, tokens, cost, latency, status, user and tags) leaves the gateway.",
        ),
        text_field(
            "Sample rate",
            "sample_rate",
            field_id=f"{sink}-sample-rate",
            default_value=S.form["sample_rate"],
            input_type="number",
            step="any",
            min=0,
            max=1,
            required=True,
            hint="The share of requests exported, from 0 to 1 (1 exports every request).",
        ),
    ]


def langfuse_dialog() -> rx.Component:
    return form_dialog(
        "Langfuse export",
        _switch("langfuse-enabled"),
        text_field(
            "Host",
            "target",
            field_id="langfuse-host",
            default_value=S.form["target"],
            input_type="url",
            placeholder="https://cloud.langfuse.com",
            max_length=1000,
            hint="The Langfuse server's base URL; traces go to its OpenTelemetry endpoint.",
        ),
        text_field(
            "Public key",
            "public_key",
            field_id="langfuse-public-key",
            default_value=S.form["public_key"],
            placeholder="pk-lf-…",
        ),
        secret_field(
            "Secret key",
            "secret_key",
            field_id="langfuse-secret-key",
            placeholder=rx.cond(S.form["secret_set"] == "true", KEEP, "sk-lf-…"),
            hint="Stored encrypted and never shown again.",
        ),
        *_common_fields("langfuse"),
        is_open=S.form_open == "langfuse",
        on_open_change=S.close_form,
        on_submit=S.save_langfuse,
        error=S.form_error,
        submit_id="langfuse-save",
        dialog_id="langfuse-dialog",
        description="Send a trace of every exported request to a Langfuse project.",
    )


def otlp_dialog() -> rx.Component:
    return form_dialog(
        "OpenTelemetry export (OTLP/HTTP)",
        _switch("otlp-enabled"),
        text_field(
            "Endpoint",
            "target",
            field_id="otlp-endpoint",
            default_value=S.form["target"],
            input_type="url",
            placeholder="http://otel-collector:4318",
            max_length=1000,
            hint="The collector's OTLP/HTTP address; traces are POSTed to its /v1/traces.",
        ),
        secret_field(
            "Headers",
            "headers",
            field_id="otlp-headers",
            placeholder=rx.cond(S.form["secret_set"] == "true", KEEP, "Authorization=Bearer …"),
            hint="name=value pairs, comma-separated (as in OTEL_EXPORTER_OTLP_HEADERS); stored encrypted and "
            "never shown again.",
        ),
        rx.cond(
            S.form["secret_set"] == "true",
            check_field("Remove the stored headers", "clear_headers", field_id="otlp-clear-headers"),
        ),
        text_field(
            "Service name",
            "service_name",
            field_id="otlp-service-name",
            default_value=S.form["service_name"],
            max_length=200,
            hint="The service.name resource attribute of every span.",
        ),
        *_common_fields("otlp"),
        is_open=S.form_open == "otlp",
        on_open_change=S.close_form,
        on_submit=S.save_otlp,
        error=S.form_error,
        submit_id="otlp-save",
        dialog_id="otlp-dialog",
        description="Send spans to any OpenTelemetry collector or backend that speaks OTLP/HTTP.",
    )
