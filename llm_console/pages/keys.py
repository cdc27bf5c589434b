"""Virtual keys: list, search and filter keys in scope; create, edit, rotate and revoke them."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.keys import (
    confirm_dialog,
    filters,
    key_form_dialog,
    keys_table,
    messages,
    pager,
    secret_dialog,
)
from llm_console.components.layout import console_page
from llm_console.state.keys import KeysState


@console_page(routes.KEYS, "Virtual keys", on_load=[KeysState.load])
def page() -> rx.Component:
    return rx.vstack(
        filters(),
        messages(),
        rx.cond(
            KeysState.rows.length() > 0,
            keys_table(),
            rx.text("No keys match.", color=rx.color("gray", 11), id="keys-empty"),
        ),
        pager(),
        key_form_dialog(),
        confirm_dialog(),
        secret_dialog(),
        spacing="4",
        width="100%",
    )
