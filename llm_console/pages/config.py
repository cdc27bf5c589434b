"""Configuration: providers and deployments (create, edit, enable, delete, test) and their health matrix."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console import routes
from llm_console.components.forms import (
    check_field,
    confirm_dialog,
    form_dialog,
    form_error,
    form_notice,
    secret_field,
    select_field,
    text_field,
)
from llm_console.components.health import health_badge, health_matrix
from llm_console.components.layout import console_page
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section
from llm_console.presenters.config import KIND_OPTIONS
from llm_console.state.config import ConfigState
from llm_console.state.config_forms import DeleteState, DeploymentFormState, ProviderFormState


def _table(columns: list[str], rows: Any, row: Any, table_id: str, empty: str) -> rx.Component:
    return rx.cond(
        rows.length() > 0,
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[rx.table.column_header_cell(c) for c in columns],
                        rx.cond(ConfigState.can_edit, rx.table.column_header_cell("Actions")),
                    )
                ),
                rx.table.body(rx.foreach(rows, row)),
                variant="surface",
                size="1",
                width="100%",
                id=table_id,
            ),
            overflow_x="auto",
            width="100%",
        ),
        rx.text(empty, color=MUTED, size="2"),
    )


def _enabled(row: Any, on_change: Any, what: str) -> rx.Component:
    on = row["enabled"] == "true"
    return rx.cond(
        ConfigState.can_edit,
        rx.switch(checked=on, on_change=on_change, aria_label=f"{what} enabled: " + row["name"].to(str)),
        rx.badge(rx.cond(on, "enabled", "disabled"), color_scheme=rx.cond(on, "green", "gray"), variant="soft"),
    )


def _action(label: str, on_click: Any, name: Any, **props: Any) -> rx.Component:
    return rx.button(label, on_click=on_click, size="1", variant="soft", aria_label=f"{label} " + name.to(str), **props)


def provider_row(p: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(p["name"], style=WRAP),
        rx.table.cell(p["kind_label"]),
        rx.table.cell(p["api_base"], style=WRAP),
        rx.table.cell(
            rx.badge(p["key"], variant="soft", color_scheme=rx.cond(p["has_key"] == "true", "green", "gray"))
        ),
        rx.table.cell(_enabled(p, lambda v: ConfigState.toggle_provider(p["id"], v), "Provider")),
        rx.table.cell(p["deployments"]),
        rx.cond(
            ConfigState.can_edit,
            rx.table.cell(
                rx.hstack(
                    _action("Edit", ProviderFormState.edit_provider(p["id"]), p["name"]),
                    _action("Delete", DeleteState.ask_delete_provider(p["id"]), p["name"], color_scheme="red"),
                    spacing="2",
                )
            ),
        ),
        custom_attrs={"data-provider": p["name"]},
    )


def deployment_row(d: Any) -> rx.Component:
    testing = ConfigState.testing == d["id"]
    return rx.table.row(
        rx.table.cell(d["name"], style=WRAP),
        rx.table.cell(d["provider"], style=WRAP),
        rx.table.cell(d["model"], style=WRAP),
        rx.table.cell(d["aliases"], style=WRAP),
        rx.table.cell(_enabled(d, lambda v: ConfigState.toggle_deployment(d["id"], v), "Deployment")),
        rx.table.cell(d["concurrency"]),
        rx.table.cell(
            rx.vstack(
                health_badge(d["health"]),
                rx.cond(d["provider_enabled"] == "false", rx.text("provider disabled", size="1", color=MUTED)),
                spacing="1",
            )
        ),
        rx.table.cell(rx.text(d["checked"], size="1"), rx.text(d["latency"], size="1", color=MUTED)),
        rx.cond(
            ConfigState.can_edit,
            rx.table.cell(
                rx.hstack(
                    _action("Test connection", ConfigState.test_deployment(d["id"]), d["name"], loading=testing),
                    _action("Edit", DeploymentFormState.edit_deployment(d["id"]), d["name"]),
                    _action("Delete", DeleteState.ask_delete_deployment(d["id"]), d["name"], color_scheme="red"),
                    spacing="2",
                    wrap="wrap",
                )
            ),
        ),
        custom_attrs={"data-deployment": d["name"], "data-deployment-id": d["id"]},
    )


def _heading(title: str, button: rx.Component) -> rx.Component:
    return rx.hstack(
        rx.heading(title, size="3", as_="h2"),
        rx.spacer(),
        rx.cond(ConfigState.can_edit, button),
        width="100%",
        align="center",
    )


def providers_card() -> rx.Component:
    columns = ["Name", "Kind", "Base URL", "API key", "Enabled", "Deployments"]
    return rx.card(
        rx.vstack(
            _heading(
                "Providers", rx.button("Add provider", on_click=ProviderFormState.new_provider, id="add-provider")
            ),
            rx.text("An upstream account: its kind, base URL and key. The key is write-only.", size="2", color=MUTED),
            _table(columns, ConfigState.providers, provider_row, "providers-table", "No providers yet."),
            width="100%",
        ),
        width="100%",
    )


def deployments_card() -> rx.Component:
    columns = ["Name", "Provider", "Upstream model", "Aliases", "Enabled", "Max concurrency", "Health", "Last check"]
    return rx.card(
        rx.vstack(
            _heading(
                "Deployments",
                rx.button("Add deployment", on_click=DeploymentFormState.new_deployment, id="add-deployment"),
            ),
            rx.text(
                "One model served by one provider; aliases (the model names clients ask for) route to it.",
                size="2",
                color=MUTED,
            ),
            rx.cond(
                ConfigState.test_result.contains("summary"),
                rx.callout(
                    ConfigState.test_result["summary"],
                    icon=rx.match(ConfigState.test_result["status"], ("available", "circle-check"), "info"),
                    color_scheme=rx.match(
                        ConfigState.test_result["status"], ("available", "green"), ("loading", "amber"), "red"
                    ),
                    role="status",
                    size="1",
                    id="test-result",
                    width="100%",
                ),
            ),
            _table(columns, ConfigState.deployments, deployment_row, "deployments-table", "No deployments yet."),
            width="100%",
        ),
        width="100%",
    )


def matrix_card() -> rx.Component:
    return section(
        "Health",
        rx.hstack(
            rx.text(
                "Each cell is the last check of a deployment an alias routes to: the gateway checks every "
                "routed deployment periodically; Test connection and Check all now check at once.",
                size="2",
                color=MUTED,
            ),
            rx.spacer(),
            rx.cond(
                ConfigState.can_edit,
                rx.button(
                    "Check all now", on_click=ConfigState.check_all, loading=ConfigState.checking, id="check-all"
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            ConfigState.matrix_rows.length() > 0,
            health_matrix(ConfigState.matrix_columns, ConfigState.matrix_rows),
            rx.text("No deployments to check yet.", color=MUTED, size="2"),
        ),
    )


def provider_dialog() -> rx.Component:
    f, editing = ProviderFormState.provider_form, ProviderFormState.provider_form["id"] != ""
    has_key = f["has_key"] != ""
    return form_dialog(
        rx.cond(editing, "Edit provider", "Add provider"),
        text_field("Name", "name", field_id="provider-name", default_value=f["name"], required=True, max_length=200),
        select_field("Kind", "kind", KIND_OPTIONS, field_id="provider-kind", default_value=f["kind"]),
        text_field(
            "Base URL",
            "base_url",
            field_id="provider-base-url",
            default_value=f["base_url"],
            required=True,
            input_type="url",
            placeholder="http://10.0.0.5:8000/v1",
            max_length=1000,
            hint="OpenAI-compatible servers: the /v1 root. Azure: https://NAME.openai.azure.com.",
        ),
        secret_field(
            "API key",
            "api_key",
            field_id="provider-api-key",
            placeholder=rx.cond(has_key, "A key is stored: leave empty to keep it", "Optional"),
            hint="Stored encrypted and never shown again.",
        ),
        rx.cond(has_key, check_field("Remove the stored key", "clear_api_key", field_id="provider-clear-key")),
        text_field(
            "API version",
            "api_version",
            field_id="provider-api-version",
            default_value=f["api_version"],
            max_length=40,
            hint="Azure api-version (default 2024-10-21) or Anthropic anthropic-version "
            "(default 2023-06-01); empty for OpenAI-compatible servers.",
        ),
        rx.cond(
            ConfigState.can_allow_private,
            check_field(
                "This private host is ours",
                "allow_private",
                field_id="provider-allow-private",
                hint="Adds the host to the upstream allow-list (audited). Loopback, private and link-local "
                "addresses are refused otherwise; link-local (cloud metadata) always.",
            ),
        ),
        is_open=ProviderFormState.provider_open,
        on_open_change=ProviderFormState.close_provider,
        on_submit=ProviderFormState.save_provider,
        error=ProviderFormState.provider_error,
        submit_id="provider-save",
        dialog_id="provider-dialog",
    )


def deployment_dialog() -> rx.Component:
    f, editing = DeploymentFormState.deployment_form, DeploymentFormState.deployment_form["id"] != ""
    timeouts = [("connect_s", "Connect"), ("first_byte_s", "First byte"), ("idle_s", "Idle"), ("total_s", "Total")]
    return form_dialog(
        rx.cond(editing, "Edit deployment", "Add deployment"),
        rx.cond(
            editing,
            rx.text("Provider: " + f["provider"].to(str) + " · routes from: " + f["routes"].to(str), size="2"),
            select_field(
                "Provider",
                "provider_id",
                ConfigState.provider_choices,
                field_id="deployment-provider",
                default_value=f["provider_id"],
            ),
        ),
        text_field(
            "Upstream model",
            "model",
            field_id="deployment-model",
            default_value=f["model"],
            required=True,
            hint="The name the provider serves (Azure: the deployment name).",
        ),
        text_field(
            "Name",
            "name",
            field_id="deployment-name",
            default_value=f["name"],
            max_length=200,
            hint="Optional; default model@host.",
        ),
        rx.hstack(
            text_field(
                "Route alias",
                "alias",
                field_id="deployment-alias",
                hint="The model name clients ask for; created if missing. Optional.",
            ),
            text_field(
                "Weight",
                "weight",
                field_id="deployment-weight",
                default_value=f["weight"],
                input_type="number",
                min=0,
                max=1000,
            ),
            width="100%",
            align="start",
        ),
        text_field(
            "Max concurrency",
            "max_concurrency",
            field_id="deployment-max-concurrency",
            input_type="number",
            min=1,
            default_value=f["max_concurrency"],
            hint="Requests in flight at once; empty for no limit.",
        ),
        rx.el.fieldset(
            rx.el.legend("Timeouts, seconds (empty: the alias's or the gateway's)", class_name="rt-Text rt-r-size-2"),
            rx.grid(
                *[
                    text_field(
                        label,
                        name,
                        field_id=f"deployment-{name.replace('_', '-')}",
                        default_value=f[name],
                        input_type="number",
                        step="any",
                        min=0,
                    )
                    for name, label in timeouts
                ],
                columns="4",
                spacing="2",
                width="100%",
            ),
            style={"border": "none", "padding": "0", "margin": "0", "width": "100%"},
        ),
        text_field(
            "Azure API version",
            "api_version",
            field_id="deployment-api-version",
            default_value=f["api_version"],
            max_length=40,
            hint="Azure only: overrides the provider's api-version for this deployment.",
        ),
        rx.hstack(
            text_field(
                "GPU-hour price (USD)",
                "gpu_hour_usd",
                field_id="deployment-gpu-hour-usd",
                default_value=f["gpu_hour_usd"],
                input_type="number",
                step="any",
                min=0,
                hint="Self-hosted: what all its GPUs cost per hour; empty if billed by token.",
            ),
            text_field(
                "Engine metrics URL",
                "metrics_url",
                field_id="deployment-metrics-url",
                default_value=f["metrics_url"],
                max_length=1000,
                hint="Empty: <base URL>/metrics; off: don't scrape; or a URL on the provider's host.",
            ),
            width="100%",
            align="start",
        ),
        is_open=DeploymentFormState.deployment_open,
        on_open_change=DeploymentFormState.close_deployment,
        on_submit=DeploymentFormState.save_deployment,
        error=DeploymentFormState.deployment_error,
        submit_id="deployment-save",
        dialog_id="deployment-dialog",
    )


def delete_dialog() -> rx.Component:
    return confirm_dialog(
        "Delete " + DeleteState.confirm["type"].to(str) + " " + DeleteState.confirm["name"].to(str) + "?",
        DeleteState.confirm["message"],
        is_open=DeleteState.confirm_open,
        on_confirm=DeleteState.confirm_delete,
        on_cancel=DeleteState.cancel_delete,
        confirm_label="Delete",
        confirm_id="confirm-delete",
    )


@console_page(routes.CONFIG, "Configuration", on_load=[ConfigState.load])
def page() -> rx.Component:
    return rx.vstack(
        form_error(ConfigState.error, id="config-error"),
        form_notice(ConfigState.notice, id="config-notice"),
        providers_card(),
        deployments_card(),
        matrix_card(),
        provider_dialog(),
        deployment_dialog(),
        delete_dialog(),
        spacing="4",
        width="100%",
    )
