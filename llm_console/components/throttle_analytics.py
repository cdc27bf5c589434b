"""Widgets of the rate-limit analytics page: the refusals chart, the consumer, episode, spike and burst tables.
Every name renders as text, never as markup; every row carries a data attribute naming what it is about."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.components.catalog import scroll_table
from llm_console.components.charts import chart_card, stacked_bars
from llm_console.components.filters import dashboard_toolbar
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section

CONSUMER_COLUMNS = [
    ("requests", "Requests"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("refused", "Refused (429)"),
    ("refused_share", "Refused share"),
]
EPISODE_COLUMNS = [
    ("limit", "Limit"),
    ("start", "From (UTC)"),
    ("end", "To (UTC)"),
    ("hours", "Hours"),
    ("refusals", "Refusals"),
]
SPIKE_COLUMNS = [("hour", "Hour (UTC)"), ("calls", "Calls"), ("median", "Median / hour"), ("mad", "MAD"), ("z", "z")]
BURST_COLUMNS = [
    ("minutes", "Burst minutes"),
    ("burst_refusals", "Refused in bursts"),
    ("peak", "Peak minute"),
    ("first", "First (UTC)"),
    ("last", "Last (UTC)"),
    ("total", "Refused in range"),
]


def empty_note(rows: Any, body: rx.Component, message: Any) -> rx.Component:
    return rx.cond(rows.length() > 0, body, rx.text(message, size="2", color=MUTED))


def toolbar(state: Any) -> rx.Component:
    return dashboard_toolbar(state, rx.link("Limits & budgets", href=routes.LIMITS, size="2"))


def refusals_chart(state: Any) -> rx.Component:
    chart = stacked_bars(
        state.chart,
        "t",
        [
            ("requests", "Request limits", "indigo"),
            ("tokens", "Token limits", "amber"),
            ("budget", "Budgets", "crimson"),
        ],
    )
    empty = rx.text(
        "No call was refused by a rate limit or budget in this range. Refusals (HTTP 429 from the limiter) "
        "appear here per ",
        state.grain_word,
        ", split into request limits (RPM, RPD), token limits (TPM, TPD) and budgets.",
        size="2",
        color=MUTED,
    )
    return chart_card("Throttled over time", rx.cond(state.refused_total > 0, chart, empty), chart_id="chart-throttled")


def _table(table_id: str, first: str, columns: list[tuple[str, str]], rows: Any, row_attrs: Any) -> rx.Component:
    def render(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(row_attrs["label"](r), style=WRAP),
            *[rx.table.cell(r[key], custom_attrs={"data-cell": key}) for key, _ in columns],
            custom_attrs=row_attrs["attrs"](r),
        )

    headers = [rx.table.column_header_cell(first, scope="col")]
    headers += [rx.table.column_header_cell(h, scope="col") for _, h in columns]
    return scroll_table(table_id, headers, rows, render)


def consumer_table(table_id: str, first: str, entity: str, rows: Any) -> rx.Component:
    return _table(
        table_id,
        first,
        CONSUMER_COLUMNS,
        rows,
        {"label": lambda r: rx.text(r["name"]), "attrs": lambda r: {"data-consumer": f"{entity}:" + r["id"]}},
    )


def top_consumers(state: Any) -> rx.Component:
    empty = (
        "No calls in this range. Keys, users and teams appear here ranked by requests, with their tokens, cost "
        "and how many of their calls the limiter refused."
    )
    tabs = rx.tabs.root(
        rx.tabs.list(
            rx.tabs.trigger("Keys", value="keys"),
            rx.tabs.trigger("Users", value="users"),
            rx.tabs.trigger("Teams", value="teams"),
        ),
        rx.tabs.content(
            empty_note(state.top_keys, consumer_table("top-keys", "Key", "key", state.top_keys), empty),
            value="keys",
            padding_top="8px",
        ),
        rx.tabs.content(
            empty_note(state.top_users, consumer_table("top-users", "User", "user", state.top_users), empty),
            value="users",
            padding_top="8px",
        ),
        rx.tabs.content(
            empty_note(state.top_teams, consumer_table("top-teams", "Team", "team", state.top_teams), empty),
            value="teams",
            padding_top="8px",
        ),
        default_value="keys",
        width="100%",
    )
    note = (
        "The keys, users and teams with the most requests, joined by the most refused ones. A key's refused "
        "calls are every call made with it that a limit refused (its own, its user's or its team's); a user's "
        "or team's are the calls their own limits refused."
    )
    return section("Top consumers", rx.text(note, size="1", color=MUTED), tabs, id="top-consumers")


def breach_timeline(state: Any) -> rx.Component:
    table = _table(
        "breach-table",
        "Entity",
        EPISODE_COLUMNS,
        state.episodes,
        {"label": lambda r: rx.text(r["entity"]), "attrs": lambda r: {"data-throttle": r["throttle"]}},
    )
    empty = (
        "No limit refused calls in this range. Each key's, user's or team's limit that refuses calls appears here "
        "as episodes: the consecutive hours in which it refused, newest first."
    )
    return section("Breach timeline", empty_note(state.episodes, table, empty), id="breach-timeline")


def abuse_patterns(state: Any) -> rx.Component:
    spikes = _table(
        "spike-table",
        "Key",
        SPIKE_COLUMNS,
        state.spikes,
        {"label": lambda r: rx.text(r["name"]), "attrs": lambda r: {"data-key": r["id"]}},
    )
    bursts = _table(
        "burst-table",
        "Client address",
        BURST_COLUMNS,
        state.bursts,
        {"label": lambda r: rx.text(r["address"]), "attrs": lambda r: {"data-address": r["address"]}},
    )
    return section(
        "Abuse patterns",
        rx.heading("Sudden spikes from one key", size="2", as_="h3"),
        empty_note(state.spikes, spikes, state.spikes_empty),
        rx.heading("Bursts of refused credentials (401) from one address", size="2", as_="h3"),
        empty_note(state.bursts, bursts, state.bursts_empty),
        rx.text(rx.text.strong("Method: "), state.method, size="1", color=MUTED, id="abuse-method"),
        id="abuse-patterns",
    )
