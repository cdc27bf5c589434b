"""Widgets of the Analytics page: its filters, figure tables whose cells carry `data-cell`, the weekday x hour
heatmap as a real table, the A/B panel and recommendation cards. Every figure comes from the state as text."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.components.catalog import scroll_table
from llm_console.components.filters import export_buttons, filter_errors, option_select
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section, stat_card
from llm_console.presenters.analytics import WEEKDAYS

RANGE_ITEMS = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days")]
AB_KIND_OPTIONS = [{"value": "deployment", "label": "Deployments"}, {"value": "alias", "label": "Models"}]
# What `load_analytics` narrows by each filter, said once so nobody reads a panel as filtered when it is not.
FILTER_SCOPE = (
    "A model narrows the traffic chart, the heatmap and the feedback panel; a tag narrows the traffic chart. "
    "The other panels cover all traffic in the range."
)


def muted(*text: Any, **props: Any) -> rx.Component:
    return rx.text(*text, size="1", color=MUTED, **props)


def empty_or(rows: Any, body: rx.Component, message: str) -> rx.Component:
    return rx.cond(rows.length() > 0, body, rx.text(message, size="2", color=MUTED, class_name="empty"))


def toolbar(state: Any) -> rx.Component:
    """Range, then a model or a tag (choosing one clears the other: the URL holds at most one), and exports;
    under them, one line saying which panels the filters narrow."""
    return rx.vstack(
        rx.hstack(
            rx.segmented_control.root(
                *[rx.segmented_control.item(label, value=value) for value, label in RANGE_ITEMS],
                value=state.range_name,
                on_change=lambda v: state.set_param("range", v),
                aria_label="Time range",
                size="1",
            ),
            option_select(state, "model", "Model", state.model_options, state.model, any_label="All models"),
            option_select(state, "tag", "Tag", state.tag_options, state.tag, any_label="All tags"),
            rx.spacer(),
            rx.link("Rate-limit analytics", href=routes.ANALYTICS_LIMITS, size="2", id="limits-link"),
            muted("updated ", state.as_of),
            export_buttons(state),
            align="end",
            width="100%",
            wrap="wrap",
            spacing="3",
        ),
        muted(FILTER_SCOPE, id="filter-scope"),
        filter_errors(state),
        width="100%",
    )


def cards(items: Any, element_id: str) -> rx.Component:
    return rx.flex(rx.foreach(items, stat_card), gap="12px", wrap="wrap", width="100%", id=element_id)


def figure_table(rows: Any, columns: list[tuple[str, str]], table_id: str, row_key: str = "model") -> rx.Component:
    """`columns` are (row key, header); the first is the row's header. Rows carry `data-row` (their
    `row_key`), cells `data-cell` (their key), so a test reads a figure by model and column."""

    def row(r: Any) -> rx.Component:
        first, *rest = columns
        return rx.table.row(
            rx.table.row_header_cell(r[first[0]], scope="row", style=WRAP, custom_attrs={"data-cell": first[0]}),
            *[rx.table.cell(r[key], custom_attrs={"data-cell": key}) for key, _ in rest],
            custom_attrs={"data-row": r[row_key]},
        )

    headers = [rx.table.column_header_cell(h, scope="col") for _, h in columns]
    return scroll_table(table_id, headers, rows, row)


def heatmap(cells: Any, peak: Any) -> rx.Component:
    """Requests per weekday (rows) and UTC hour (columns): each cell's count is its text, its shade the count
    relative to the busiest hour, and the busiest hour is also said in words."""

    def cell(c: Any) -> rx.Component:
        return rx.table.cell(
            c["n"],
            background=c["bg"],
            color=rx.color("gray", 12),
            text_align="center",
            padding="4px 2px",
            font_size="11px",
            title=c["title"],
            custom_attrs={"data-hour": c["hour"], "data-requests": c["requests"]},
        )

    body = [
        rx.table.row(
            rx.table.row_header_cell(day, scope="row"),
            rx.foreach(cells[index], cell),
            custom_attrs={"data-weekday": str(index)},
        )
        for index, day in enumerate(WEEKDAYS)
    ]
    table = rx.box(
        rx.table.root(
            rx.el.caption("Requests per weekday and hour of the day (UTC)", class_name="rt-Text rt-r-size-1"),
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Day", scope="col"),
                    *[
                        rx.table.column_header_cell(f"{h:02d}", scope="col", text_align="center", padding="4px 2px")
                        for h in range(24)
                    ],
                )
            ),
            rx.table.body(*body),
            variant="surface",
            size="1",
            width="100%",
            id="heatmap-grid",
        ),
        overflow_x="auto",
        width="100%",
    )
    return rx.vstack(rx.text(peak, size="2", id="heatmap-peak", role="note"), table, width="100%")


AB_DIFF_COLUMNS = [
    ("metric", "Metric"),
    ("a", "A"),
    ("b", "B"),
    ("diff", "B minus A"),
    ("interval", "95% CI of the difference"),
    ("verdict", "Verdict"),
]


def ab_panel(state: Any) -> rx.Component:
    """Pick deployments or models and two of them; the arms side by side, then B minus A with its interval."""
    texts = state.texts
    arms_table = scroll_table(
        "ab-arms",
        [
            rx.table.column_header_cell("Metric", scope="col"),
            rx.table.column_header_cell(rx.text("A: ", texts["ab_a"]), scope="col", style=WRAP),
            rx.table.column_header_cell(rx.text("B: ", texts["ab_b"]), scope="col", style=WRAP),
        ],
        state.ab_arms,
        lambda r: rx.table.row(
            rx.table.row_header_cell(r["metric"], scope="row"),
            rx.table.cell(r["a"], custom_attrs={"data-cell": "a"}),
            rx.table.cell(r["b"], custom_attrs={"data-cell": "b"}),
            custom_attrs={"data-row": r["metric"]},
        ),
    )
    result = rx.vstack(
        arms_table,
        figure_table(state.ab_differences, AB_DIFF_COLUMNS, "ab-differences", row_key="metric"),
        muted(texts["ab_method"], id="ab-method"),
        rx.cond(texts["ab_sampled"] != "", muted(texts["ab_sampled"])),
        width="100%",
    )
    arms = rx.hstack(
        option_select(state, "a", "Arm A", state.ab_options, state.ab_a, any_label="Choose…"),
        option_select(state, "b", "Arm B", state.ab_options, state.ab_b, any_label="Choose…"),
        spacing="3",
    )
    return rx.vstack(
        rx.hstack(
            option_select(state, "ab_kind", "Compare", AB_KIND_OPTIONS, state.ab_kind, any_label="Nothing"),
            rx.cond(state.ab_kind != "", arms),
            spacing="3",
            align="end",
            wrap="wrap",
        ),
        rx.cond(
            texts["ab_error"] != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("info")),
                rx.callout.text(texts["ab_error"]),
                color_scheme="amber",
                high_contrast=True,
                size="1",
                role="status",
                id="ab-error",
            ),
        ),
        rx.cond(
            state.ab_kind == "",
            muted("Choose deployments or models, then two of them, to compare their calls."),
            rx.cond(texts["ab_hint"] != "", muted(texts["ab_hint"])),
        ),
        rx.cond(state.ab_arms.length() > 0, result),
        width="100%",
    )


def recommendations(rows: Any, figures: Any) -> rx.Component:
    def one(r: Any, i: Any) -> rx.Component:
        return rx.card(
            rx.vstack(
                rx.heading(r["title"], size="3", as_="h3"),
                rx.text(r["detail"], size="2"),
                rx.el.dl(
                    rx.foreach(
                        figures[i],
                        lambda f: rx.hstack(
                            rx.el.dt(f["label"], class_name="rt-Text rt-r-size-1", color=MUTED),
                            rx.el.dd(f["value"], class_name="rt-Text rt-r-size-2", margin="0"),
                            spacing="2",
                            align="baseline",
                        ),
                    ),
                ),
                rx.cond(r["saving"] != "", rx.badge(r["saving"], color_scheme="green", high_contrast=True)),
                spacing="2",
                width="100%",
            ),
            custom_attrs={"data-recommendation": r["kind"]},
            width="100%",
        )

    return rx.grid(
        rx.foreach(rows, one), columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%", id="recs"
    )


def part(title: str, element_id: str, *children: rx.Component) -> rx.Component:
    return section(title, *children, id=element_id)
