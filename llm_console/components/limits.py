"""Widgets of the Limits & budgets page: the usage tables (spend bars, status, rate limits), the table's
filters, the global default card and the admin's edit dialog. Names render as text, never as markup."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.catalog import scroll_table
from llm_console.components.filters import text_filter
from llm_console.components.forms import form_dialog, select_field, text_field
from llm_console.components.spend import budget_bar, spend_badge
from llm_console.components.spend import pager as spend_pager
from llm_console.components.spend_admin import spend_actions
from llm_console.components.tables import MUTED, WRAP
from llm_console.state.dashboard import ANY
from llm_console.state.limits import LimitsFormState, LimitsState
from llm_console.state.spend_admin import SpendAdminState

STATUS_ITEMS = [(ANY, "All"), ("warning", "Warning"), ("exceeded", "Exceeded")]
ENTITY_TYPES = [("user", "User (email)"), ("team", "Team (name)"), ("key", "Key (prefix or name)")]
LIMIT_INPUTS = [
    ("Requests / minute", "rpm"),
    ("Tokens / minute", "tpm"),
    ("Requests / day", "rpd"),
    ("Tokens / day", "tpd"),
]
BUDGET_INPUTS = [("Daily budget (USD)", "daily_usd"), ("Monthly budget (USD)", "monthly_usd")]


def limits_cell(r: rx.Var) -> rx.Component:
    """The rate limits that apply; a key without its own says they are the global default."""
    return rx.vstack(
        rx.text(r["limits"], size="2"),
        rx.cond(
            r["limits_source"] != "",
            rx.badge(r["limits_source"], variant="outline", color_scheme="gray", high_contrast=True, size="1"),
        ),
        rx.cond(
            r["tier"] != "", rx.text("Tier: ", r["tier"], size="1", color=MUTED, custom_attrs={"data-tier": r["tier"]})
        ),
        spacing="1",
    )


def budget_cell(r: rx.Var, period: str) -> rx.Component:
    """A budget bar, with what changed its figures (a reset this period, temporary increases) under it."""
    bar = budget_bar(r[f"{period}_text"], r[f"{period}_pct"].to(int), r[f"{period}_level"], r[f"{period}_aria"])
    note = r[f"{period}_note"]
    return rx.vstack(
        bar,
        rx.cond(note != "", rx.text(note, size="1", color=MUTED, custom_attrs={"data-note": period})),
        spacing="1",
    )


def usage_row(r: rx.Var, *, editable: bool) -> rx.Component:
    cells = [
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(r["name"], weight="medium"),
                rx.text(r["type_label"], size="1", color=MUTED),
                spacing="0",
            ),
            style=WRAP,
        ),
        rx.table.cell(spend_badge(r["status"], r["status_label"]), custom_attrs={"data-cell": "status"}),
        rx.table.cell(budget_cell(r, "day")),
        rx.table.cell(budget_cell(r, "month")),
        rx.table.cell(limits_cell(r)),
    ]
    if editable:
        cells.append(
            rx.table.cell(
                rx.hstack(
                    rx.cond(
                        LimitsState.can_edit,
                        rx.button(
                            "Edit",
                            size="1",
                            variant="soft",
                            on_click=LimitsFormState.open_edit(r["entity"]),
                            aria_label="Edit limits of " + r["name"].to(str),
                        ),
                    ),
                    spend_actions(r),
                    spacing="2",
                    wrap="wrap",
                )
            )
        )
    return rx.table.row(*cells, custom_attrs={"data-entity": r["entity"]})


def usage_table(rows: Any, table_id: str, *, editable: bool = False) -> rx.Component:
    headings = ["Name", "Status", LimitsState.day_label, LimitsState.month_label, "Rate limits"]
    if editable:
        headings.append("Actions")
    headers = [rx.table.column_header_cell(h) for h in headings]
    return scroll_table(table_id, headers, rows, lambda r: usage_row(r, editable=editable))


def heading_row(title: str, *extra: rx.Component) -> rx.Component:
    return rx.hstack(rx.heading(title, size="3", as_="h2"), rx.spacer(), *extra, width="100%", wrap="wrap")


def period_note() -> rx.Component:
    return rx.hstack(
        rx.text(
            "Daily budgets and limits reset at midnight ",
            LimitsState.timezone,
            ", monthly budgets on the 1st. Warning from 80% of a budget, Exceeded from 100%.",
            size="2",
            color=MUTED,
        ),
        rx.spacer(),
        rx.text("updated ", LimitsState.as_of, size="1", color=MUTED, id="limits-updated"),
        rx.button(rx.icon("refresh-cw", size=14), "Refresh", size="1", variant="soft", on_click=LimitsState.load),
        width="100%",
        align="center",
        wrap="wrap",
        spacing="3",
    )


def my_usage() -> rx.Component:
    return rx.card(
        rx.vstack(
            heading_row("My usage"),
            rx.text("Your account, your teams and the keys you can see.", size="2", color=MUTED),
            usage_table(LimitsState.mine, "my-usage"),
            width="100%",
        ),
        width="100%",
    )


def toolbar() -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text("Status", size="1", color=MUTED, id="limits-status-label"),
            rx.segmented_control.root(
                *[rx.segmented_control.item(label, value=value) for value, label in STATUS_ITEMS],
                value=rx.cond(LimitsState.status == "", ANY, LimitsState.status),
                on_change=lambda v: LimitsState.set_param("status", v),
                aria_labelledby="limits-status-label",
                size="1",
                id="limits-filter-status",
            ),
            spacing="1",
        ),
        text_filter(LimitsState, "q", "Search by name", LimitsState.search, placeholder="email, team or key"),
        rx.spacer(),
        rx.cond(
            LimitsState.can_edit,
            rx.button(rx.icon("plus", size=14), "Set limits", on_click=LimitsFormState.open_new, id="limits-new"),
        ),
        align="end",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


def pager() -> rx.Component:
    return spend_pager(LimitsState.page, LimitsState.pages, lambda n: LimitsState.set_param("page", n.to_string()))


def all_limits() -> rx.Component:
    return rx.card(
        rx.vstack(
            heading_row(
                "All limits & budgets",
                rx.text(LimitsState.summary, size="2", color=MUTED, id="limits-summary"),
            ),
            toolbar(),
            rx.cond(
                LimitsState.rows.length() > 0,
                rx.cond(
                    LimitsState.can_edit | SpendAdminState.allowed,
                    usage_table(LimitsState.rows, "all-limits", editable=True),
                    usage_table(LimitsState.rows, "all-limits"),
                ),
                rx.text("No user, team or key with a limit or a budget matches.", size="2", color=MUTED),
            ),
            pager(),
            width="100%",
        ),
        width="100%",
    )


def default_limits() -> rx.Component:
    return rx.card(
        rx.vstack(
            heading_row(
                "Global default rate limits",
                rx.cond(
                    LimitsState.can_edit,
                    rx.button(
                        "Edit",
                        size="1",
                        variant="soft",
                        on_click=LimitsFormState.open_edit("default:0"),
                        aria_label="Edit the global default rate limits",
                        id="default-edit",
                    ),
                ),
            ),
            rx.text(
                "Apply to every key that has no rate limits of its own; user and team limits apply as well.",
                size="2",
                color=MUTED,
            ),
            rx.text(LimitsState.default_text, size="2", weight="medium", id="default-limits"),
            width="100%",
        ),
        width="100%",
    )


def _number(label: str, name: str, **props: Any) -> rx.Component:
    return text_field(
        label,
        name,
        field_id=f"limits-{name.replace('_', '-')}",
        default_value=LimitsFormState.values[name],
        input_type="number",
        max_length=30,
        **props,
    )


def _entity_fields() -> rx.Component:
    """Which entity: fixed when editing a row, else a type and a name to look up."""
    return rx.cond(
        LimitsFormState.editing != "",
        rx.text(LimitsFormState.editing, weight="medium", id="limits-editing"),
        rx.grid(
            select_field(
                "Set limits on",
                "entity_type",
                ENTITY_TYPES,
                field_id="limits-entity-type",
                default_value=LimitsFormState.values["entity_type"],
            ),
            text_field("Email or name", "name", field_id="limits-name", required=True, max_length=320),
            columns="2",
            spacing="3",
            width="100%",
        ),
    )


def edit_dialog() -> rx.Component:
    is_default = LimitsFormState.mode == "default"
    return form_dialog(
        rx.cond(is_default, "Global default rate limits", "Rate limits and budget"),
        _entity_fields(),
        rx.grid(*[_number(label, name, min=1, step=1) for label, name in LIMIT_INPUTS], columns="2", spacing="3"),
        rx.cond(
            is_default,
            rx.fragment(),
            rx.grid(
                *[_number(label, name, min=0, step="any") for label, name in BUDGET_INPUTS], columns="2", spacing="3"
            ),
        ),
        rx.cond(
            LimitsFormState.editing != "",
            rx.button(
                "Remove all limits",
                type="button",
                variant="soft",
                color_scheme="red",
                on_click=LimitsFormState.clear,
                id="limits-clear",
            ),
        ),
        is_open=LimitsFormState.open,
        on_open_change=LimitsFormState.close,
        on_submit=LimitsFormState.submit,
        error=LimitsFormState.error,
        submit_id="limits-save",
        description="Empty fields mean no limit; saving replaces what was set. Changes apply to the next requests.",
        dialog_id="limits-dialog",
    )
