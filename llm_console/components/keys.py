"""Widgets of the keys page: the table with its sparklines, the create/edit dialog, the confirmations and the
one-time secret. Names and owners render as text; only a key's display prefix is ever shown."""

from __future__ import annotations

import reflex as rx

from llm_console.components.filters import search_box
from llm_console.components.tables import WRAP
from llm_console.presenters.keys import SPARK_HEIGHT_PX
from llm_console.services.key_list import SPARK_DAYS
from llm_console.state.key_forms import KeyFormState
from llm_console.state.keys import KeysState

COLUMNS = ["Name", "Key", "Owner", "Models", "Expires", "Status", "Limits", "Budget", "Last 7 days", "Actions"]
STATUS_ITEMS = [("all", "All"), ("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]


def key_status(status: rx.Var) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("active", "green"), ("expired", "amber"), "gray"),
        variant="soft",
        high_contrast=True,
    )


def sparkline(r: rx.Var) -> rx.Component:
    """Seven bars, one per UTC day, oldest first; the figures are in the label for screen readers."""
    bar_row = rx.hstack(
        *[
            rx.box(width="5px", height=r[f"bar{i}"], background=rx.color("accent", 9), border_radius="1px")
            for i in range(SPARK_DAYS)
        ],
        spacing="1",
        align="end",
        height=f"{SPARK_HEIGHT_PX}px",
        role="img",
        aria_label=r["spark_label"],
        title=r["spark_label"],
    )
    return rx.hstack(bar_row, rx.text(r["requests_7d"], size="1"), align="end", spacing="2")


def _action(label: str, name: rx.Var, on_click: rx.event.EventType, color: str = "gray") -> rx.Component:
    return rx.button(
        label, size="1", variant="soft", color_scheme=color, on_click=on_click, aria_label=f"{label} " + name
    )


def key_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(r["name"], weight="medium"), style=WRAP),
        rx.table.cell(rx.code(r["prefix"], variant="ghost"), white_space="nowrap"),
        rx.table.cell(
            rx.vstack(rx.text(r["owner"]), rx.text(r["owner_type"], size="1", color=rx.color("gray", 11)), spacing="0"),
            style=WRAP,
        ),
        rx.table.cell(r["aliases"], style=WRAP),
        rx.table.cell(r["expires"]),
        rx.table.cell(key_status(r["status"])),
        rx.table.cell(r["limits"]),
        rx.table.cell(r["budget"]),
        rx.table.cell(sparkline(r)),
        rx.table.cell(
            rx.cond(
                r["manage"] != "",
                rx.hstack(
                    _action("Edit", r["name"], KeyFormState.open_edit(r["id"])),
                    rx.cond(r["rotate"] != "", _action("Rotate", r["name"], KeysState.ask("rotate", r["id"]))),
                    _action("Revoke", r["name"], KeysState.ask("revoke", r["id"]), "red"),
                    spacing="2",
                ),
            )
        ),
        custom_attrs={"data-key-id": r["id"]},
    )


def keys_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in COLUMNS])),
            rx.table.body(rx.foreach(KeysState.rows, key_row)),
            variant="surface",
            size="1",
            width="100%",
            id="keys-table",
        ),
        overflow_x="auto",
        width="100%",
    )


def filters() -> rx.Component:
    return rx.flex(
        search_box(KeysState.search, KeysState.search_keys, field_id="key-search", placeholder="name or prefix…"),
        rx.segmented_control.root(
            *[rx.segmented_control.item(label, value=value) for value, label in STATUS_ITEMS],
            value=KeysState.status,
            on_change=lambda v: KeysState.set_filter("status", v),
            aria_label="Key status",
            size="1",
        ),
        rx.spacer(),
        rx.cond(
            KeysState.can_create,
            rx.button(rx.icon("plus", size=14), "Create key", on_click=KeyFormState.open_create, id="create-key"),
        ),
        gap="12px",
        wrap="wrap",
        align="center",
        width="100%",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            "Previous",
            size="1",
            variant="soft",
            disabled=KeysState.page <= 1,
            on_click=KeysState.goto_page(KeysState.page - 1),
        ),
        rx.text(f"Page {KeysState.page} of {KeysState.pages} · {KeysState.total} keys", size="1", id="keys-count"),
        rx.button(
            "Next",
            size="1",
            variant="soft",
            disabled=KeysState.page >= KeysState.pages,
            on_click=KeysState.goto_page(KeysState.page + 1),
        ),
        align="center",
        spacing="3",
    )


def messages() -> rx.Component:
    return rx.fragment(
        rx.cond(
            KeysState.error != "",
            rx.callout.root(
                rx.callout.text(KeysState.error), color_scheme="red", high_contrast=True, size="1", role="alert"
            ),
        ),
        rx.cond(
            KeysState.notice != "",
            rx.callout.root(
                rx.callout.text(KeysState.notice), color_scheme="green", high_contrast=True, size="1", role="status"
            ),
        ),
    )


def confirm_dialog() -> rx.Component:
    revoke = KeysState.confirm_action == "revoke"
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(rx.cond(revoke, "Revoke this key?", "Rotate this key?")),
            rx.alert_dialog.description(
                rx.text(KeysState.confirm_name, weight="bold"),
                rx.cond(
                    revoke,
                    rx.text("Calls made with it are refused from now on. This cannot be undone."),
                    rx.text("A new secret replaces it; the current secret stops working now."),
                ),
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(
                        rx.cond(revoke, "Revoke key", "Rotate key"),
                        color_scheme=rx.cond(revoke, "red", "amber"),
                        on_click=KeysState.confirm,
                    )
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
        open=KeysState.confirm_action != "",
        on_open_change=KeysState.cancel,
    )


