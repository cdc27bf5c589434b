"""Limit tiers: the tiers and their holders, the distribution chart, upgrade suggestions (operators and up);
creating, editing, deleting and assigning tiers (admins)."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import filter_errors
from llm_console.components.forms import form_error, form_notice
from llm_console.components.layout import console_page
from llm_console.components.tiers import (
    assign_dialog,
    delete_dialog,
    distribution,
    suggestions,
    tier_dialog,
    tiers_table,
    toolbar,
)
from llm_console.state.tiers import TiersState


@console_page(routes.LIMIT_TIERS, "Limit tiers", on_load=[TiersState.load])
def tiers() -> rx.Component:
    return rx.vstack(
        toolbar(),
        filter_errors(TiersState),
        form_notice(TiersState.notice, id="tiers-notice"),
        form_error(TiersState.error, id="tiers-error"),
        tiers_table(),
        distribution(),
        suggestions(),
        tier_dialog(),
        delete_dialog(),
        assign_dialog(),
        spacing="4",
        width="100%",
    )
