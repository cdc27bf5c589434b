"""Embeddings: `/v1/embeddings` traffic, its models and vector sizes, and the newest requests."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.charts import chart_card, stacked_bars
from llm_console.components.filters import export_buttons, filter_errors, range_picker
from llm_console.components.layout import console_page
from llm_console.components.tables import data_table, empty_or
from llm_console.components.widgets import section, stat_card
from llm_console.state.embeddings import EmbeddingsState

MODEL_COLUMNS = [
    ("model", "Model"),
    ("requests", "Requests"),
    ("share", "Share"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("p50", "P50"),
    ("errors", "Error rate"),
]
LATEST_COLUMNS = [
    ("time", "Time"),
    ("model", "Model"),
    ("status", "Status"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("latency", "Latency"),
    ("key", "Key"),
]


@console_page(routes.EMBEDDINGS, "Embeddings", on_load=[EmbeddingsState.load])
def embeddings() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            range_picker(EmbeddingsState),
            rx.spacer(),
            export_buttons(EmbeddingsState),
            rx.text("updated ", EmbeddingsState.as_of, size="1", color=rx.color("gray", 11)),
            align="center",
            width="100%",
            wrap="wrap",
        ),
        filter_errors(EmbeddingsState),
        rx.flex(
            rx.foreach(EmbeddingsState.cards, stat_card), gap="12px", wrap="wrap", width="100%", id="embeddings-cards"
        ),
        rx.grid(
            chart_card(
                "Requests over time",
                stacked_bars(EmbeddingsState.requests_chart, "t", [("ok", "OK", "grass"), ("errors", "Errors", "red")]),
                chart_id="chart-embeddings-requests",
            ),
            chart_card(
                "Vector sizes (requests per dimension count)",
                stacked_bars(EmbeddingsState.dims_chart, "dims", [("requests", "Requests", "indigo")]),
                chart_id="chart-embeddings-dims",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        section(
            "By model",
            empty_or(
                EmbeddingsState.by_model,
                data_table(EmbeddingsState.by_model, MODEL_COLUMNS, table_id="embeddings-models"),
                "No embeddings requests in range.",
            ),
        ),
        section(
            "Latest embeddings requests",
            empty_or(
                EmbeddingsState.latest,
                data_table(
                    EmbeddingsState.latest,
                    LATEST_COLUMNS,
                    table_id="embeddings-latest",
                    link=lambda r: f"{routes.LOGS}?id=" + r["id"],
                ),
                "No embeddings requests yet.",
            ),
        ),
        spacing="4",
        width="100%",
    )
