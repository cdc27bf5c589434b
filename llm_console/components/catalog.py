"""Model catalog widgets: the sortable list, the capabilities matrix, a model's facts and usage examples.

Every name an operator typed (aliases, descriptions, notes) is rendered as text; the only links built from
data are the page's own URLs (made by the server, URL-encoded) and Hugging Face links from a validated repo id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from llm_console.components.tables import MUTED
from llm_console.components.trace import code_block, fact
from llm_console.state.catalog import CatalogState

S = CatalogState
LIST_COLUMNS = [
    ("alias", "Model"),
    ("type", "Type"),
    ("provider", "Provider"),
    ("size", "Size"),
    ("quantization", "Quantization"),
    ("context", "Context"),
    ("hf", "Hugging Face"),
    ("availability", "Availability"),
]
FLAGS = [("streaming", "Streaming"), ("tools", "Tools"), ("vision", "Vision"), ("json_mode", "JSON mode")]


def column_headers(*names: str) -> list[rx.Component]:
    """Header cells scoped as column headers, for `scroll_table`."""
    return [rx.table.column_header_cell(h, scope="col") for h in names]


def scroll_table(table_id: str, headers: list[rx.Component], rows: Any, render: Callable[[Any], Any]) -> rx.Component:
    """A display table that scrolls sideways on narrow screens instead of squeezing its columns."""
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*headers)),
            rx.table.body(rx.foreach(rows, render)),
            variant="surface",
            size="1",
            width="100%",
            id=table_id,
        ),
        overflow_x="auto",
        width="100%",
    )


def availability_badge(status: Any) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("available", "green"), ("loading", "amber"), ("error", "red"), "gray"),
        variant="soft",
        high_contrast=True,
    )


def copy_button(text: Any, label: Any, *, button_id: str = "") -> rx.Component:
    return rx.icon_button(
        rx.icon("copy", size=14),
        on_click=[rx.set_clipboard(text), rx.toast.info("Copied to the clipboard", duration=2000)],
        variant="soft",
        size="1",
        aria_label=label,
        title=label,
        id=button_id or None,
    )


def hf_link(url: Any, label: Any) -> rx.Component:
    """A Hugging Face link only when the server built one from a valid repo id; otherwise plain text."""
    return rx.cond(url != "", rx.link(label, href=url, is_external=True, rel="noopener noreferrer"), rx.text(label))


def search_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                id="catalog-search",
                name="q",
                default_value=S.search,
                key=S.search,
                placeholder="Search name, description, model, provider…",
                aria_label="Search models",
                max_length=200,
                width="320px",
                size="2",
            ),
            rx.button("Search", type="submit", variant="soft", size="2"),
            rx.cond(S.search != "", rx.link("Clear", href="/models", size="2")),
            align="center",
            spacing="2",
        ),
        on_submit=S.search_catalog,
        reset_on_submit=False,
        role="search",
    )


def sort_header(key: str, label: str) -> rx.Component:
    return rx.table.column_header_cell(
        rx.link(label, href=S.sort_hrefs[key], underline="hover", color="inherit"),
        aria_sort=S.sort_marks[key],
    )


def list_row(r: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.checkbox(
                checked=S.selected.contains(r["alias"]),
                on_change=lambda _: S.toggle_compare(r["alias"]),
                aria_label="Compare " + r["alias"].to(str),
            )
        ),
        rx.table.cell(
            rx.vstack(
                rx.link(r["alias"], href=r["href"], weight="medium"),
                rx.cond(r["deprecated"] != "", rx.badge("deprecated", color_scheme="red", variant="soft")),
                spacing="1",
            ),
            style={"overflow_wrap": "anywhere"},
        ),
        rx.table.cell(r["type"]),
        rx.table.cell(r["provider"], style={"overflow_wrap": "anywhere"}),
        rx.table.cell(r["size"]),
        rx.table.cell(r["quantization"]),
        rx.table.cell(r["context"]),
        rx.table.cell(hf_link(r["hf_url"], r["hf"]), style={"overflow_wrap": "anywhere"}),
        rx.table.cell(availability_badge(r["availability"]), title=r["availability_hint"]),
        custom_attrs={"data-alias": r["alias"]},
    )


def catalog_table() -> rx.Component:
    headers = [rx.table.column_header_cell("Compare"), *[sort_header(k, label) for k, label in LIST_COLUMNS]]
    return scroll_table("catalog-table", headers, S.rows, list_row)


def compare_bar() -> rx.Component:
    n = S.selected.length()
    return rx.hstack(
        rx.text(n.to(str) + " of 4 selected to compare", size="2", color=MUTED),
        rx.cond(
            n >= 2,
            rx.link(rx.button("Compare", size="1"), href=S.compare_href, id="catalog-compare"),
            rx.button("Compare", size="1", disabled=True),
        ),
        rx.cond(n > 0, rx.button("Clear selection", size="1", variant="soft", on_click=S.clear_compare)),
        align="center",
        spacing="3",
    )


def tri(value: Any) -> rx.Component:
    return rx.badge(
        value,
        color_scheme=rx.match(value, ("yes", "green"), ("no", "gray"), "gray"),
        variant=rx.cond(value == "unknown", "outline", "soft"),
    )


def capability_matrix() -> rx.Component:
    def matrix_row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(rx.link(r["alias"], href=r["href"]), style={"overflow_wrap": "anywhere"}),
            *[rx.table.cell(tri(r[k])) for k, _ in FLAGS],
            rx.table.cell(r["embedding_dims"]),
        )

    headers = [rx.table.column_header_cell(h) for h in ["Model", *[label for _, label in FLAGS], "Embedding dims"]]
    return scroll_table("capability-matrix", headers, S.matrix, matrix_row)


def deprecation_notices() -> rx.Component:
    return rx.cond(
        S.notices.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle-alert")),
            rx.callout.text(
                rx.foreach(S.notices, lambda n: rx.box(rx.link(n["text"], href=n["href"], size="2"))),
            ),
            color_scheme="amber",
            high_contrast=True,
            size="1",
            role="status",
            id="deprecation-notices",
        ),
    )


def error_callout(text: Any) -> rx.Component:
    return rx.cond(
        text != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("circle-alert")),
            rx.callout.text(text),
            color_scheme="red",
            size="1",
            role="alert",
        ),
    )


def endpoint_box() -> rx.Component:
    d = S.detail
    return rx.vstack(
        rx.text("Endpoint", size="1", color=MUTED),
        rx.hstack(
            rx.code(d["endpoint"], id="catalog-endpoint", style={"overflow_wrap": "anywhere"}),
            copy_button(d["endpoint"], "Copy endpoint", button_id="copy-endpoint"),
            align="center",
            spacing="2",
        ),
        rx.text("Base URL for SDKs: ", rx.code(d["base_url"]), size="1", color=MUTED),
        spacing="1",
        width="100%",
    )


def detail_facts() -> rx.Component:
    d = S.detail
    return rx.flex(
        fact("Type", d["type"]),
        fact("Providers", d["providers"]),
        fact("Size", d["size"]),
        fact("Quantization", d["quantization"]),
        fact("Context length", d["context"]),
        fact("Version", d["version"]),
        fact("Price", d["price"]),
        rx.vstack(
            rx.text("Hugging Face", size="1", color=MUTED),
            hf_link(d["hf_url"], d["hf_repo"]),
            spacing="0",
            min_width="150px",
        ),
        rx.vstack(
            rx.text("Availability", size="1", color=MUTED),
            rx.hstack(availability_badge(d["availability"]), rx.text(d["availability_hint"], size="1")),
            spacing="0",
            min_width="150px",
        ),
        gap="12px",
        wrap="wrap",
        width="100%",
    )


def deprecation_callout() -> rx.Component:
    d = S.detail
    return rx.cond(
        d["deprecated"] != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle-alert")),
            rx.callout.text(
                rx.text("This model is deprecated.", weight="bold"),
                rx.cond(d["sunset"] != "", rx.text("Sunset: " + d["sunset"])),
                rx.text(d["deprecation_note"]),
            ),
            color_scheme="amber",
            high_contrast=True,
            role="status",
            id="deprecation-callout",
        ),
    )


def capability_list() -> rx.Component:
    return rx.flex(
        rx.foreach(S.caps, lambda c: rx.hstack(rx.text(c["name"], size="2"), tri(c["value"]), spacing="1")),
        rx.hstack(rx.text("Embedding dims", size="2"), rx.badge(S.detail["embedding_dims"], variant="soft")),
        gap="16px",
        wrap="wrap",
        id="capabilities",
    )


def deployments_table() -> rx.Component:
    def dep_row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.cell(r["name"], style={"overflow_wrap": "anywhere"}),
            rx.table.cell(r["model"], style={"overflow_wrap": "anywhere"}),
            rx.table.cell(r["provider"], style={"overflow_wrap": "anywhere"}),
            rx.table.cell(availability_badge(r["status"]), title=r["last_error"]),
            rx.table.cell(r["checked"]),
            rx.table.cell(r["max_model_len"]),
            rx.table.cell(r["owned_by"]),
            rx.table.cell(r["weight"]),
            rx.cond(S.can_edit, rx.table.cell(rx.code(r["upstream"]), style={"overflow_wrap": "anywhere"})),
        )

    names = ["Deployment", "Upstream model", "Provider", "Status", "Checked", "Max model len", "Owned by", "Weight"]
    headers = [
        *[rx.table.column_header_cell(h) for h in names],
        rx.cond(S.can_edit, rx.table.column_header_cell("Upstream URL")),
    ]
    return scroll_table("catalog-deployments", headers, S.deployments, dep_row)


def usage_examples() -> rx.Component:
    def panel(s: Any) -> rx.Component:
        return rx.tabs.content(
            rx.vstack(
                rx.hstack(
                    rx.spacer(),
                    copy_button(s["code"], "Copy " + s["title"].to(str) + " example"),
                    width="100%",
                ),
                code_block(s["code"]),
                width="100%",
                spacing="1",
            ),
            value=s["id"],
            padding_top="8px",
        )

    return rx.tabs.root(
        rx.tabs.list(rx.foreach(S.snippets, lambda s: rx.tabs.trigger(s["title"], value=s["id"]))),
        rx.foreach(S.snippets, panel),
        default_value="curl",
        width="100%",
        id="usage-examples",
    )