def secret_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(KeysState.secret_title),
            rx.dialog.description("Applications send it as 'Authorization: Bearer <key>'.", size="2"),
            rx.callout.root(
                rx.callout.icon(rx.icon("triangle-alert")),
                rx.callout.text("Copy this key now and store it safely. It will not be shown again."),
                color_scheme="amber",
                high_contrast=True,
                size="1",
                role="alert",
            ),
            rx.box(
                rx.code(KeysState.new_secret, id="new-key-secret", size="3", style=WRAP, variant="outline"),
                margin_y="12px",
            ),
            rx.hstack(
                rx.button(
                    rx.icon("copy", size=14),
                    "Copy key",
                    on_click=rx.set_clipboard(KeysState.new_secret),
                    variant="soft",
                ),
                rx.button("Done", on_click=KeysState.dismiss_secret(False)),
                justify="end",
                spacing="3",
            ),
            max_width="560px",
        ),
        open=KeysState.new_secret != "",
        on_open_change=KeysState.dismiss_secret,
    )


def _field(label: str, name: str, input_id: str, **props: object) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=input_id, class_name="rt-Text rt-r-size-2"),
        rx.input(id=input_id, name=name, default_value=KeyFormState.values[name], size="2", **props),
        spacing="1",
        width="100%",
    )


def _owner_picker() -> rx.Component:
    return rx.vstack(
        rx.text("Owner", size="2", id="key-owner-label"),
        rx.segmented_control.root(
            rx.foreach(KeyFormState.owner_types, lambda o: rx.segmented_control.item(o["label"], value=o["value"])),
            value=KeyFormState.owner_type,
            on_change=lambda v: KeyFormState.choose_owner_type(v),
            aria_label="Owner type",
            size="1",
        ),
        rx.select.root(
            rx.select.trigger(
                placeholder="Choose an owner", aria_labelledby="key-owner-label", id="key-owner", width="100%"
            ),
            rx.select.content(
                rx.foreach(KeyFormState.owner_options, lambda o: rx.select.item(o["label"], value=o["value"]))
            ),
            value=KeyFormState.owner_id,
            on_change=KeyFormState.choose_owner,
        ),
        spacing="2",
        width="100%",
    )


def _alias_picker() -> rx.Component:
    return rx.vstack(
        rx.text("Models", size="2"),
        rx.text("None ticked: the key may call every model.", size="1", color=rx.color("gray", 11)),
        rx.cond(
            KeyFormState.aliases.length() > 0,
            rx.flex(
                rx.foreach(
                    KeyFormState.aliases,
                    lambda a: rx.checkbox(
                        a,
                        checked=KeyFormState.selected.contains(a),
                        on_change=lambda c: KeyFormState.toggle_alias(a, c),
                    ),
                ),
                gap="8px 16px",
                wrap="wrap",
                max_height="140px",
                overflow_y="auto",
            ),
            rx.text("No models are configured yet.", size="1"),
        ),
        spacing="1",
        width="100%",
        role="group",
        aria_label="Models",
    )


def _admin_fields() -> rx.Component:
    return rx.vstack(
        rx.text("Rate limits and budget (admins only; empty means no limit)", size="2", weight="medium"),
        rx.grid(
            _field("Requests / minute", "rpm", "key-rpm", type="number", min=1),
            _field("Tokens / minute", "tpm", "key-tpm", type="number", min=1),
            _field("Requests / day", "rpd", "key-rpd", type="number", min=1),
            _field("Tokens / day", "tpd", "key-tpd", type="number", min=1),
            _field("Daily budget (USD)", "daily_usd", "key-daily-usd", type="number", min=0, step="any"),
            _field("Monthly budget (USD)", "monthly_usd", "key-monthly-usd", type="number", min=0, step="any"),
            columns="2",
            spacing="3",
            width="100%",
        ),
        spacing="2",
        width="100%",
    )


def key_form_dialog() -> rx.Component:
    editing = KeyFormState.key_id != ""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(editing, "Edit key", "Create a key")),
            rx.dialog.description(
                rx.cond(editing, "Changes apply to the next calls made with this key.", "Its secret is shown once."),
                size="2",
                margin_bottom="12px",
            ),
            rx.form(
                rx.vstack(
                    _field("Name", "name", "key-name", max_length=200, required=True),
                    _owner_picker(),
                    _alias_picker(),
                    _field("Expires on (optional, UTC)", "expires", "key-expires", type="date"),
                    rx.cond(KeyFormState.is_admin, _admin_fields()),
                    rx.cond(
                        KeyFormState.error != "",
                        rx.callout.root(
                            rx.callout.text(KeyFormState.error),
                            color_scheme="red",
                            high_contrast=True,
                            size="1",
                            role="alert",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            color_scheme="gray",
                            on_click=KeyFormState.close(False),
                        ),
                        rx.button(rx.cond(editing, "Save", "Create"), type="submit", id="key-form-submit"),
                        justify="end",
                        spacing="3",
                        width="100%",
                    ),
                    spacing="4",
                ),
                on_submit=KeyFormState.submit,
                reset_on_submit=False,
            ),
            max_width="560px",
        ),
        open=KeyFormState.open,
        on_open_change=KeyFormState.close,
    )
