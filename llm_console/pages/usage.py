"""Usage & performance: traffic, tokens, cost and latency over a chosen range, from the rollups."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.charts import areas, chart_card, lines, named_stacked_bars, slot_lines, stacked_bars
from llm_console.components.filters import export_buttons, filter_errors, option_select, range_picker
from llm_console.components.fleet import queue_table
from llm_console.components.layout import console_page
from llm_console.components.tables import data_table, empty_or
from llm_console.components.widgets import section, stat_card
from llm_console.presenters.fleet import SLOTS as QUEUE_SLOTS
from llm_console.state.usage import SLOTS, UsageState

MODEL_COLUMNS = [
    ("model", "Model"),
    ("requests", "Requests"),
    ("errors", "Error rate"),
    ("tokens", "Tokens in / out"),
    ("cost", "Cost"),
    ("p50", "P50"),
    ("p90", "P90"),
    ("p99", "P99"),
    ("ttfb50", "TTFB P50"),
    ("ttfb99", "TTFB P99"),
]
SLOW_COLUMNS = [
    ("time", "Time"),
    ("model", "Model"),
    ("status", "Status"),
    ("latency", "Latency"),
    ("ttfb", "TTFB"),
    ("tokens", "Tokens"),
    ("deployment", "Deployment"),
]
STREAM_COLUMNS = [("mode", "Mode"), ("requests", "Requests"), ("share", "Share"), ("p50", "P50"), ("errors", "Errors")]


def toolbar() -> rx.Component:
    return rx.hstack(
        range_picker(UsageState),
        option_select(UsageState, "model", "Model", UsageState.models, UsageState.model, any_label="All models"),
        rx.spacer(),
        rx.text("updated ", UsageState.as_of, size="1", color=rx.color("gray", 11)),
        export_buttons(UsageState),
        align="end",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


@console_page(routes.USAGE, "Usage & performance", on_load=[UsageState.load])
def usage() -> rx.Component:
    return rx.vstack(
        toolbar(),
        filter_errors(UsageState),
        rx.flex(rx.foreach(UsageState.cards, stat_card), gap="12px", wrap="wrap", width="100%", id="usage-cards"),
        chart_card(
            "Requests by model",
            named_stacked_bars(UsageState.model_chart, "t", UsageState.model_names, SLOTS),
            chart_id="chart-models",
        ),
        rx.grid(
            chart_card(
                "Success vs errors",
                stacked_bars(UsageState.requests_chart, "t", [("ok", "OK", "grass"), ("errors", "Errors", "red")]),
                chart_id="chart-success",
            ),
            chart_card(
                "Tokens in / out",
                areas(UsageState.tokens_chart, "t", [("input", "Input", "indigo"), ("output", "Output", "cyan")]),
                chart_id="chart-tokens",
            ),
            chart_card(
                "Latency percentiles (ms)",
                lines(
                    UsageState.latency_chart,
                    "t",
                    [("p50", "P50", "grass"), ("p90", "P90", "amber"), ("p99", "P99", "red")],
                ),
                chart_id="chart-latency",
            ),
            chart_card(
                "Latency distribution",
                stacked_bars(UsageState.histogram, "bucket", [("requests", "Requests", "indigo")]),
                chart_id="chart-histogram",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        section(
            "By model",
            empty_or(UsageState.by_model, data_table(UsageState.by_model, MODEL_COLUMNS), "No traffic in range."),
        ),
        rx.grid(
            section(
                "Streaming vs non-streaming",
                empty_or(UsageState.stream_split, data_table(UsageState.stream_split, STREAM_COLUMNS), "—"),
            ),
            section(
                "Queue depth (requests waiting in each engine)",
                rx.cond(
                    UsageState.queue_chart,
                    rx.box(
                        slot_lines(
                            UsageState.queue_chart,
                            UsageState.queue_names,
                            QUEUE_SLOTS,
                            height=180,
                            dots=UsageState.queue_chart.length() < 3,  # one point draws no line: show it
                        ),
                        width="100%",
                        id="chart-queue-depth",
                        class_name="chart",
                    ),
                ),
                queue_table(UsageState.queue_rows, UsageState.queue_empty),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        section(
            "Slowest requests",
            empty_or(
                UsageState.slow,
                data_table(UsageState.slow, SLOW_COLUMNS, link=lambda r: f"{routes.LOGS}?id=" + r["id"]),
                "No requests in range.",
            ),
        ),
        spacing="4",
        width="100%",
    )
