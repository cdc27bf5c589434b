"""Overview: the last 24 hours at a glance, live."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.charts import stacked_bars
from llm_console.components.filters import export_buttons
from llm_console.components.layout import console_page
from llm_console.components.tables import data_table, empty_or
from llm_console.components.widgets import section, stat_card
from llm_console.state.overview import OverviewState

COLUMNS = [
    ("time", "Time"),
    ("model", "Model"),
    ("status", "Status"),
    ("code", "Code"),
    ("mode", "Mode"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("latency", "Latency"),
]


def latest_table() -> rx.Component:
    return data_table(OverviewState.latest, COLUMNS, link=lambda r: f"{routes.LOGS}?id=" + r["id"].to(str))


def ranked(title: str, rows: rx.Var, table_id: str) -> rx.Component:
    return section(
        title,
        empty_or(
            rows,
            data_table(rows, [("label", "Name"), ("requests", "Requests"), ("tokens", "Tokens"), ("cost", "Cost")]),
            "Nothing yet.",
        ),
        id=table_id,
    )


@console_page(routes.OVERVIEW, "Overview", on_load=[OverviewState.load])
def overview() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Last 24 hours", size="3", as_="h2"),
            rx.spacer(),
            export_buttons(OverviewState),
            width="100%",
        ),
        rx.flex(rx.foreach(OverviewState.cards, stat_card), gap="12px", wrap="wrap", width="100%", id="overview-cards"),
        rx.heading("Last 7 days", size="3", as_="h2"),
        rx.flex(
            rx.foreach(OverviewState.week_cards, stat_card), gap="12px", wrap="wrap", width="100%", id="week-cards"
        ),
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading("Requests per minute (last hour)", size="3", as_="h2"),
                    rx.spacer(),
                    rx.text("updated ", OverviewState.as_of, size="1", color=rx.color("gray", 11)),
                    width="100%",
                ),
                stacked_bars(OverviewState.chart, "minute", [("ok", "OK", "accent"), ("errors", "Errors", "red")]),
                width="100%",
            ),
            width="100%",
        ),
        rx.grid(
            ranked("Providers (24 h)", OverviewState.providers, "providers"),
            ranked("Top users by spend today", OverviewState.top_users, "top-users"),
            ranked("Top keys by spend today", OverviewState.top_keys, "top-keys"),
            columns=rx.breakpoints(initial="1", lg="3"),
            spacing="3",
            width="100%",
        ),
        section(
            "Recent activity",
            empty_or(
                OverviewState.latest,
                latest_table(),
                "No requests yet. Point an OpenAI SDK at this server's /v1 with a virtual key.",
            ),
        ),
        spacing="4",
        width="100%",
    )
