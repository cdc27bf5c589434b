"""Deployment health: a status badge and the model-by-deployment matrix (last check and last error per cell)."""

from __future__ import annotations

from typing import Any

import reflex as rx

# At most two lines of the last error in a cell; the whole text is in the tooltip.
CLAMP = {"display": "-webkit-box", "WebkitLineClamp": "2", "WebkitBoxOrient": "vertical", "overflow": "hidden"}


def health_badge(status: Any, **props: Any) -> rx.Component:
    """available green, loading amber, error red; unknown, disabled and anything else grey."""
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("available", "green"), ("loading", "amber"), ("error", "red"), "gray"),
        variant="soft",
        high_contrast=True,
        **props,
    )


def _cell(cell: Any) -> rx.Component:
    return rx.table.cell(
        rx.cond(
            cell["status"] != "",
            rx.vstack(
                rx.hstack(
                    health_badge(cell["status"]),
                    rx.text(cell["latency"], size="1", color=rx.color("gray", 11)),
                    spacing="2",
                    align="center",
                ),
                rx.text("checked " + cell["checked"].to(str), size="1", color=rx.color("gray", 11)),
                rx.cond(
                    cell["error"] != "",
                    rx.tooltip(
                        rx.box(
                            rx.text("last error " + cell["error_at"].to(str), size="1", color=rx.color("red", 11)),
                            rx.text(cell["error"], size="1", color=rx.color("red", 11), style=CLAMP),
                            tab_index=0,
                            max_width="280px",
                        ),
                        content=cell["error"],
                    ),
                ),
                spacing="1",
            ),
            rx.text("—", color=rx.color("gray", 9), aria_label="not routed"),
        ),
        aria_label=cell["label"],
        vertical_align="top",
    )


def health_matrix(columns: Any, rows: Any) -> rx.Component:
    """Rows are models (aliases), columns deployments; a dash where the alias does not route to it."""
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Model (alias)"),
                    rx.foreach(
                        columns, lambda name: rx.table.column_header_cell(name, style={"overflow_wrap": "anywhere"})
                    ),
                )
            ),
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda row: rx.table.row(
                        rx.table.row_header_cell(row.alias, style={"overflow_wrap": "anywhere"}),
                        rx.foreach(row.cells, _cell),
                        custom_attrs={"data-alias": row.alias},
                    ),
                )
            ),
            variant="surface",
            size="1",
            # As wide as its columns: the focusable box below scrolls, not Radix's inner viewport, which a
            # keyboard cannot reach (axe: scrollable-region-focusable).
            width="max-content",
            min_width="100%",
            id="health-matrix",
        ),
        overflow_x="auto",
        width="100%",
        tab_index=0,
        role="region",
        aria_label="Health matrix (scrolls sideways when there are many deployments)",
    )
