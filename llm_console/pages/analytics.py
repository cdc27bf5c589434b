"""Analytics: traces over time, unique users, the weekday x hour heatmap, token economics, errors, feedback,
model comparison, an A/B split, anomaly flags, a usage forecast and recommendations."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.analytics import (
    ab_panel,
    cards,
    empty_or,
    figure_table,
    heatmap,
    muted,
    part,
    recommendations,
    toolbar,
)
from llm_console.components.charts import slot_lines, stacked_bars
from llm_console.components.layout import console_page
from llm_console.presenters.analytics import SCORE_SLOTS
from llm_console.state.analytics import AnalyticsState

S = AnalyticsState
TWO_COLUMNS = rx.breakpoints(initial="1", md="2")
NO_CALLS = "No calls in range."
NO_FEEDBACK = (
    "No feedback yet: POST /v1/feedback with a request id (or a session id), a score name and a value or a "
    "category, and the scores appear here by model and by day."
)

ECONOMICS = [
    ("model", "Model"),
    ("requests", "Requests"),
    ("prompt_tokens", "Prompt tokens"),
    ("completion_tokens", "Completion tokens"),
    ("cached_share", "Cached share"),
    ("cost", "Cost"),
    ("cost_per_request", "Cost / request"),
    ("cost_per_1k_tokens", "Cost / 1k tokens"),
    ("tokens_per_request", "Tokens / request"),
]
ERRORS = [
    ("model", "Model"),
    ("requests", "Requests"),
    ("errors", "Errors"),
    ("error_rate", "Error rate"),
    ("interval", "95% CI (Wilson)"),
]
FEEDBACK = [
    ("model", "Model"),
    ("name", "Score"),
    ("n", "Scores"),
    ("mean", "Mean"),
    ("interval", "95% CI"),
    ("categories", "Categories"),
]
COMPARISON = [
    ("model", "Model"),
    ("requests", "Requests"),
    ("p50", "P50"),
    ("p95", "P95"),
    ("mean", "Mean latency"),
    ("tokens_per_s", "Output tokens / s"),
    ("cost_per_request", "Cost / request"),
    ("error_rate", "Error rate"),
    ("score", "Feedback"),
]
ANOMALIES = [
    ("hour", "Hour"),
    ("metric", "Metric"),
    ("value", "Value"),
    ("median", "Median before"),
    ("z", "Robust z"),
    ("direction", "Direction"),
]
FORECAST = [
    ("day", "Day"),
    ("requests", "Requests"),
    ("requests_interval", "95% interval"),
    ("tokens", "Tokens"),
    ("tokens_interval", "95% interval"),
    ("cost_usd", "Cost"),
    ("cost_usd_interval", "95% interval"),
]


@console_page(routes.ANALYTICS, "Analytics", on_load=[S.load])
def analytics() -> rx.Component:
    return rx.vstack(
        toolbar(S),
        part(
            "Traces over time",
            "analytics-traces",
            cards(S.traces_cards, "traces-cards"),
            empty_or(
                S.traces_chart,
                rx.box(
                    stacked_bars(S.traces_chart, "t", [("ok", "OK", "grass"), ("errors", "Errors", "red")]),
                    id="chart-traces",
                    width="100%",
                    class_name="chart",
                ),
                NO_CALLS,
            ),
        ),
        part(
            "Unique users",
            "analytics-users",
            cards(S.users_cards, "users-cards"),
            empty_or(
                S.users_chart,
                rx.box(
                    stacked_bars(S.users_chart, "t", [("users", "Users", "indigo")]),
                    id="chart-users",
                    width="100%",
                    class_name="chart",
                ),
                NO_CALLS,
            ),
            muted("Distinct end users named by the caller, plus key owners (or keys) for calls that named none."),
        ),
        part("Usage by weekday and hour", "analytics-heatmap", heatmap(S.heat_cells, S.heatmap_peak)),
        part(
            "Token economics by model",
            "analytics-economics",
            empty_or(S.economics, figure_table(S.economics, ECONOMICS, "economics-table"), NO_CALLS),
        ),
        rx.grid(
            part(
                "Error rate by model",
                "analytics-errors",
                empty_or(S.errors, figure_table(S.errors, ERRORS, "errors-table"), NO_CALLS),
            ),
            part(
                "Feedback scores by model",
                "analytics-feedback",
                empty_or(
                    S.feedback,
                    rx.vstack(
                        figure_table(S.feedback, FEEDBACK, "feedback-table"),
                        rx.box(
                            slot_lines(S.score_chart, S.score_names, SCORE_SLOTS, dots=True),
                            id="chart-scores",
                            width="100%",
                        ),
                        width="100%",
                    ),
                    NO_FEEDBACK,
                ),
            ),
            columns=TWO_COLUMNS,
            spacing="3",
            width="100%",
        ),
        part(
            "Model comparison",
            "analytics-comparison",
            empty_or(S.comparison, figure_table(S.comparison, COMPARISON, "comparison-table"), NO_CALLS),
        ),
        part("A/B comparison", "analytics-ab", ab_panel(S)),
        part(
            "Anomaly flags",
            "analytics-anomalies",
            rx.text(S.texts["anomaly_summary"], size="2", id="anomaly-summary"),
            empty_or(
                S.anomalies,
                figure_table(S.anomalies, ANOMALIES, "anomalies-table", row_key="hour"),
                "No hour stood out.",
            ),
            muted(S.texts["anomaly_method"], id="anomaly-method"),
        ),
        part(
            "Usage forecast",
            "analytics-forecast",
            empty_or(
                S.forecast_cards,
                rx.vstack(
                    cards(S.forecast_cards, "forecast-cards"),
                    figure_table(S.forecast, FORECAST, "forecast-table", row_key="day"),
                    muted(S.texts["forecast_method"], id="forecast-method"),
                    width="100%",
                ),
                "Too little history to forecast: it needs a few full days of calls.",
            ),
        ),
        part(
            "Recommendations",
            "analytics-recommendations",
            empty_or(
                S.recommendations,
                recommendations(S.recommendations, S.recommendation_figures),
                "Nothing to recommend: no model, cache or error pattern in this range suggests a change.",
            ),
        ),
        spacing="4",
        width="100%",
    )
