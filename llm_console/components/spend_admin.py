"""Spend administration widgets on the Limits page: a row's reset and raise buttons, the reset, raise and
revoke dialogs, and the lists of active budget increases and recent resets. Names and reasons render as text."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.catalog import column_headers, scroll_table
from llm_console.components.forms import form_dialog, select_field, text_field
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section
from llm_console.state.spend_admin import SpendAdminState

PERIODS = [("day", "Today's budget"), ("month", "This month's budget")]


def _hidden(name: str, value: Any) -> rx.Component:
    return rx.el.input(type="hidden", name=name, value=value)


def _reason() -> rx.Component:
    return text_field(
        "Reason (kept in the audit log)",
        "reason",
        field_id="spend-reason",
        required=True,
        max_length=500,
        hint="3 to 500 characters: why, and who asked.",
    )


def spend_dialogs() -> rx.Component:
    A = SpendAdminState
    common = {"on_open_change": A.close, "error": A.error}
    return rx.fragment(
        form_dialog(
            "Reset spend of " + A.target,
            _hidden("entity", A.entity),
            select_field("Which budget", "period", PERIODS, field_id="spend-period", default_value="day"),
            _reason(),
            is_open=A.dialog == "reset",
            on_submit=A.submit_reset,
            submit_id="spend-reset-save",
            submit_label="Reset spend",
            description="The budget counts again from now to the end of this period; costs and logs stay as they are.",
            dialog_id="spend-reset-dialog",
            **common,
        ),
        form_dialog(
            "Raise the budget of " + A.target,
            _hidden("entity", A.entity),
            select_field("Which budget", "period", PERIODS, field_id="spend-period", default_value="day"),
            rx.grid(
                text_field(
                    "Amount (USD)",
                    "amount",
                    field_id="spend-amount",
                    input_type="number",
                    required=True,
                    min=0,
                    step="any",
                ),
                text_field(
                    "For (hours)",
                    "hours",
                    field_id="spend-hours",
                    input_type="number",
                    required=True,
                    default_value="1",
                    min=0,
                    step="any",
                ),
                columns="2",
                spacing="3",
                width="100%",
            ),
            _reason(),
            is_open=A.dialog == "raise",
            on_submit=A.submit_raise,
            submit_id="spend-raise-save",
            submit_label="Raise budget",
            description="Added to the budget until it expires by itself; revoke it to end it early.",
            dialog_id="spend-raise-dialog",
            **common,
        ),
        form_dialog(
            "Revoke " + A.target,
            _hidden("entity", A.entity),
            _reason(),
            is_open=A.dialog == "revoke",
            on_submit=A.submit_revoke,
            submit_id="spend-revoke-save",
            submit_label="Revoke",
            description="The budget goes back to its value without this increase at the next request.",
            dialog_id="spend-revoke-dialog",
            **common,
        ),
    )


def spend_actions(r: rx.Var) -> rx.Component:
    """A row's reset and raise buttons, for those allowed and rows with a budget."""
    name = r["name"].to(str)
    return rx.cond(
        SpendAdminState.allowed & (r["budgeted"] != ""),
        rx.hstack(
            rx.button(
                "Reset spend",
                size="1",
                variant="soft",
                color_scheme="amber",
                on_click=SpendAdminState.open_reset(r["entity"], r["name"]),
                aria_label="Reset spend of " + name,
            ),
            rx.button(
                "Raise budget",
                size="1",
                variant="soft",
                on_click=SpendAdminState.open_raise(r["entity"], r["name"]),
                aria_label="Raise the budget of " + name,
            ),
            spacing="2",
        ),
    )


def _increase_row(r: rx.Var) -> rx.Component:
    label = "the increase of " + r["name"].to(str)
    return rx.table.row(
        rx.table.row_header_cell(r["name"], style=WRAP),
        *[rx.table.cell(r[k], custom_attrs={"data-cell": k}) for k in ("period", "amount", "expires", "actor")],
        rx.table.cell(r["reason"], style=WRAP),
        rx.table.cell(
            rx.button(
                "Revoke",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=SpendAdminState.ask_revoke(r["id"], label),
                aria_label="Revoke " + label,
            )
        ),
        custom_attrs={"data-increase": r["id"], "data-entity": r["entity"]},
    )


def _reset_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(r["name"], style=WRAP),
        *[rx.table.cell(r[k], custom_attrs={"data-cell": k}) for k in ("period", "when", "spent_before", "actor")],
        rx.table.cell(r["reason"], style=WRAP),
        custom_attrs={"data-reset": r["id"], "data-entity": r["entity"]},
    )


def spend_admin() -> rx.Component:
    """Active temporary increases (revocable) and recent resets, each with who, when and why."""
    A = SpendAdminState
    increases = scroll_table(
        "active-increases",
        column_headers("Holder", "Budget", "Added", "Expires", "By", "Reason", "Actions"),
        A.increases,
        _increase_row,
    )
    resets = scroll_table(
        "recent-resets",
        column_headers("Holder", "Period", "Reset at", "Counted before", "By", "Reason"),
        A.resets,
        _reset_row,
    )
    muted = {"size": "2", "color": MUTED}
    return rx.cond(
        A.allowed,
        section(
            "Spend administration",
            rx.heading("Active budget increases", size="2", as_="h3"),
            rx.cond(A.increases.length() > 0, increases, rx.text("No temporary increase is active.", **muted)),
            rx.heading("Recent spend resets", size="2", as_="h3"),
            rx.cond(A.resets.length() > 0, resets, rx.text("No spend was reset yet.", **muted)),
            id="spend-admin",
        ),
    )
