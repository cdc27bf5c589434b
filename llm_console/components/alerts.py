"""Alerts page widgets: the rules table, the fired-events table with its pager, the rule form and delete confirm."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.forms import check_field, confirm_dialog, form_dialog, labelled, secret_field, text_field
from llm_console.components.tables import MUTED, WRAP
from llm_console.presenters.alerts import KIND_OPTIONS, PERCENTILE_OPTIONS
from llm_console.state.alerts import AlertsState

RULE_COLUMNS = ["Name", "Kind", "Condition", "Watches", "Channels", "Cool-down", "Enabled", "Actions"]
EVENT_COLUMNS = ["First seen (UTC)", "Rule", "Subject", "State", "Value", "Last seen", "Resolved", "Delivery"]
TRAFFIC = ("error_rate", "latency")


def _button(label: str, on_click: Any, name: Any, **props: Any) -> rx.Component:
    return rx.button(label, on_click=on_click, size="1", variant="soft", aria_label=f"{label} " + name.to(str), **props)


def rule_row(r: Any) -> rx.Component:
    on = r["enabled"] == "true"
    return rx.table.row(
        rx.table.cell(r["name"], style=WRAP),
        rx.table.cell(r["kind"]),
        rx.table.cell(r["condition"], style=WRAP),
        rx.table.cell(r["scope"], style=WRAP),
        rx.table.cell(r["channels"], style=WRAP),
        rx.table.cell(r["cooldown"]),
        rx.table.cell(
            rx.switch(
                checked=on,
                on_change=lambda v: AlertsState.toggle(r["id"], v),
                aria_label="Rule enabled: " + r["name"].to(str),
            )
        ),
        rx.table.cell(
            rx.hstack(
                _button("Edit", AlertsState.edit_rule(r["id"]), r["name"]),
                _button("Send test", AlertsState.send_test(r["id"]), r["name"], loading=AlertsState.testing == r["id"]),
                _button("Delete", AlertsState.ask_delete(r["id"]), r["name"], color_scheme="red"),
                spacing="2",
                wrap="wrap",
            )
        ),
        custom_attrs={"data-rule": r["name"]},
    )


def _table(columns: list[str], rows: Any, row: Any, table_id: str) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in columns])),
            rx.table.body(rx.foreach(rows, row)),
            variant="surface",
            size="1",
            width="100%",
            id=table_id,
        ),
        overflow_x="auto",
        width="100%",
    )


def rules_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Rules", size="3", as_="h2"),
                rx.spacer(),
                rx.button("Add rule", on_click=AlertsState.new_rule, id="add-rule"),
                width="100%",
                align="center",
            ),
            rx.text(
                "Each rule watches budgets, error rates, latency or deployment health, opens one event per "
                "subject while its condition holds, and notifies at most once per cool-down.",
                size="2",
                color=MUTED,
            ),
            rx.cond(
                ~AlertsState.smtp_ready,
                rx.text("E-mail is off until LLMC_SMTP_HOST is set; webhooks work without it.", size="2", color=MUTED),
            ),
            rx.cond(
                AlertsState.rules.length() > 0,
                _table(RULE_COLUMNS, AlertsState.rules, rule_row, "alert-rules-table"),
                rx.text("No alert rules yet.", color=MUTED, size="2"),
            ),
            width="100%",
        ),
        width="100%",
    )


def state_badge(state: Any) -> rx.Component:
    return rx.badge(
        state,
        color_scheme=rx.match(state, ("firing", "red"), ("pending", "amber"), "green"),
        variant="soft",
        high_contrast=True,
    )


def event_row(e: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(e["first_seen"]),
        rx.table.cell(e["rule"], rx.text(e["kind"], size="1", color=MUTED), style=WRAP),
        rx.table.cell(e["subject"], rx.text(e["message"], size="1", color=MUTED), style=WRAP, max_width="420px"),
        rx.table.cell(state_badge(e["state"])),
        rx.table.cell(e["value"]),
        rx.table.cell(e["last_seen"]),
        rx.table.cell(e["resolved"]),
        rx.table.cell(rx.text(e["delivery"], size="1"), style=WRAP, max_width="320px"),
        custom_attrs={"data-event": e["id"]},
    )


def events_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("What fired", size="3", as_="h2"),
                rx.badge(AlertsState.open_count.to(str) + " open", variant="soft", id="open-alerts"),
                rx.spacer(),
                rx.button(
                    "Newest",
                    on_click=AlertsState.first_page,
                    disabled=AlertsState.cursor == "",
                    variant="soft",
                    size="1",
                ),
                rx.button(
                    "Older",
                    on_click=AlertsState.next_page,
                    disabled=AlertsState.next_cursor == "",
                    variant="soft",
                    size="1",
                ),
                width="100%",
                align="center",
            ),
            rx.cond(
                AlertsState.events.length() > 0,
                _table(EVENT_COLUMNS, AlertsState.events, event_row, "alert-events-table"),
                rx.text("Nothing has fired yet.", color=MUTED, size="2"),
            ),
            width="100%",
        ),
        width="100%",
    )


def _select(label: str, name: str, field_id: str, options: Any, **props: Any) -> rx.Component:
    items = (
        [rx.select.item(text, value=value) for value, text in options]
        if isinstance(options, list)
        else [rx.foreach(options, lambda o: rx.select.item(o["label"], value=o["value"]))]
    )
    control = rx.select.root(
        rx.select.trigger(id=field_id, width="100%"), rx.select.content(*items), name=name, **props
    )
    return labelled(label, control, field_id=field_id)


def _number(label: str, name: str, field_id: str, hint: str = "", **props: Any) -> rx.Component:
    f = AlertsState.form
    return text_field(label, name, field_id=field_id, default_value=f[name], input_type="number", hint=hint, **props)


def rule_dialog() -> rx.Component:
    f, kind = AlertsState.form, AlertsState.form_kind
    traffic = (kind == "error_rate") | (kind == "latency")
    return form_dialog(
        rx.cond(f["id"] != "", "Edit alert rule", "Add alert rule"),
        text_field("Name", "name", field_id="rule-name", default_value=f["name"], required=True, max_length=200),
        _select("Kind", "kind", "rule-kind", KIND_OPTIONS, value=kind, on_change=AlertsState.choose_kind),
        rx.cond(
            traffic,
            rx.hstack(
                _number(
                    rx.cond(kind == "latency", "Threshold (ms)", "Threshold (% of requests failing)"),  # type: ignore[arg-type]
                    "threshold",
                    "rule-threshold",
                    step="any",
                    min=0,
                ),
                rx.cond(
                    kind == "latency",
                    _select(
                        "Percentile", "percentile", "rule-percentile", PERCENTILE_OPTIONS, default_value=f["percentile"]
                    ),
                ),
                width="100%",
                align="start",
            ),
        ),
        rx.cond(
            traffic | (kind == "deployment_down"),
            rx.hstack(
                _number(
                    rx.cond(kind == "deployment_down", "Down for at least (min)", "Window (min)"),  # type: ignore[arg-type]
                    "window_minutes",
                    "rule-window",
                    min=0,
                    max=1440,
                ),
                rx.cond(traffic, _number("Minimum requests", "min_requests", "rule-min-requests", min=1)),
                width="100%",
                align="start",
            ),
        ),
        rx.hstack(
            rx.box(
                _select(
                    "Watches",
                    "scope_type",
                    "rule-scope-type",
                    AlertsState.scope_choices,
                    default_value=f["scope_type"],
                    key=kind,
                ),
                width="40%",
            ),
            text_field(
                "Which one",
                "scope_value",
                field_id="rule-scope-value",
                default_value=f["scope_value"],
                hint="A name or id; empty: each one separately.",
            ),
            width="100%",
            align="start",
        ),
        secret_field(
            "Webhook URL (Slack-compatible)",
            "webhook_url",
            field_id="rule-webhook",
            placeholder=rx.cond(
                f["has_webhook"] != "", f["webhook"] + " is stored: leave empty to keep it", "Optional"
            ),
            hint="Stored encrypted and shown only masked.",
        ),
        rx.cond(
            f["has_webhook"] != "",
            check_field("Remove the stored webhook", "clear_webhook", field_id="rule-clear-webhook"),
        ),
        text_field(
            "E-mail recipients",
            "email_to",
            field_id="rule-email",
            default_value=f["email_to"],
            max_length=4000,
            hint="Comma-separated addresses; optional.",
        ),
        _number(
            "Cool-down (min)",
            "cooldown_minutes",
            "rule-cooldown",
            "At most one message per this while it holds.",
            min=1,
        ),
        check_field(
            "Also notify when it resolves",
            "notify_resolved",
            field_id="rule-notify-resolved",
            default_checked=f["notify_resolved"] != "",
        ),
        is_open=AlertsState.form_open,
        on_open_change=AlertsState.close_form,
        on_submit=AlertsState.save_rule,
        error=AlertsState.form_error,
        submit_id="rule-save",
        dialog_id="rule-dialog",
    )


def delete_dialog() -> rx.Component:
    return confirm_dialog(
        "Delete alert rule " + AlertsState.confirm["name"].to(str) + "?",
        "Its events are deleted with it.",
        is_open=AlertsState.confirm_open,
        on_confirm=AlertsState.confirm_delete,
        on_cancel=AlertsState.cancel_delete,
        confirm_label="Delete",
        confirm_id="confirm-delete-rule",
    )
