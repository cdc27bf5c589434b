"""Limits & budgets: everyone's own usage against their budgets; the organization's limits for operators
(view) and admins (edit), and the global default rate limits."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import filter_errors
from llm_console.components.forms import form_notice
from llm_console.components.layout import console_page
from llm_console.components.limits import all_limits, default_limits, edit_dialog, my_usage, period_note
from llm_console.components.spend_admin import spend_admin, spend_dialogs
from llm_console.state.limits import LimitsState
from llm_console.state.spend_admin import SpendAdminState


@console_page(routes.LIMITS, "Limits & budgets", on_load=[LimitsState.load, SpendAdminState.load])
def limits() -> rx.Component:
    return rx.vstack(
        period_note(),
        filter_errors(LimitsState),
        form_notice(LimitsState.notice, id="limits-notice"),
        form_notice(SpendAdminState.notice, id="spend-notice"),
        my_usage(),
        rx.cond(
            LimitsState.org_wide,
            rx.fragment(
                rx.hstack(
                    rx.link("Rate-limit analytics", href=routes.ANALYTICS_LIMITS, size="2", id="limits-analytics-link"),
                    rx.link("Limit tiers", href=routes.LIMIT_TIERS, size="2", id="limits-tiers-link"),
                    spacing="4",
                ),
                all_limits(),
                spend_admin(),
                default_limits(),
            ),
        ),
        edit_dialog(),
        spend_dialogs(),
        spacing="4",
        width="100%",
    )
