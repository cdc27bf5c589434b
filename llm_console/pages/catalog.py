"""Model catalog: every alias with its metadata; ?alias= opens one model, ?compare=a,b compares 2-4 of them."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components import catalog as ui
from llm_console.components.catalog_edit import edit_form
from llm_console.components.layout import console_page
from llm_console.components.tables import empty_or
from llm_console.components.widgets import section
from llm_console.state.catalog import CatalogState as S


def list_view() -> rx.Component:
    return rx.vstack(
        rx.hstack(ui.search_form(), rx.spacer(), ui.compare_bar(), width="100%", align="center", wrap="wrap"),
        ui.deprecation_notices(),
        rx.tabs.root(
            rx.tabs.list(rx.tabs.trigger("Models", value="models"), rx.tabs.trigger("Capabilities", value="caps")),
            rx.tabs.content(
                empty_or(S.rows, ui.catalog_table(), "No models match this search."), value="models", padding_top="10px"
            ),
            rx.tabs.content(
                empty_or(S.matrix, ui.capability_matrix(), "No models match this search."),
                value="caps",
                padding_top="10px",
            ),
            default_value="models",
            width="100%",
        ),
        width="100%",
        spacing="4",
    )


def detail_view() -> rx.Component:
    d = S.detail
    return rx.vstack(
        rx.link("← All models", href=S.back_href, size="2"),
        rx.hstack(
            rx.heading(d["alias"], size="5", as_="h2", style={"overflow_wrap": "anywhere"}),
            ui.availability_badge(d["availability"]),
            rx.cond(d["deprecated"] != "", rx.badge("deprecated", color_scheme="red", variant="soft")),
            align="center",
            wrap="wrap",
        ),
        ui.deprecation_callout(),
        rx.cond(d["description"] != "", rx.text(d["description"], size="2", white_space="pre-wrap")),
        section("Endpoint", ui.endpoint_box()),
        section("Details", ui.detail_facts()),
        section("Capabilities", ui.capability_list()),
        section("Deployments", empty_or(S.deployments, ui.deployments_table(), "No deployment serves this model.")),
        section("Usage examples", ui.usage_examples()),
        rx.cond(S.can_edit, section("Edit metadata", edit_form())),
        width="100%",
        spacing="4",
    )


def compare_view() -> rx.Component:
    def cell(value: rx.Var, i: rx.Var) -> rx.Component:
        return rx.cond(i == 0, rx.table.row_header_cell(value), rx.table.cell(value))

    return rx.vstack(
        rx.link("← All models", href=routes.CATALOG, size="2"),
        rx.text("Figures cover the last 24 hours of traffic through this gateway.", size="2", color=ui.MUTED),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Model"),
                        rx.foreach(
                            S.compare_columns,
                            lambda a: rx.table.column_header_cell(a, style={"overflow_wrap": "anywhere"}),
                        ),
                    )
                ),
                rx.table.body(rx.foreach(S.compare_rows, lambda r: rx.table.row(rx.foreach(r, cell)))),
                variant="surface",
                size="1",
                width="100%",
                id="catalog-compare-table",
            ),
            overflow_x="auto",
            width="100%",
        ),
        width="100%",
        spacing="3",
    )


@console_page(routes.CATALOG, "Model catalog", on_load=[S.load])
def page() -> rx.Component:
    return rx.box(
        rx.match(
            S.view,
            ("detail", detail_view()),
            ("compare", compare_view()),
            ("error", rx.vstack(ui.error_callout(S.error), rx.link("← All models", href=routes.CATALOG, size="2"))),
            list_view(),
        ),
        width="100%",
    )
