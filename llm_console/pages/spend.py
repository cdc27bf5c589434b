"""Spend by user: today and this month against each user's budgets, worst first."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import export_buttons, filter_errors, text_filter
from llm_console.components.layout import console_page
from llm_console.components.limits import budget_cell
from llm_console.components.spend import pager, spend_badge
from llm_console.state.spend import SpendState

STATUS_ITEMS = [("all", "All"), ("warning", "Warning"), ("exceeded", "Exceeded")]


def toolbar() -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text("Status", size="1", color=rx.color("gray", 11), id="status-label"),
            rx.segmented_control.root(
                *[rx.segmented_control.item(label, value=value) for value, label in STATUS_ITEMS],
                value=rx.cond(SpendState.status == "", "all", SpendState.status),
                on_change=lambda v: SpendState.set_param("status", v),
                aria_labelledby="status-label",
                size="1",
                id="filter-status",
            ),
            spacing="1",
        ),
        text_filter(SpendState, "q", "Search by email", SpendState.search, placeholder="name@company", width="220px"),
        rx.spacer(),
        export_buttons(SpendState),
        rx.text("updated ", SpendState.as_of, size="1", color=rx.color("gray", 11)),
        align="end",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


def user_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.link(r["email"], href=f"{routes.LOGS}?user=" + r["id"].to(str))),
        rx.table.cell(spend_badge(r["status"], r["status_label"])),
        rx.table.cell(budget_cell(r, "day")),
        rx.table.cell(budget_cell(r, "month")),
    )


def users_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("User"),
                    rx.table.column_header_cell("Status"),
                    rx.table.column_header_cell("Today (", SpendState.timezone, ")"),
                    rx.table.column_header_cell("This month (", SpendState.timezone, ")"),
                )
            ),
            rx.table.body(rx.foreach(SpendState.rows, user_row)),
            variant="surface",
            size="1",
            width="100%",
            id="spend-users",
        ),
        overflow_x="auto",
        width="100%",
    )


@console_page(routes.SPEND, "Spend by user", on_load=[SpendState.load])
def spend() -> rx.Component:
    return rx.vstack(
        toolbar(),
        filter_errors(SpendState),
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading("Users", size="3", as_="h2"),
                    rx.spacer(),
                    rx.text(SpendState.summary, size="2", color=rx.color("gray", 11), id="spend-summary"),
                    width="100%",
                    wrap="wrap",
                ),
                rx.cond(
                    SpendState.rows.length() > 0,
                    users_table(),
                    rx.text("No users match these filters.", size="2", color=rx.color("gray", 11)),
                ),
                pager(SpendState.page, SpendState.pages, lambda n: SpendState.set_param("page", n.to_string())),
                width="100%",
            ),
            width="100%",
        ),
        spacing="4",
        width="100%",
    )
