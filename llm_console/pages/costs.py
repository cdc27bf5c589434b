"""Costs & budgets: spend by model, endpoint, team, user and key; the daily trend; the month against budget;
self-hosted GPU-hour cost and who it is allocated to."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.charts import chart_card, stacked_bars
from llm_console.components.filters import export_buttons, filter_errors, range_picker
from llm_console.components.layout import console_page
from llm_console.components.spend import budget_bar, spend_badge
from llm_console.components.tables import data_table, empty_or
from llm_console.components.widgets import stat_card
from llm_console.services.costs import DIMENSIONS
from llm_console.state.costs import CostsState

COLUMNS = [("name", "Name"), ("requests", "Requests"), ("tokens", "Tokens"), ("cost", "Cost"), ("share", "Share")]
GPU_COLUMNS = [
    ("name", "Deployment"),
    ("price", "Price"),
    ("hours", "Hours up"),
    ("basis", "Basis"),
    ("cost", "GPU cost"),
    ("allocated", "Allocated"),
    ("note", "Note"),
]
GPU_SHARE_COLUMNS = [("name", "Name"), ("deployment", "Deployment"), ("share", "Share"), ("cost", "GPU cost")]
TABS = {
    "alias": CostsState.by_alias,
    "endpoint": CostsState.by_endpoint,
    "team": CostsState.by_team,
    "user": CostsState.by_user,
    "key": CostsState.by_key,
}


def toolbar() -> rx.Component:
    return rx.hstack(
        range_picker(CostsState, with_resolution=False),
        rx.spacer(),
        export_buttons(CostsState),
        rx.text("updated ", CostsState.as_of, size="1", color=rx.color("gray", 11)),
        align="center",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


def month_card() -> rx.Component:
    b = CostsState.budget
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Month to date", size="3", as_="h2"),
                rx.spacer(),
                spend_badge(b["status"], b["label"]),
                width="100%",
            ),
            rx.hstack(
                rx.text(b["spent"], size="7", weight="bold", class_name="stat-value"),
                rx.text(b["of"], size="2", color=rx.color("gray", 11)),
                rx.spacer(),
                rx.text(b["pct"], size="4", weight="bold"),
                align="baseline",
                spacing="2",
                width="100%",
                wrap="wrap",
            ),
            rx.cond(
                b["status"] != "none",
                budget_bar("", CostsState.budget_pct, b["status"], b["aria"], size="3"),
            ),
            rx.text(b["hint"], size="2", color=rx.color("gray", 11)),
            width="100%",
        ),
        width="100%",
        id="month-to-date",
    )


def forecast_card() -> rx.Component:
    f = CostsState.forecast
    return rx.card(
        rx.vstack(
            rx.heading("Forecast to month end", size="3", as_="h2"),
            rx.text(f["text"], size="5", weight="bold", id="forecast-text"),
            rx.text(f["detail"], size="2", color=rx.color("gray", 11)),
            rx.cond(
                f["warn"] != "",
                rx.callout.root(
                    rx.callout.icon(rx.icon("triangle-alert")),
                    rx.callout.text(f["warn"]),
                    color_scheme="amber",
                    high_contrast=True,  # amber's own text is 4.25:1 on this background
                    size="1",
                ),
            ),
            width="100%",
        ),
        width="100%",
        id="forecast",
    )


def breakdown() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Breakdown", size="3", as_="h2"),
            rx.text("Top 20 of each by cost; share of all spend in the range.", size="2", color=rx.color("gray", 11)),
            rx.tabs.root(
                rx.tabs.list(*[rx.tabs.trigger(f"By {label.lower()}", value=dim) for dim, label in DIMENSIONS]),
                *[
                    rx.tabs.content(
                        rx.box(
                            empty_or(TABS[dim], data_table(TABS[dim], COLUMNS, table_id=f"by-{dim}"), "No spend."),
                            padding_top="12px",
                        ),
                        value=dim,
                    )
                    for dim, _ in DIMENSIONS
                ],
                default_value="alias",
                width="100%",
            ),
            width="100%",
        ),
        width="100%",
    )


def gpu_card() -> rx.Component:
    g = CostsState.gpu_summary
    # Named apart from the spend breakdown's "By key" / "By team" tabs on the same page.
    share_tabs = (("key", "GPU cost by key", CostsState.gpu_keys), ("team", "GPU cost by team", CostsState.gpu_teams))
    return rx.card(
        rx.vstack(
            rx.heading("Self-hosted GPU cost", size="3", as_="h2"),
            rx.text(g["totals"], size="4", weight="bold", id="gpu-cost-totals"),
            rx.text(g["rule"], size="2", color=rx.color("gray", 11)),
            rx.cond(
                g["empty"] != "",
                rx.text(g["empty"], size="2", color=rx.color("gray", 11)),
                rx.vstack(
                    rx.text(g["allocated"], size="2"),
                    data_table(CostsState.gpu_deployments, GPU_COLUMNS, table_id="gpu-deployments"),
                    rx.tabs.root(
                        rx.tabs.list(*[rx.tabs.trigger(label, value=v) for v, label, _ in share_tabs]),
                        *[
                            rx.tabs.content(
                                rx.box(
                                    empty_or(
                                        rows,
                                        data_table(rows, GPU_SHARE_COLUMNS, table_id=f"gpu-by-{v}"),
                                        "No traffic on priced deployments in this range.",
                                    ),
                                    padding_top="12px",
                                ),
                                value=v,
                            )
                            for v, _, rows in share_tabs
                        ],
                        default_value="key",
                        width="100%",
                    ),
                    width="100%",
                ),
            ),
            width="100%",
        ),
        width="100%",
        id="gpu-cost",
    )


@console_page(routes.COSTS, "Costs & budgets", on_load=[CostsState.load])
def costs() -> rx.Component:
    return rx.vstack(
        toolbar(),
        filter_errors(CostsState),
        rx.grid(month_card(), forecast_card(), columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
        rx.flex(rx.foreach(CostsState.cards, stat_card), gap="12px", wrap="wrap", width="100%", id="costs-cards"),
        chart_card(
            "Daily cost (UTC days)",
            stacked_bars(CostsState.trend, "day", [("cost", "Cost (USD)", "indigo")]),
            chart_id="chart-daily-cost",
        ),
        breakdown(),
        gpu_card(),
        spacing="4",
        width="100%",
    )
