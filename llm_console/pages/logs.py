"""Logs & traces: filter the request log, page through it, open a request to see its conversation and trace."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import filter_errors, option_select, range_picker, text_filter
from llm_console.components.layout import console_page
from llm_console.components.trace import code_block, detail_facts, fact, message, waterfall
from llm_console.components.widgets import section, status_badge
from llm_console.state.logs import LogsState

COLUMNS = ["Time", "Model", "Endpoint", "Status", "Code", "Mode", "Tokens", "Cost", "Latency", "TTFB", "Key", "User"]
STATUS_OPTIONS = [{"value": s, "label": s} for s in ("ok", "error", "incomplete")]
STREAM_OPTIONS = [{"value": "true", "label": "streaming"}, {"value": "false", "label": "non-streaming"}]
EXPORT = "/api/v1/analytics/requests/export"


def filters() -> rx.Component:
    o, c = LogsState.options, LogsState.current
    return rx.vstack(
        range_picker(LogsState, with_resolution=False),
        rx.flex(
            option_select(LogsState, "model", "Model", o["model"], c["model"], any_label="All models"),
            option_select(LogsState, "deployment", "Deployment", o["deployment"], c["deployment"]),
            option_select(LogsState, "status", "Status", STATUS_OPTIONS, c["status"]),
            option_select(LogsState, "stream", "Mode", STREAM_OPTIONS, c["stream"]),
            option_select(LogsState, "key", "Key", o["key"], c["key"]),
            option_select(LogsState, "user", "User", o["user"], c["user"]),
            option_select(LogsState, "team", "Team", o["team"], c["team"]),
            text_filter(LogsState, "min_latency", "Min latency (ms)", c["min_latency"], width="110px"),
            text_filter(LogsState, "min_cost", "Min cost ($)", c["min_cost"], width="100px"),
            text_filter(LogsState, "q", "Search prompts and answers", c["q"], placeholder="text…", width="220px"),
            text_filter(LogsState, "end_user", "End user", c["end_user"], width="140px"),
            text_filter(LogsState, "session", "Session", c["session"], width="160px"),
            text_filter(LogsState, "tag", "Tag", c["tag"], width="110px"),
            text_filter(LogsState, "prompt", "Prompt", c["prompt"], placeholder="name or name@3", width="150px"),
            rx.button("Clear filters", variant="soft", size="1", on_click=LogsState.clear_filters, align_self="end"),
            gap="12px",
            wrap="wrap",
            align="end",
        ),
        width="100%",
        spacing="3",
    )


def row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                r["time"],
                variant="ghost",
                size="1",
                on_click=LogsState.open_request(r["id"]),
                aria_label="Open request " + r["id"].to(str),
                class_name="open-request",
            )
        ),
        rx.table.cell(r["model"]),
        rx.table.cell(r["endpoint"]),
        rx.table.cell(status_badge(r["status"])),
        rx.table.cell(r["code"]),
        rx.table.cell(r["mode"]),
        rx.table.cell(r["tokens"]),
        rx.table.cell(r["cost"]),
        rx.table.cell(r["latency"]),
        rx.table.cell(r["ttfb"]),
        rx.table.cell(r["key"]),
        rx.table.cell(r["user"]),
        custom_attrs={"data-request-id": r["id"]},
    )


def table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in COLUMNS])),
            rx.table.body(rx.foreach(LogsState.rows, row)),
            variant="surface",
            size="1",
            width="100%",
            id="logs-table",
            white_space="nowrap",
        ),
        overflow_x="auto",
        width="100%",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.button("Newest", on_click=LogsState.first_page, disabled=~LogsState.paged, variant="soft", size="1"),
        rx.button(
            "Older", on_click=LogsState.next_page, disabled=LogsState.next_cursor == "", variant="soft", size="1"
        ),
        rx.spacer(),
        rx.el.a(
            rx.button("Export CSV", variant="outline", size="1"),
            href=EXPORT + "?format=csv&" + LogsState.export_query,
            download="requests.csv",
            reload_document=True,
            id="export-csv",
        ),
        rx.el.a(
            rx.button("Export JSON", variant="outline", size="1"),
            href=EXPORT + "?format=json&" + LogsState.export_query,
            download="requests.json",
            reload_document=True,
            id="export-json",
        ),
        width="100%",
        align="center",
    )


def attribution() -> rx.Component:
    """Who the call was for, as the caller named it; the session links to all of its calls."""
    d = LogsState.detail
    return rx.flex(
        fact("End user", d["end_user"]),
        rx.vstack(
            rx.text("Session", size="1", color=rx.color("gray", 11)),
            rx.cond(
                d["session"] != "",
                rx.link(d["session"], href=routes.LOGS + "?session=" + d["session"], size="2", id="detail-session"),
                rx.text("—", size="2"),
            ),
            spacing="0",
            min_width="150px",
        ),
        fact("Tags", d["tags"]),
        rx.cond(
            d["prompt"] != "",
            rx.vstack(
                rx.text("Prompt", size="1", color=rx.color("gray", 11)),
                rx.link(
                    d["prompt"],
                    href=routes.LOGS + "?range=30d&prompt=" + d["prompt_filter"],
                    size="2",
                    id="detail-prompt",
                ),
                spacing="0",
                min_width="150px",
            ),
        ),
        gap="12px",
        wrap="wrap",
        width="100%",
        id="detail-attribution",
    )


def score_row(s: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(s["name"]),
        rx.table.cell(rx.text(s["value"], weight="bold"), data_kind=s["kind"]),
        rx.table.cell(s["scope"]),
        rx.table.cell(s["comment"], style={"overflow_wrap": "anywhere"}),
        rx.table.cell(s["source"]),
        rx.table.cell(s["time"]),
        class_name="score-row",
    )


def feedback_list() -> rx.Component:
    return rx.cond(
        LogsState.scores.length() > 0,
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[rx.table.column_header_cell(h) for h in ("Score", "Value", "On", "Comment", "From", "When")]
                )
            ),
            rx.table.body(rx.foreach(LogsState.scores, score_row)),
            size="1",
            width="100%",
            id="feedback-scores",
        ),
        rx.text(
            "No feedback yet. Score this call with POST /v1/feedback and its request id "
            "(the x-request-id response header), or its session with session_id.",
            size="2",
            color=rx.color("gray", 11),
            id="feedback-empty",
        ),
    )


def detail_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Request"),
            rx.dialog.description(LogsState.detail_error, size="2"),
            rx.cond(
                LogsState.detail.contains("id"),
                rx.vstack(
                    detail_facts(LogsState.detail),
                    attribution(),
                    rx.cond(
                        LogsState.detail["error_message"] != "",
                        rx.callout.root(
                            rx.callout.text(LogsState.detail["error_message"]), color_scheme="red", size="1"
                        ),
                    ),
                    rx.tabs.root(
                        rx.tabs.list(
                            rx.tabs.trigger("Trace", value="trace"),
                            rx.tabs.trigger("Conversation", value="conversation"),
                            rx.tabs.trigger("Feedback", value="feedback"),
                            rx.tabs.trigger("Request body", value="request"),
                            rx.tabs.trigger("Response body", value="response"),
                        ),
                        rx.tabs.content(waterfall(LogsState.spans), value="trace", padding_top="10px"),
                        rx.tabs.content(
                            rx.vstack(
                                rx.foreach(LogsState.messages, message), width="100%", spacing="2", id="conversation"
                            ),
                            value="conversation",
                            padding_top="10px",
                        ),
                        rx.tabs.content(feedback_list(), value="feedback", padding_top="10px"),
                        rx.tabs.content(code_block(LogsState.request_body), value="request", padding_top="10px"),
                        rx.tabs.content(code_block(LogsState.response_body), value="response", padding_top="10px"),
                        default_value="trace",
                        width="100%",
                    ),
                    width="100%",
                    spacing="3",
                ),
            ),
            rx.dialog.close(rx.button("Close", variant="soft", size="1", margin_top="12px")),
            max_width="960px",
            id="request-detail",
        ),
        open=LogsState.detail_open,
        on_open_change=LogsState.close_request,
    )


def retention_card() -> rx.Component:
    return section(
        "Data retention",
        rx.text(LogsState.retention["policy"], size="2"),
        rx.text(LogsState.retention["last"], size="2", color=rx.color("gray", 11), id="retention-last"),
    )


@console_page(routes.LOGS, "Logs & traces", on_load=[LogsState.load])
def logs_page() -> rx.Component:
    return rx.vstack(
        filters(),
        filter_errors(LogsState),
        pager(),
        rx.cond(
            LogsState.rows.length() > 0,
            table(),
            rx.text("No requests match these filters.", color=rx.color("gray", 11), id="logs-empty"),
        ),
        detail_dialog(),
        retention_card(),
        spacing="4",
        width="100%",
    )
