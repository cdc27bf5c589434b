"""Form building blocks: labelled fields, a form dialog, a confirmation dialog and message callouts.

Every control gets an id its label points at (so a click on the label focuses it and screen readers name
it), fields are uncontrolled (`default_value`, read on submit), and messages use role alert or status.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

LABEL_CLASS = "rt-Text rt-r-size-2 rt-r-weight-medium"


def _hint(field_id: str, hint: Any) -> rx.Component:
    if isinstance(hint, str) and not hint:
        return rx.fragment()
    return rx.text(hint, size="1", color=rx.color("gray", 11), id=f"{field_id}-hint")


def labelled(label: str, control: rx.Component, *, field_id: str, hint: Any = "") -> rx.Component:
    """A label tied to its control, with an optional hint under it."""
    return rx.vstack(
        rx.el.label(label, html_for=field_id, class_name=LABEL_CLASS),
        control,
        _hint(field_id, hint),
        spacing="1",
        width="100%",
    )


def text_field(
    label: str,
    name: str,
    *,
    field_id: str,
    default_value: Any = "",
    hint: Any = "",
    input_type: str = "text",
    required: bool = False,
    placeholder: Any = "",
    max_length: int = 300,
    **props: Any,
) -> rx.Component:
    """A labelled single-line input submitted as `name`."""
    control = rx.input(
        id=field_id,
        name=name,
        type=input_type,
        default_value=default_value,
        required=required,
        placeholder=placeholder,
        max_length=max_length,
        width="100%",
        aria_describedby=f"{field_id}-hint" if not (isinstance(hint, str) and not hint) else None,
        **props,
    )
    return labelled(label, control, field_id=field_id, hint=hint)


def secret_field(label: str, name: str, *, field_id: str, hint: Any = "", placeholder: Any = "") -> rx.Component:
    """A password-type input that is never prefilled: secrets go to the server, never back."""
    return text_field(
        label,
        name,
        field_id=field_id,
        hint=hint,
        input_type="password",
        placeholder=placeholder,
        max_length=4096,
        auto_complete="new-password",
        spell_check=False,
    )


def select_field(
    label: str, name: str, options: Any, *, field_id: str, default_value: Any, hint: Any = ""
) -> rx.Component:
    """A labelled select over `options`: (value, label) pairs, or a Var of {"value", "label"} dicts."""
    if isinstance(options, list):
        items = [rx.select.item(text, value=value) for value, text in options]
    else:
        items = [rx.foreach(options, lambda o: rx.select.item(o["label"], value=o["value"]))]
    control = rx.select.root(
        rx.select.trigger(id=field_id, width="100%"),
        rx.select.content(*items),
        name=name,
        default_value=default_value,
    )
    return labelled(label, control, field_id=field_id, hint=hint)


def check_field(label: str, name: str, *, field_id: str, hint: Any = "", default_checked: Any = False) -> rx.Component:
    """A checkbox inside its label, submitted as `name` = "on" when ticked."""
    return rx.vstack(
        rx.checkbox(label, id=field_id, name=name, default_checked=default_checked),
        _hint(field_id, hint),
        spacing="1",
        width="100%",
    )


def form_error(message: Any, **props: Any) -> rx.Component:
    """A red callout announced to screen readers, shown while `message` is not empty."""
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", size="1", width="100%", **props),
    )


def form_notice(message: Any, **props: Any) -> rx.Component:
    """A green status callout, shown while `message` is not empty."""
    return rx.cond(
        message != "",
        rx.callout(message, icon="circle-check", color_scheme="green", role="status", size="1", width="100%", **props),
    )


def form_dialog(
    title: Any,
    *fields: rx.Component,
    is_open: Any,
    on_open_change: Any,
    on_submit: Any,
    error: Any,
    submit_id: str,
    submit_label: str = "Save",
    description: Any = "",
    dialog_id: str = "",
) -> rx.Component:
    """A modal form: its fields, the error of the last try, Cancel and Save; it stays open until saved."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(description, size="2", color=rx.color("gray", 11)),
            rx.form(
                rx.vstack(
                    *fields,
                    form_error(error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", type="button", variant="soft", color_scheme="gray")),
                        rx.button(submit_label, type="submit", id=submit_id),
                        justify="end",
                        width="100%",
                        spacing="3",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=on_submit,
                reset_on_submit=False,
            ),
            max_width="560px",
            id=dialog_id or None,
        ),
        open=is_open,
        on_open_change=on_open_change,
    )


def confirm_dialog(
    title: Any, message: Any, *, is_open: Any, on_confirm: Any, on_cancel: Any, confirm_label: str, confirm_id: str
) -> rx.Component:
    """Ask before something that cannot be undone; the message says what else goes with it."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(message, size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray", on_click=on_cancel)),
                rx.alert_dialog.action(
                    rx.button(confirm_label, color_scheme="red", on_click=on_confirm, id=confirm_id)
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
            max_width="480px",
        ),
        open=is_open,
    )
