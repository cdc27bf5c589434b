"""Widgets of the routing rules page: alias rows, the weight and policy inputs, fallback chips, preview bars,
the create-alias dialog. Every user-provided name renders as text."""

from __future__ import annotations

import reflex as rx

from llm_console.components.tables import MUTED, WRAP
from llm_console.state.routing import RoutingEditState as E
from llm_console.state.routing import RoutingState as S


def callouts() -> rx.Component:
    return rx.fragment(
        rx.cond(
            S.error != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-alert")),
                rx.callout.text(S.error),
                color_scheme="red",
                size="1",
                role="alert",
                id="routing-error",
            ),
        ),
        rx.cond(
            S.notice != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("check")),
                rx.callout.text(S.notice),
                size="1",
                role="status",
                id="routing-notice",
            ),
        ),
    )


def alias_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                rx.text(row["alias"], style=WRAP, text_align="left"),
                variant=rx.cond(row["selected"] == "yes", "soft", "ghost"),
                size="1",
                on_click=S.select_alias(row["alias"]),
                aria_current=rx.cond(row["selected"] == "yes", "true", "false"),
                height="auto",
                min_height="24px",
            )
        ),
        rx.table.cell(rx.text(row["strategy"], size="1")),
        rx.table.cell(rx.text(row["deployments"], size="1", white_space="nowrap")),
    )


def create_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("plus", size=14), "Create alias", size="1", id="routing-create")),
        rx.dialog.content(
            rx.dialog.title("Create alias"),
            rx.dialog.description("The model name clients will ask for.", size="2"),
            rx.form(
                rx.vstack(
                    rx.el.label("Alias", html_for="new-alias", class_name="rt-Text rt-r-size-2"),
                    rx.input(id="new-alias", name="alias", required=True, max_length=300, width="100%"),
                    rx.text("First deployment (optional)", size="2", id="new-alias-deployment-label"),
                    rx.select.root(
                        rx.select.trigger(aria_labelledby="new-alias-deployment-label", width="100%"),
                        rx.select.content(
                            rx.select.item("None yet", value="none"),
                            rx.foreach(S.deployment_options, lambda o: rx.select.item(o["label"], value=o["value"])),
                        ),
                        name="deployment",
                        default_value="none",
                    ),
                    rx.cond(
                        E.create_error != "",
                        rx.callout.root(rx.callout.text(E.create_error), color_scheme="red", size="1", role="alert"),
                    ),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        rx.button("Create", type="submit"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="2",
                    width="100%",
                ),
                on_submit=E.create_alias,
                reset_on_submit=False,
            ),
            max_width="480px",
        ),
        open=E.create_open,
        on_open_change=E.set_create_open,
    )


def link_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.text(row["deployment"], size="2", style=WRAP),
            rx.cond(row["status"] != "", rx.badge(row["status"], color_scheme="gray", variant="soft")),
        ),
        rx.table.cell(
            rx.input(
                type="number",
                min=0,
                max=1000,
                step=1,
                default_value=row["weight"],
                key=S.form_key.to_string() + "-" + row["id"],
                on_blur=lambda v: E.set_weight(row["id"], v),
                disabled=~S.can_edit,
                aria_label="Weight of " + row["deployment"],
                size="1",
                width="80px",
            )
        ),
        rx.table.cell(
            rx.cond(
                S.can_edit,
                rx.icon_button(
                    rx.icon("x", size=14),
                    variant="ghost",
                    size="1",
                    on_click=E.remove_link(row["id"]),
                    aria_label="Remove " + row["deployment"],
                ),
            )
        ),
    )


def fallback_chip(name: rx.Var, index: rx.Var) -> rx.Component:
    return rx.badge(
        rx.text((index + 1).to_string() + ". ", as_="span"),
        rx.text(name, as_="span", style=WRAP),
        rx.cond(
            S.can_edit,
            rx.icon_button(
                rx.icon("x", size=12),
                variant="ghost",
                size="1",
                on_click=E.remove_fallback(name),
                aria_label="Remove fallback " + name,
            ),
        ),
        variant="soft",
        size="2",
    )


def number_field(name: str, label: str) -> rx.Component:
    input_id = "routing-" + name.replace("_", "-")
    return rx.vstack(
        rx.el.label(label, html_for=input_id, class_name="rt-Text rt-r-size-2"),
        rx.input(
            id=input_id,
            type="number",
            min=0,
            step="any",
            default_value=S.fields[name],
            key=S.form_key.to_string() + "-" + name,
            on_blur=lambda v: E.set_field(name, v),
            disabled=~S.can_edit,
            placeholder="inherit",
            size="2",
            width="140px",
        ),
        rx.text(S.hints[name], size="1", color=MUTED),
        spacing="1",
    )


def engine_fallback_field(options: list[tuple[str, str]]) -> rx.Component:
    """What engine-aware routing does without fresh engine samples: shown only while the draft is engine-aware.
    `options` are (strategy, label) pairs; an alias that stored none shows least-busy, the gateway's default."""
    return rx.cond(
        S.strategy == "engine_aware",
        rx.vstack(
            rx.text("Fallback strategy", size="2", id="routing-engine-fallback-label"),
            rx.select.root(
                rx.select.trigger(
                    id="routing-engine-fallback", aria_labelledby="routing-engine-fallback-label", min_width="200px"
                ),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in options]),
                value=rx.cond(S.fields["engine_fallback"], S.fields["engine_fallback"], "least_busy"),
                on_change=lambda v: E.set_field("engine_fallback", v),
                disabled=~S.can_edit,
                size="2",
            ),
            rx.text(S.hints["engine_fallback"], size="1", color=MUTED, id="routing-engine-fallback-hint"),
            spacing="1",
            margin_top="8px",
        ),
    )


def preview_bar(row: rx.Var) -> rx.Component:
    fallback = row["kind"] == "fallback"
    return rx.vstack(
        rx.hstack(
            rx.text(row["deployment"], size="2", weight="medium", style=WRAP),
            rx.cond(fallback, rx.badge(rx.text("fallback ", as_="span"), rx.text(row["alias"], as_="span"))),
            rx.spacer(),
            rx.text(row["count"], size="2", white_space="nowrap", class_name="preview-count"),
            width="100%",
            align="center",
        ),
        rx.box(
            rx.box(
                width=row["share"],
                height="100%",
                background=rx.cond(fallback, rx.color("amber", 9), rx.color("accent", 9)),
                border_radius="4px",
            ),
            height="10px",
            width="100%",
            background=rx.color("gray", 4),
            border_radius="4px",
            role="img",
            aria_label=row["deployment"] + ": " + row["count"] + " requests",
        ),
        rx.text(row["note"], size="1", color=MUTED, class_name="preview-note"),
        spacing="1",
        width="100%",
        custom_attrs={"data-preview-deployment": row["deployment"]},
    )
