"""Widgets of the Organization page: messages, a labelled select, a confirm button, a shown-once secret."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.auth.roles import ROLES as ALL_ROLES
from llm_console.components.tables import WRAP

ROLES = list(ALL_ROLES)


def messages(error: Any, notice: Any) -> rx.Component:
    """The last refusal (role="alert") or confirmation of a tab."""
    return rx.fragment(
        rx.cond(
            error != "",
            rx.callout(error, icon="triangle-alert", color_scheme="red", role="alert", size="1", width="100%"),
        ),
        rx.cond(
            notice != "",
            rx.callout(notice, icon="check", color_scheme="green", role="status", size="1", width="100%"),
        ),
    )


def labelled_select(
    label: str,
    name: str,
    items: list[str] | Any,
    *,
    select_id: str,
    default: str = "",
    options: Any = None,
    width: str = "100%",
) -> rx.Component:
    """A form select: `items` as plain values, or `options` ({"value", "label"} dicts) after an "(none)" item."""
    content = (
        rx.select.content(rx.foreach(items, lambda v: rx.select.item(v, value=v)))
        if options is None
        else rx.select.content(
            rx.select.item("(none)", value="__none__"),
            rx.foreach(options, lambda o: rx.select.item(o["label"], value=o["value"])),
        )
    )
    return rx.vstack(
        rx.text(label, size="2", id=f"{select_id}-label"),
        rx.select.root(
            rx.select.trigger(id=select_id, aria_labelledby=f"{select_id}-label", width="100%"),
            content,
            name=name,
            default_value=default or ("__none__" if options is not None else ""),
        ),
        spacing="1",
        width=width,
    )


def text_field(label: str, name: str, input_id: str, *, width: str = "100%", **props: Any) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=input_id, class_name="rt-Text rt-r-size-2"),
        rx.input(id=input_id, name=name, width="100%", **props),
        spacing="1",
        width=width,
    )


def confirm_button(label: str, title: str, description: Any, on_confirm: Any, **props: Any) -> rx.Component:
    """A red button that asks before doing something that cannot be undone."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button(label, color_scheme="red", variant="soft", size="1", **props)),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(description, size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(label, color_scheme="red", on_click=on_confirm)),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
            max_width="460px",
        ),
    )


def shown_once(value: Any, *, value_id: str, what: str, copy_label: str) -> rx.Component:
    """A secret or link the server will not show again, with a copy button."""
    return rx.vstack(
        rx.callout(
            f"Copy this {what} now: it will not be shown again.",
            icon="triangle-alert",
            color_scheme="amber",
            size="1",
            role="alert",
        ),
        rx.code(value, id=value_id, size="2", variant="outline", style=WRAP),
        rx.button(rx.icon("copy", size=14), copy_label, on_click=rx.set_clipboard(value), variant="soft", size="1"),
        spacing="2",
        width="100%",
        align="start",
    )


def pager(page: Any, pages: Any, total: Any, goto: Any) -> rx.Component:
    return rx.hstack(
        rx.button("Previous", on_click=goto(page - 1), disabled=page <= 1, variant="soft", size="1"),
        rx.text(f"Page {page} of {pages} · {total} total", size="1", color=rx.color("gray", 11)),
        rx.button("Next", on_click=goto(page + 1), disabled=page >= pages, variant="soft", size="1"),
        align="center",
        spacing="3",
    )
