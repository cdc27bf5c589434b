"""Routing rules: aliases on the left; the chosen alias's deployments, weights, strategy, fallbacks, retries and
timeouts on the right, with a preview of where the next 100 requests would go."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.components.layout import console_page
from llm_console.components.routing import (
    MUTED,
    WRAP,
    alias_row,
    callouts,
    create_dialog,
    engine_fallback_field,
    fallback_chip,
    link_row,
    number_field,
    preview_bar,
)
from llm_console.components.widgets import section
from llm_console.state.routing import RoutingEditState as E
from llm_console.state.routing import RoutingState as S

HIDDEN = {"position": "absolute", "width": "1px", "height": "1px", "overflow": "hidden", "clip": "rect(0 0 0 0)"}
STRATEGIES = [
    ("weighted", "Weighted", "Random, in proportion to the weights."),
    ("least_busy", "Least busy", "Fewest requests in flight (relative to max concurrency)."),
    ("lowest_latency", "Lowest latency", "Shortest moving-average time to first byte; unmeasured first."),
    ("lowest_cost", "Lowest cost", "Cheapest input + output price; no price counts as free."),
    ("engine_aware", "Engine aware", "Shortest engine queue, then KV-cache headroom (vLLM metrics)."),
]
POLICY_FIELDS = [("retries", "Retries"), ("backoff_ms", "Backoff (ms)"), ("retry_after_cap_s", "Retry-After cap (s)")]
TIMEOUT_FIELDS = [
    ("connect_s", "Connect (s)"),
    ("first_byte_s", "First byte (s)"),
    ("idle_s", "Idle (s)"),
    ("total_s", "Total (s)"),
]


def alias_list() -> rx.Component:
    return rx.box(
        section(
            "Aliases",
            rx.cond(S.can_edit, create_dialog()),
            rx.cond(
                S.aliases.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Alias"),
                            rx.table.column_header_cell("Strategy"),
                            rx.table.column_header_cell("Deployments"),
                        )
                    ),
                    rx.table.body(rx.foreach(S.aliases, alias_row)),
                    size="1",
                    width="100%",
                    id="routing-aliases",
                ),
                rx.text("No aliases yet.", size="2", color=MUTED),
            ),
        ),
        width=["100%", "100%", "340px"],
        min_width=["0", "0", "340px"],
    )


def deployments_section() -> rx.Component:
    return section(
        "Deployments",
        rx.text("Weight 0 drains a deployment: it stays linked but gets no traffic.", size="1", color=MUTED),
        rx.cond(
            S.links.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Deployment"),
                        rx.table.column_header_cell("Weight"),
                        rx.table.column_header_cell(rx.el.span("Remove", style=HIDDEN)),
                    )
                ),
                rx.table.body(rx.foreach(S.links, link_row)),
                size="1",
                width="100%",
                id="routing-links",
            ),
            rx.text("No deployment: clients asking for this alias get 404 model_not_found.", size="2", color=MUTED),
        ),
        rx.cond(
            S.can_edit,
            rx.select.root(
                rx.select.trigger(placeholder="Add a deployment…", aria_label="Add a deployment", id="routing-add"),
                rx.select.content(rx.foreach(S.choices, lambda o: rx.select.item(o["label"], value=o["value"]))),
                value="",
                on_change=E.add_link,
                size="1",
            ),
        ),
    )


def strategy_section() -> rx.Component:
    return section(
        "Strategy and fallbacks",
        rx.text("Strategy", size="2", id="routing-strategy-label"),
        rx.select.root(
            rx.select.trigger(id="routing-strategy", aria_labelledby="routing-strategy-label", min_width="200px"),
            rx.select.content(*[rx.select.item(label, value=value) for value, label, _ in STRATEGIES]),
            value=S.strategy,
            on_change=E.set_strategy,
            disabled=~S.can_edit,
            size="2",
        ),
        rx.text(rx.match(S.strategy, *[(value, hint) for value, _, hint in STRATEGIES], ""), size="1", color=MUTED),
        engine_fallback_field([(value, label) for value, label, _ in STRATEGIES if value != "engine_aware"]),
        rx.text("Fallbacks, tried in order when every deployment of this alias fails", size="2", margin_top="8px"),
        rx.flex(
            rx.foreach(S.fallbacks, fallback_chip),
            rx.cond(S.fallbacks.length() == 0, rx.text("None.", size="2", color=MUTED)),
            gap="6px",
            wrap="wrap",
            id="routing-fallbacks",
        ),
        rx.cond(
            S.can_edit,
            rx.select.root(
                rx.select.trigger(
                    placeholder="Add a fallback…", aria_label="Add a fallback", id="routing-add-fallback"
                ),
                rx.select.content(rx.foreach(S.fallback_choices, lambda a: rx.select.item(a, value=a))),
                value="",
                on_change=E.add_fallback,
                size="1",
            ),
        ),
    )


def policy_section() -> rx.Component:
    return section(
        "Retries and timeouts",
        rx.text("Leave a field empty to use the gateway default.", size="1", color=MUTED),
        rx.flex(*[number_field(n, label) for n, label in POLICY_FIELDS], gap="16px", wrap="wrap"),
        rx.flex(*[number_field(n, label) for n, label in TIMEOUT_FIELDS], gap="16px", wrap="wrap"),
    )


def preview_section() -> rx.Component:
    return section(
        "Preview",
        rx.hstack(
            rx.button(
                rx.icon("shuffle", size=14),
                "Preview next 100",
                aria_label="Preview next 100",
                on_click=S.run_preview,
                variant="soft",
                size="1",
            ),
            rx.text("sample ", S.preview_seed.to_string(), size="1", color=MUTED),
            align="center",
        ),
        rx.text(
            "The gateway's own ordering, run on a copy of this process's live state (requests in flight, latency, "
            "circuits) with the rule as edited here; first attempts only.",
            size="1",
            color=MUTED,
        ),
        rx.text(S.preview_summary, size="2", id="routing-preview-summary"),
        rx.vstack(rx.foreach(S.preview_rows, preview_bar), width="100%", spacing="3", id="routing-preview"),
        rx.cond(
            S.preview_refusal != "",
            rx.callout.root(rx.callout.text(S.preview_refusal), color_scheme="amber", size="1", role="status"),
        ),
    )


def actions() -> rx.Component:
    return rx.cond(
        S.can_edit,
        rx.hstack(
            rx.button("Save routing", aria_label="Save routing", id="routing-save", on_click=E.save),
            rx.spacer(),
            rx.alert_dialog.root(
                rx.alert_dialog.trigger(rx.button("Delete alias", color_scheme="red", variant="soft")),
                rx.alert_dialog.content(
                    rx.alert_dialog.title("Delete this alias?"),
                    rx.alert_dialog.description(
                        rx.text(
                            "Clients asking for ",
                            rx.code(S.selected),
                            " will get 404 model_not_found. Its deployments stay.",
                        )
                    ),
                    rx.hstack(
                        rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                        rx.alert_dialog.action(rx.button("Delete", color_scheme="red", on_click=E.delete_alias)),
                        justify="end",
                        margin_top="12px",
                    ),
                ),
            ),
            width="100%",
        ),
    )


def editor() -> rx.Component:
    return rx.vstack(
        rx.heading(S.selected, size="5", as_="h2", style=WRAP),
        deployments_section(),
        strategy_section(),
        policy_section(),
        actions(),
        preview_section(),
        width="100%",
        min_width="0",
        spacing="4",
    )


def body() -> Any:
    return rx.vstack(
        callouts(),
        rx.flex(
            alias_list(),
            rx.cond(
                S.found,
                editor(),
                rx.text("Choose an alias to see and edit its routing.", size="2", color=MUTED),
            ),
            direction=rx.breakpoints(initial="column", md="row"),
            gap="16px",
            align="start",
            width="100%",
        ),
        width="100%",
        spacing="3",
    )


@console_page(routes.ROUTING, "Routing rules", on_load=[S.load])
def page() -> rx.Component:
    return body()
