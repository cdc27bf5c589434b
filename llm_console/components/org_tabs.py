"""The Teams and Service accounts tabs of the Organization page (the page module holds the Users tab)."""

from __future__ import annotations

import reflex as rx

from llm_console.components.organization import ROLES, confirm_button, labelled_select, messages, shown_once, text_field
from llm_console.components.tables import WRAP, empty_or
from llm_console.components.widgets import section
from llm_console.state.service_accounts import ServiceAccountsState
from llm_console.state.teams import TeamsState


def header_row(*names: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(n) for n in names]))


def table(head: rx.Component, body: rx.Component, table_id: str) -> rx.Component:
    return rx.box(rx.table.root(head, body, variant="surface", size="1", width="100%", id=table_id), overflow_x="auto")


def team_editor() -> rx.Component:
    def member(r: rx.Var) -> rx.Component:
        return rx.table.row(
            rx.table.cell(r["email"], style=WRAP),
            rx.table.cell(r["name"], style=WRAP),
            rx.table.cell(r["kind"]),
            rx.table.cell(
                rx.select.root(
                    # The label goes on the trigger, the element a screen reader announces.
                    rx.select.trigger(aria_label="Team role of " + r["email"].to(str)),
                    rx.select.content(*[rx.select.item(role, value=role) for role in ROLES]),
                    value=r["role"],
                    on_change=lambda v: TeamsState.set_member_role(r["user_id"], v),
                    disabled=~TeamsState.can_write,
                    size="1",
                )
            ),
            rx.table.cell(
                rx.cond(
                    TeamsState.can_write,
                    rx.button("Remove", on_click=TeamsState.remove_member(r["user_id"]), variant="soft", size="1"),
                )
            ),
        )

    editing = rx.cond(
        TeamsState.can_write,
        rx.vstack(
            rx.form(
                rx.flex(
                    text_field(
                        "Name",
                        "name",
                        "team-name",
                        default_value=TeamsState.selected_name,
                        key=TeamsState.selected,
                        max_length=200,
                        width="240px",
                    ),
                    text_field(
                        "Description",
                        "description",
                        "team-description",
                        default_value=TeamsState.selected_description,
                        key=TeamsState.selected,
                        max_length=1000,
                        width="320px",
                    ),
                    rx.button("Save", type="submit", size="2", align_self="end"),
                    gap="12px",
                    align="end",
                ),
                on_submit=TeamsState.update,
                reset_on_submit=False,
            ),
            rx.form(
                rx.flex(
                    text_field(
                        "Add member by email",
                        "email",
                        "member-email",
                        type="email",
                        required=True,
                        max_length=320,
                        width="280px",
                    ),
                    labelled_select(
                        "Team role", "role", ROLES, select_id="member-role", default="member", width="160px"
                    ),
                    rx.button("Add", type="submit", size="2", align_self="end"),
                    gap="12px",
                    align="end",
                ),
                on_submit=TeamsState.add_member,
                reset_on_submit=True,
            ),
            confirm_button(
                "Delete team",
                "Delete this team?",
                "Members lose what they saw through this team; its budget and limits are removed.",
                TeamsState.delete,
            ),
            spacing="3",
            width="100%",
        ),
    )
    body = rx.table.body(rx.foreach(TeamsState.members, member))
    return rx.cond(
        TeamsState.selected != "",
        section(
            "Members",
            editing,
            empty_or(
                TeamsState.members,
                table(header_row("Email", "Name", "Kind", "Team role", ""), body, "members-table"),
                "No members yet.",
            ),
        ),
    )


def teams_tab() -> rx.Component:
    def row(r: rx.Var) -> rx.Component:
        return rx.table.row(
            rx.table.cell(
                rx.button(
                    r["name"],
                    variant="ghost",
                    size="1",
                    on_click=TeamsState.select(r["id"]),
                    aria_label="Open team " + r["name"].to(str),
                ),
                style=WRAP,
            ),
            rx.table.cell(r["description"], style=WRAP),
            rx.table.cell(r["members"]),
            custom_attrs={"data-team-id": r["id"]},
        )

    create = rx.cond(
        TeamsState.can_write,
        rx.form(
            rx.flex(
                text_field("New team", "name", "new-team-name", required=True, max_length=200, width="240px"),
                text_field("Description", "description", "new-team-description", max_length=1000, width="320px"),
                rx.button("Create team", type="submit", size="2", align_self="end"),
                gap="12px",
                align="end",
                wrap="wrap",
            ),
            on_submit=TeamsState.create,
            reset_on_submit=True,
        ),
    )
    body = rx.table.body(rx.foreach(TeamsState.teams, row))
    return rx.vstack(
        create,
        messages(TeamsState.error, TeamsState.notice),
        empty_or(
            TeamsState.teams, table(header_row("Team", "Description", "Members"), body, "teams-table"), "No teams yet."
        ),
        team_editor(),
        spacing="3",
        width="100%",
    )


def service_accounts_tab() -> rx.Component:
    s = ServiceAccountsState

    def row(r: rx.Var) -> rx.Component:
        return rx.table.row(
            rx.table.cell(r["name"], style=WRAP),
            rx.table.cell(r["email"], style=WRAP),
            rx.table.cell(r["team"]),
            rx.table.cell(r["keys"]),
            rx.table.cell(r["status"]),
            rx.table.cell(
                rx.cond(
                    s.can_write & (r["active"] == "true"),
                    rx.hstack(
                        rx.button("Mint key", on_click=s.mint(r["id"]), size="1", variant="soft"),
                        confirm_button(
                            "Revoke",
                            "Deactivate this service account?",
                            "All of its keys are revoked at once.",
                            s.deactivate(r["id"]),
                        ),
                        spacing="2",
                    ),
                )
            ),
            custom_attrs={"data-service-account-id": r["id"]},
        )

    create = rx.cond(
        s.can_write,
        rx.form(
            rx.flex(
                text_field(
                    "New service account", "name", "service-account-name", required=True, max_length=200, width="260px"
                ),
                labelled_select(
                    "Team (optional)",
                    "team",
                    [],
                    select_id="service-account-team",
                    options=s.team_options,
                    width="220px",
                ),
                rx.button("Create service account", type="submit", size="2", align_self="end"),
                gap="12px",
                align="end",
                wrap="wrap",
            ),
            on_submit=s.create,
            reset_on_submit=True,
        ),
    )
    secret = rx.cond(
        s.secret != "",
        rx.card(
            rx.vstack(
                rx.text("New key for ", rx.text.strong(s.secret_for), size="2"),
                shown_once(s.secret, value_id="service-key-secret", what="key", copy_label="Copy key"),
                rx.button("Done", on_click=s.dismiss_secret, size="1"),
                spacing="2",
            ),
            width="100%",
        ),
    )
    body = rx.table.body(rx.foreach(s.rows, row))
    return rx.vstack(
        rx.text(
            "Service accounts own keys for machines: they have no password and never sign in.",
            size="2",
            color=rx.color("gray", 11),
        ),
        create,
        messages(s.error, s.notice),
        secret,
        empty_or(
            s.rows,
            table(header_row("Name", "Account", "Team", "Active keys", "Status", ""), body, "service-accounts-table"),
            "No service accounts yet.",
        ),
        spacing="3",
        width="100%",
    )
