"""Alerts: rules for budgets, error rates, latency and deployment health, and the events they fired."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.alerts import delete_dialog, events_card, rule_dialog, rules_card
from llm_console.components.forms import form_error, form_notice
from llm_console.components.layout import console_page
from llm_console.state.alerts import AlertsState


@console_page(routes.ALERTS, "Alerts", on_load=[AlertsState.load])
def page() -> rx.Component:
    return rx.vstack(
        form_error(AlertsState.error, id="alerts-error"),
        form_notice(AlertsState.notice, id="alerts-notice"),
        rules_card(),
        events_card(),
        rule_dialog(),
        delete_dialog(),
        spacing="4",
        width="100%",
    )
