"""Widgets of the Prompts pages: the list, and a prompt's labels, versions, per-version figures, one version's
template and the diff of two versions. Templates render as text (never as markup); changed diff lines carry a
sign and a word as well as a colour; the production label is a badge everywhere it appears."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.catalog import column_headers, scroll_table
from llm_console.components.filters import export_buttons, search_box
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section
from llm_console.state.dashboard import ANY
from llm_console.state.prompt_forms import PromptFormState, PromptLabelState
from llm_console.state.prompts import RANGES, PromptDetailState, PromptsState

RANGE_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
LIST_COLUMNS = ["Name", "Kind", "Latest", "Labels", "Last change", "Calls (7 days)"]
VERSION_COLUMNS = [("author", "Author"), ("created", "Created"), ("message", "Commit message")]
FIGURE_COLUMNS = [
    ("calls", "Calls"),
    ("errors", "Errors"),
    ("error_rate", "Error rate"),
    ("latency", "Mean latency"),
    ("p50", "P50"),
    ("p95", "P95"),
    ("tokens_in", "Input tokens"),
    ("tokens_out", "Output tokens"),
    ("cost", "Cost"),
    ("cost_per_call", "Cost / call"),
    ("feedback", "Feedback"),
    ("scores", "Mean scores"),
]
BOXED = {"padding": "8px", "border": f"1px solid {rx.color('gray', 5)}", "border_radius": "6px", "width": "100%"}
MONO = {"font_family": "var(--code-font-family, monospace)", "font_size": "13px", "white_space": "pre-wrap"}


def production_badge(version: Any) -> rx.Component:
    return rx.badge(
        rx.icon("rocket", size=12), "production ", version, color_scheme="green", variant="soft", high_contrast=True
    )


def messages(state: Any) -> rx.Component:
    def callout(text: Any, color: str, role: str) -> rx.Component:
        return rx.cond(
            text != "",
            rx.callout.root(rx.callout.text(text), color_scheme=color, high_contrast=True, size="1", role=role),
        )

    return rx.fragment(callout(state.error, "red", "alert"), callout(state.notice, "green", "status"))


def list_toolbar() -> rx.Component:
    S = PromptsState
    search = search_box(S.search, S.search_prompts, field_id="prompt-search", placeholder="prompt name…")
    new = rx.button(rx.icon("plus", size=14), "New prompt", on_click=PromptFormState.open_new, id="prompt-new")
    return rx.flex(search, rx.spacer(), rx.cond(S.can_create, new), gap="12px", wrap="wrap", width="100%")


def list_row(r: Any) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.link(r["name"], href=r["href"], weight="medium"),
                rx.text(r["description"], size="1", color=MUTED),
                spacing="0",
            ),
            style=WRAP,
        ),
        rx.table.cell(r["kind"]),
        rx.table.cell(r["latest"]),
        rx.table.cell(
            rx.flex(
                rx.cond(r["production"] != "", production_badge(r["production"])),
                rx.text(r["labels"], size="1"),
                gap="6px",
                wrap="wrap",
                align="center",
            )
        ),
        rx.table.cell(r["updated"], white_space="nowrap"),
        rx.table.cell(r["calls"], custom_attrs={"data-cell": "calls"}),
        custom_attrs={"data-prompt": r["name"]},
    )


def prompt_table() -> rx.Component:
    S = PromptsState
    table = scroll_table("prompt-table", column_headers(*LIST_COLUMNS), S.rows, list_row)
    empty = rx.text(
        rx.cond(S.search != "", "No prompt matches this search.", "No prompts yet."), color=MUTED, id="prompts-empty"
    )
    return rx.cond(S.rows.length() > 0, table, empty)


def pager() -> rx.Component:
    S = PromptsState
    return rx.hstack(
        rx.button("Previous", size="1", variant="soft", disabled=S.page <= 1, on_click=S.goto_page(S.page - 1)),
        rx.text(S.count_text, size="1", id="prompts-count"),
        rx.button("Next", size="1", variant="soft", disabled=S.page >= S.pages, on_click=S.goto_page(S.page + 1)),
        align="center",
        spacing="3",
    )


def detail_toolbar() -> rx.Component:
    S = PromptDetailState
    return rx.flex(
        rx.segmented_control.root(
            *[rx.segmented_control.item(RANGE_LABELS[r], value=r) for r in RANGES],
            value=S.range_name,
            on_change=lambda v: S.set_param("range", v),
            aria_label="Range of the figures",
            size="1",
        ),
        rx.spacer(),
        rx.cond(
            S.can_edit & S.found,
            rx.hstack(
                rx.button(
                    rx.icon("file-plus", size=14),
                    "New version",
                    on_click=PromptFormState.open_version,
                    id="prompt-new-version",
                ),
                rx.button(
                    rx.icon("tag", size=14),
                    "Move label",
                    variant="soft",
                    on_click=PromptLabelState.open_move,
                    id="prompt-move-label",
                ),
                spacing="2",
            ),
        ),
        export_buttons(S),
        rx.text("updated ", S.as_of, size="1", color=MUTED),
        gap="12px",
        wrap="wrap",
        align="center",
        width="100%",
    )


def header() -> rx.Component:
    S = PromptDetailState

    def label(item: Any) -> rx.Component:
        return rx.cond(
            item["label"] == "production",
            production_badge(item["version"]),
            rx.badge(item["label"], " ", item["version"], variant="soft", color_scheme="gray", high_contrast=True),
        )

    return rx.vstack(
        rx.hstack(
            rx.heading(S.title, size="5", as_="h2", style=WRAP),
            rx.badge(S.kind, variant="outline"),
            align="center",
            spacing="3",
        ),
        rx.cond(S.description != "", rx.text(S.description, size="2", color=MUTED)),
        rx.flex(
            rx.text("Labels:", size="2"),
            rx.foreach(S.labels, label),
            rx.cond(S.labels.length() == 0, rx.text("none yet", size="2", color=MUTED)),
            gap="6px",
            wrap="wrap",
            align="center",
            id="prompt-labels",
        ),
        spacing="2",
        width="100%",
    )


def version_table() -> rx.Component:
    S = PromptDetailState

    def row(r: Any) -> rx.Component:
        chosen = S.selected == r["version"]
        return rx.table.row(
            rx.table.row_header_cell(rx.text(r["title"], weight="bold")),
            rx.table.cell(rx.text(r["labels"], size="1")),
            *[rx.table.cell(r[key], style=WRAP) for key, _ in VERSION_COLUMNS],
            rx.table.cell(
                rx.button(
                    rx.cond(chosen, "Shown", "View"),
                    size="1",
                    variant=rx.cond(chosen, "solid", "soft"),
                    on_click=S.select_version(r["version"]),
                    aria_label="View version " + r["version"],
                    aria_pressed=rx.cond(chosen, "true", "false"),
                )
            ),
            custom_attrs={"data-version": r["version"]},
        )

    headers = ["Version", "Labels", *[h for _, h in VERSION_COLUMNS], "Template"]
    return section("Versions", scroll_table("prompt-versions", column_headers(*headers), S.versions, row))


def figures_table() -> rx.Component:
    S = PromptDetailState

    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(
                rx.vstack(rx.text(r["title"], weight="bold"), rx.text(r["labels"], size="1", color=MUTED), spacing="0")
            ),
            rx.table.cell(
                rx.link(r["calls"], href=r["calls_href"], aria_label="See the calls of " + r["title"].to(str)),
                custom_attrs={"data-cell": "calls"},
            ),
            *[
                rx.table.cell(r[key], custom_attrs={"data-cell": key}, style=WRAP)
                for key, _ in FIGURE_COLUMNS
                if key != "calls"
            ],
            custom_attrs={"data-version": r["version"]},
        )

    headers = ["Version", *[h for _, h in FIGURE_COLUMNS]]
    return section(
        "Usage per version",
        rx.text(
            "Calls and feedback from ",
            S.window,
            ". Percentiles are estimated from latency histograms.",
            size="1",
            color=MUTED,
        ),
        scroll_table("prompt-figures", column_headers(*headers), S.figures, row),
    )


def version_view() -> rx.Component:
    S = PromptDetailState

    def message(m: Any) -> rx.Component:
        return rx.box(
            rx.badge(m["role"], variant="soft", color_scheme="indigo", high_contrast=True),
            rx.text(m["content"], style=MONO, margin_top="4px"),
            style=BOXED,
        )

    body = rx.cond(
        S.view["kind"] == "chat",
        rx.vstack(rx.foreach(S.view_messages, message), spacing="2", width="100%"),
        rx.box(rx.text(S.view["text"], style=MONO), style=BOXED),
    )
    return section(
        S.view["title"],
        rx.text(S.view["meta"], " — ", S.view["message"], size="1", color=MUTED),
        body,
        rx.text("Variables: ", S.view["variables"], size="2"),
        rx.cond(
            S.view["config"] != "",
            rx.vstack(rx.text("Model settings", size="2"), rx.text(S.view["config"], style=MONO), width="100%"),
        ),
        id="prompt-version-view",
    )


def diff_picker(side: str, label: str, value: Any) -> rx.Component:
    S = PromptDetailState
    label_id = f"diff-{side}-label"
    return rx.hstack(
        rx.text(label, size="2", id=label_id),
        rx.select.root(
            rx.select.trigger(aria_labelledby=label_id, id=f"diff-{side}"),
            rx.select.content(rx.foreach(S.options, lambda o: rx.select.item(o["label"], value=o["value"]))),
            value=rx.cond(value == "", ANY, value),
            on_change=lambda v: S.choose_diff(side, v),
            size="1",
        ),
        align="center",
        spacing="2",
    )


def _mark(kind: str) -> dict[str, str]:
    return {"data-diff": kind}


def diff_line(r: Any) -> rx.Component:
    cells = (
        rx.el.span(r["old"], aria_hidden="true", style={"width": "3em", "color": MUTED, "text_align": "right"}),
        rx.el.span(r["new"], aria_hidden="true", style={"width": "3em", "color": MUTED, "text_align": "right"}),
        rx.el.span(r["sign"], style={"width": "1.2em", "font_weight": "bold"}),
        rx.el.span(r["text"], style={"flex": "1", "white_space": "pre-wrap", "overflow_wrap": "anywhere"}),
        rx.el.span(r["word"], style={"font_size": "11px", "font_weight": "bold"}),
    )
    style = {"display": "flex", "gap": "8px", "padding": "0 6px", "text_decoration": "none", **MONO}
    return rx.match(
        r["kind"],
        ("added", rx.el.ins(*cells, style={**style, "background": rx.color("grass", 4)}, custom_attrs=_mark("added"))),
        (
            "removed",
            rx.el.del_(*cells, style={**style, "background": rx.color("red", 4)}, custom_attrs=_mark("removed")),
        ),
        (
            "hunk",
            rx.el.div(r["text"], style={**style, "color": MUTED, "padding_top": "6px"}, custom_attrs=_mark("hunk")),
        ),
        rx.el.div(*cells, style=style, custom_attrs=_mark("same")),
    )


def diff_view() -> rx.Component:
    S = PromptDetailState
    return section(
        "Compare versions",
        rx.flex(diff_picker("from", "From", S.diff_from), diff_picker("to", "To", S.diff_to), gap="16px", wrap="wrap"),
        rx.text(S.diff_summary, size="2", role="status", id="prompt-diff-summary"),
        rx.box(rx.foreach(S.diff, diff_line), width="100%", overflow_x="auto", id="prompt-diff"),
    )
