"""Widgets of the limit tiers page: the tiers table, the distribution chart and table, upgrade suggestions, and
the tier, delete and assign dialogs. Names render as text, never as markup."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.components.catalog import column_headers, scroll_table
from llm_console.components.charts import chart_card, stacked_bars
from llm_console.components.filters import dashboard_toolbar
from llm_console.components.forms import confirm_dialog, form_dialog, select_field, text_field
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section
from llm_console.presenters.tiers import NO_TIER
from llm_console.state.tiers import TierAssignState, TierFormState, TiersState

S = TiersState
TIER_COLUMNS = [
    ("rank", "Rank"),
    ("rpm", "RPM"),
    ("tpm", "TPM"),
    ("rpd", "RPD"),
    ("tpd", "TPD"),
    ("daily_usd", "Daily budget"),
    ("monthly_usd", "Monthly budget"),
    ("users", "Users"),
    ("teams", "Teams"),
    ("keys", "Keys"),
]
DISTRIBUTION_COLUMNS = [("users", "Users"), ("teams", "Teams"), ("keys", "Keys"), ("total", "Total")]
SUGGESTION_COLUMNS = [
    ("tier", "Tier"),
    ("limit", "Limit hit"),
    ("refused", "Refused calls"),
    ("share", "Share of their calls"),
    ("days", "Days with refusals"),
    ("current", "Current value"),
    ("target", "Suggested value (tier)"),
    ("advice", "Suggestion"),
]
LIMIT_INPUTS = [
    ("Requests / minute", "rpm"),
    ("Tokens / minute", "tpm"),
    ("Requests / day", "rpd"),
    ("Tokens / day", "tpd"),
]
BUDGET_INPUTS = [("Daily budget (USD)", "daily_usd"), ("Monthly budget (USD)", "monthly_usd")]
ENTITY_TYPES = [("key", "Key (prefix or name)"), ("user", "User (email)"), ("team", "Team (name)")]


def _headers(first: str, columns: list[tuple[str, str]], *extra: str) -> list[rx.Component]:
    return column_headers(first, *(h for _, h in columns), *extra)


def toolbar() -> rx.Component:
    return rx.vstack(
        dashboard_toolbar(
            S,
            rx.link("Limits & budgets", href=routes.LIMITS, size="2"),
            rx.link("Rate-limit analytics", href=routes.ANALYTICS_LIMITS, size="2"),
            with_resolution=False,
        ),
        rx.hstack(
            rx.spacer(),
            rx.cond(
                S.can_edit,
                rx.hstack(
                    rx.button(
                        rx.icon("user-plus", size=14),
                        "Assign",
                        variant="soft",
                        on_click=TierAssignState.open_assign,
                        id="tier-assign",
                    ),
                    rx.button(rx.icon("plus", size=14), "New tier", on_click=TierFormState.open_new, id="tier-new"),
                    spacing="2",
                ),
            ),
            width="100%",
        ),
        width="100%",
    )


def _tier_row(r: rx.Var) -> rx.Component:
    cells = [
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(r["name"], weight="medium"),
                rx.text(r["description"], size="1", color=MUTED),
                spacing="0",
            ),
            style=WRAP,
        ),
        *[rx.table.cell(r[key], custom_attrs={"data-cell": key}) for key, _ in TIER_COLUMNS],
        rx.table.cell(
            rx.cond(
                S.can_edit,
                rx.hstack(
                    rx.button(
                        "Edit",
                        size="1",
                        variant="soft",
                        on_click=TierFormState.open_edit(r["id"]),
                        aria_label="Edit tier " + r["name"].to(str),
                    ),
                    rx.button(
                        "Delete",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=TierFormState.ask_delete(r["id"], r["name"]),
                        aria_label="Delete tier " + r["name"].to(str),
                    ),
                    spacing="2",
                ),
                rx.text(r["updated"], size="1", color=MUTED),
            )
        ),
    ]
    return rx.table.row(*cells, custom_attrs={"data-tier": r["name"]})


def tiers_table() -> rx.Component:
    table = scroll_table("tiers-table", _headers("Tier", TIER_COLUMNS, "Actions"), S.tiers, _tier_row)
    empty = rx.text(
        "No tier yet. A tier is a named preset of rate limits and budgets (for example Free, Team, Enterprise); "
        "users, teams and keys put on it get its values wherever they have none of their own.",
        size="2",
        color=MUTED,
    )
    note = rx.text(
        "Empty cells (—) mean no limit. Changing a tier changes everyone on it at their next request; "
        "a holder's own limit, where set on the Limits page, overrides the tier's for that one limit.",
        size="1",
        color=MUTED,
    )
    return section("Tiers", note, rx.cond(S.tiers.length() > 0, table, empty), id="tiers")


def _count_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(r["tier"], style=WRAP),
        *[rx.table.cell(r[key], custom_attrs={"data-cell": key}) for key, _ in DISTRIBUTION_COLUMNS],
        custom_attrs={"data-tier": r["tier"]},
    )


def distribution() -> rx.Component:
    chart = stacked_bars(
        S.chart, "tier", [("users", "Users", "indigo"), ("teams", "Teams", "amber"), ("keys", "Keys", "cyan")]
    )
    table = scroll_table("distribution-table", _headers("Tier", DISTRIBUTION_COLUMNS), S.distribution, _count_row)
    caption = rx.text(
        'Holders of each tier by kind; "No tier" counts users, teams and keys with limits of their own only.',
        size="1",
        color=MUTED,
    )
    return rx.vstack(
        chart_card("Tier distribution", rx.vstack(caption, chart, width="100%"), chart_id="chart-tier-distribution"),
        section("Tier distribution (table)", table, id="tier-distribution"),
        width="100%",
        spacing="4",
    )


def _suggestion_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(rx.text(r["name"], weight="medium"), rx.text(r["kind"], size="1", color=MUTED), spacing="0"),
            style=WRAP,
        ),
        *[rx.table.cell(r[key], custom_attrs={"data-cell": key}) for key, _ in SUGGESTION_COLUMNS],
        custom_attrs={"data-entity": r["entity"]},
    )


def suggestions() -> rx.Component:
    table = scroll_table("suggestions-table", _headers("Holder", SUGGESTION_COLUMNS), S.suggestions, _suggestion_row)
    empty = rx.text("No holder meets the rule in this range.", size="2", color=MUTED)
    return section(
        "Upgrade suggestions",
        rx.text(S.rule, " Range: ", S.range_text, ".", size="2", color=MUTED, id="suggestion-rule"),
        rx.cond(S.suggestions.length() > 0, table, empty),
        id="upgrade-suggestions",
    )


def _number(label: str, name: str, **props: Any) -> rx.Component:
    return text_field(
        label,
        name,
        field_id=f"tier-{name.replace('_', '-')}",
        default_value=TierFormState.values[name],
        input_type="number",
        max_length=30,
        **props,
    )


def tier_dialog() -> rx.Component:
    return form_dialog(
        rx.cond(TierFormState.editing != "", "Edit tier " + TierFormState.editing, "New tier"),
        rx.grid(
            text_field(
                "Name",
                "name",
                field_id="tier-name",
                default_value=TierFormState.values["name"],
                required=True,
                max_length=60,
            ),
            _number("Rank (higher is bigger)", "rank", step=1),
            columns="2",
            spacing="3",
            width="100%",
        ),
        text_field(
            "Description", "description", field_id="tier-description", default_value=TierFormState.values["description"]
        ),
        rx.grid(*[_number(label, name, min=1, step=1) for label, name in LIMIT_INPUTS], columns="2", spacing="3"),
        rx.grid(*[_number(label, name, min=0, step="any") for label, name in BUDGET_INPUTS], columns="2", spacing="3"),
        is_open=TierFormState.open,
        on_open_change=TierFormState.close,
        on_submit=TierFormState.submit,
        error=TierFormState.error,
        submit_id="tier-save",
        description="Empty fields mean no limit. Saving changes the limits of everyone on the tier.",
        dialog_id="tier-dialog",
    )


def delete_dialog() -> rx.Component:
    return confirm_dialog(
        "Delete tier " + TierFormState.confirm_name + "?",
        "A tier can only be deleted while nobody is on it.",
        is_open=TierFormState.confirm_id != "",
        on_confirm=TierFormState.confirm_delete,
        on_cancel=TierFormState.cancel_delete,
        confirm_label="Delete",
        confirm_id="tier-delete-confirm",
    )


def assign_dialog() -> rx.Component:
    options = S.tier_options
    return form_dialog(
        "Assign a tier",
        rx.grid(
            select_field("Who", "entity_type", ENTITY_TYPES, field_id="assign-entity-type", default_value="key"),
            text_field("Email, name or key prefix", "name", field_id="assign-name", required=True, max_length=320),
            columns="2",
            spacing="3",
            width="100%",
        ),
        select_field("Tier", "tier", options, field_id="assign-tier", default_value=NO_TIER),
        is_open=TierAssignState.open,
        on_open_change=TierAssignState.close,
        on_submit=TierAssignState.submit,
        error=TierAssignState.error,
        submit_id="assign-save",
        description='Their own limits, where set, still override the tier\'s. Choose "No tier" to take them off.',
        dialog_id="assign-dialog",
    )
