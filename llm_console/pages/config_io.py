"""Config as code: paste YAML (ours or a LiteLLM config.yaml), preview the changes, apply them; export YAML."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.layout import console_page
from llm_console.components.widgets import section
from llm_console.state.config_io import ConfigIOState as S

COLUMNS = ["Object", "Name", "Action", "Changes"]
ACTION_COLORS = (("create", "green"), ("update", "blue"), ("delete", "red"))


def switch(label: str, checked: rx.Var, on_change: rx.EventHandler, switch_id: str) -> rx.Component:
    return rx.el.label(
        rx.hstack(rx.switch(checked=checked, on_change=on_change, id=switch_id), rx.text(label, size="2"), spacing="2"),
        html_for=switch_id,
    )


def editor() -> rx.Component:
    return section(
        "Import",
        rx.text(
            "Paste a configuration document (version: 1) or a LiteLLM proxy config.yaml. Preview shows every change; "
            "nothing is written until you apply. API keys: write os.environ/NAME or the key itself (stored encrypted).",
            size="2",
            color=rx.color("gray", 11),
        ),
        rx.text_area(
            value=S.text,
            on_change=S.set_text,
            debounce_timeout=300,
            placeholder="version: 1\nproviders: ...",
            rows="18",
            width="100%",
            font_family="monospace",
            spell_check=False,
            id="config-text",
            aria_label="Configuration YAML",
        ),
        rx.flex(
            switch("LiteLLM config", S.litellm, S.set_litellm, "litellm-switch"),
            rx.cond(
                S.can_allow_private,
                switch(
                    "Allow private hosts (add them to the upstream allow-list)",
                    S.allow_private,
                    S.set_allow_private,
                    "allow-private-switch",
                ),
            ),
            rx.spacer(),
            rx.button(
                "Load current configuration", variant="soft", size="2", on_click=S.load_current, id="load-current"
            ),
            rx.button("Preview changes", size="2", on_click=S.preview, id="preview-button"),
            rx.button(
                "Apply", size="2", color_scheme="green", on_click=S.apply, disabled=~S.can_apply, id="apply-button"
            ),
            gap="12px",
            wrap="wrap",
            align="center",
            width="100%",
        ),
        spacing="3",
    )


def messages() -> rx.Component:
    return rx.vstack(
        rx.cond(
            S.problems.length() > 0,
            rx.callout.root(
                rx.callout.icon(rx.icon("triangle-alert")),
                rx.vstack(rx.foreach(S.problems, lambda p: rx.callout.text(p)), spacing="1"),
                color_scheme="red",
                role="alert",
                id="config-error",
                width="100%",
            ),
        ),
        rx.cond(
            S.warnings.length() > 0,
            rx.callout.root(
                rx.callout.icon(rx.icon("info")),
                rx.vstack(rx.foreach(S.warnings, lambda w: rx.callout.text(w)), spacing="1"),
                color_scheme="amber",
                id="config-warnings",
                width="100%",
            ),
        ),
        rx.cond(
            S.result != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-check")),
                rx.callout.text(S.result),
                color_scheme="green",
                role="status",
                id="config-result",
                width="100%",
            ),
        ),
        width="100%",
        spacing="2",
    )


def diff_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["kind"]),
        rx.table.cell(r["name"], style={"overflow_wrap": "anywhere"}),
        rx.table.cell(rx.badge(r["action"], color_scheme=rx.match(r["action"], *ACTION_COLORS, "gray"))),
        rx.table.cell(rx.text(r["changes"], size="1", white_space="pre-wrap", font_family="monospace")),
        custom_attrs={"data-action": r["action"]},
    )


def diff() -> rx.Component:
    return rx.cond(
        S.summary != "",
        section(
            "Changes",
            rx.text(S.summary, size="2", id="config-summary"),
            rx.cond(
                S.rows.length() > 0,
                rx.box(
                    rx.table.root(
                        rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in COLUMNS])),
                        rx.table.body(rx.foreach(S.rows, diff_row)),
                        variant="surface",
                        size="1",
                        width="100%",
                        id="config-diff",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
            ),
        ),
    )


def exporter() -> rx.Component:
    return section(
        "Export",
        rx.text(
            "The whole configuration as YAML: providers, deployments, aliases, prices, teams, team budgets and rate "
            "limits, and the upstream allow-list. API keys are never included (has_api_key says one is stored).",
            size="2",
            color=rx.color("gray", 11),
        ),
        rx.button(
            rx.icon("download", size=16),
            "Export YAML",
            variant="outline",
            size="2",
            on_click=S.export,
            id="export-button",
            width="fit-content",
        ),
    )


@console_page(routes.CONFIG_IO, "Config as code", on_load=[S.load])
def page() -> rx.Component:
    return rx.cond(
        S.allowed,
        rx.vstack(editor(), messages(), diff(), exporter(), spacing="4", width="100%"),
        rx.callout.root(
            rx.callout.icon(rx.icon("lock")),
            rx.callout.text("Config as code needs the operator role: it shows upstream hosts and changes routing."),
            color_scheme="gray",
            id="config-forbidden",
        ),
    )
