"""Server-paginated, display-only tables: the state hands over at most one page of formatted rows."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.widgets import status_badge

WRAP = {"overflow_wrap": "anywhere"}  # long names (emails, key labels) wrap instead of making the table scroll
MUTED = rx.color("gray", 11)  # secondary text in cells and captions


def data_table(rows: Any, columns: list[tuple[str, str]], *, table_id: str = "", link: Any = None) -> rx.Component:
    """`columns` are (row key, header). A "status" key renders as a badge; `link(row)` makes the first cell a link."""

    def cell(row: Any, key: str, first: bool) -> rx.Component:
        if key == "status":
            return rx.table.cell(status_badge(row[key]))
        if first and link is not None:
            return rx.table.cell(rx.link(row[key], href=link(row)), style=WRAP)
        return rx.table.cell(row[key], style=WRAP if first else {})

    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for _, h in columns])),
            rx.table.body(
                rx.foreach(rows, lambda r: rx.table.row(*[cell(r, k, i == 0) for i, (k, _) in enumerate(columns)]))
            ),
            variant="surface",
            size="1",
            width="100%",
            id=table_id or None,
        ),
        overflow_x="auto",
        width="100%",
    )


def empty_or(rows: Any, table: rx.Component, message: str) -> rx.Component:
    return rx.cond(rows.length() > 0, table, rx.text(message, color=rx.color("gray", 11), size="2"))
