"""Organization: people and their roles, invitations, teams with member roles, service accounts and their keys."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.layout import console_page
from llm_console.components.org_tabs import header_row, service_accounts_tab, table, teams_tab
from llm_console.components.organization import (
    ROLES,
    confirm_button,
    labelled_select,
    messages,
    pager,
    shown_once,
    text_field,
)
from llm_console.components.tables import WRAP, empty_or
from llm_console.components.widgets import section
from llm_console.state.invitations import InvitesState
from llm_console.state.organization import UsersState
from llm_console.state.service_accounts import ServiceAccountsState
from llm_console.state.teams import TeamsState

ANY = "__any__"


def user_filters() -> rx.Component:
    def choice(param: str, label: str, values: list[str], current: rx.Var) -> rx.Component:
        return rx.select.root(
            rx.select.trigger(aria_label=label, min_width="120px"),
            rx.select.content(rx.select.item(label, value=ANY), *[rx.select.item(v, value=v) for v in values]),
            value=rx.cond(current == "", ANY, current),
            on_change=lambda v: UsersState.set_filter(param, v),
            size="1",
        )

    return rx.flex(
        rx.form(
            rx.input(
                name="search",
                placeholder="Search email or name",
                aria_label="Search users",
                size="1",
                max_length=200,
                default_value=UsersState.search,
                width="260px",
            ),
            on_submit=UsersState.apply_filters,
            reset_on_submit=False,
            width="auto",
        ),
        choice("role", "All roles", ROLES, UsersState.role_filter),
        choice("status", "Any status", ["active", "inactive"], UsersState.status_filter),
        rx.spacer(),
        rx.cond(
            UsersState.can_write,
            rx.button(rx.icon("user-plus", size=14), "Invite user", on_click=InvitesState.set_open(True), size="2"),
        ),
        gap="12px",
        wrap="wrap",
        align="center",
        width="100%",
    )


def user_row(r: rx.Var) -> rx.Component:
    locked = ~UsersState.can_write | (r["self"] == "true")
    return rx.table.row(
        rx.table.cell(r["email"], style=WRAP),
        rx.table.cell(r["name"], style=WRAP),
        rx.table.cell(
            rx.select.root(
                # The label goes on the trigger, the element a screen reader announces.
                rx.select.trigger(aria_label="Role of " + r["email"].to(str)),
                rx.select.content(*[rx.select.item(role, value=role) for role in ROLES]),
                value=r["role"],
                on_change=lambda v: UsersState.change_role(r["id"], v),
                disabled=locked,
                size="1",
            )
        ),
        rx.table.cell(
            rx.switch(
                checked=r["active"] == "true",
                on_change=lambda v: UsersState.toggle_active(r["id"], v),
                disabled=locked,
                aria_label="Active: " + r["email"].to(str),
            )
        ),
        rx.table.cell(r["teams"], style=WRAP),
        rx.table.cell(r["sign_in"]),
        rx.table.cell(r["last_login"]),
        custom_attrs={"data-user-id": r["id"]},
    )


def invite_dialog() -> rx.Component:
    form = rx.form(
        rx.vstack(
            text_field("Email", "email", "invite-email", type="email", required=True, max_length=320),
            labelled_select("Role", "role", ROLES, select_id="invite-role", default="member"),
            labelled_select("Team (optional)", "team", [], select_id="invite-team", options=InvitesState.team_options),
            labelled_select("Team role", "team_role", ROLES, select_id="invite-team-role", default="member"),
            rx.hstack(
                rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                rx.button("Create invitation link", type="submit"),
                justify="end",
                spacing="3",
                width="100%",
            ),
            spacing="3",
        ),
        on_submit=InvitesState.create,
        reset_on_submit=False,
    )
    done = rx.vstack(
        rx.text(InvitesState.link_for, size="2"),
        shown_once(InvitesState.link, value_id="invite-link", what="invitation link", copy_label="Copy link"),
        rx.dialog.close(rx.button("Done", align_self="end")),
        spacing="3",
        width="100%",
    )
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Invite user"),
            rx.dialog.description("Anyone with the link can create this account until it expires.", size="2"),
            messages(InvitesState.error, ""),
            rx.cond(InvitesState.link != "", done, form),
            max_width="480px",
        ),
        open=InvitesState.open,
        on_open_change=InvitesState.set_open,
    )


def pending_invitations() -> rx.Component:
    def row(r: rx.Var) -> rx.Component:
        return rx.table.row(
            rx.table.cell(r["email"], style=WRAP),
            rx.table.cell(r["role"]),
            rx.table.cell(r["team"]),
            rx.table.cell(r["created_by"], style=WRAP),
            rx.table.cell(r["expires"]),
            rx.table.cell(
                rx.cond(
                    InvitesState.can_write,
                    confirm_button(
                        "Revoke", "Revoke invitation?", "The link stops working at once.", InvitesState.revoke(r["id"])
                    ),
                )
            ),
        )

    body = rx.table.body(rx.foreach(InvitesState.pending, row))
    return section(
        "Pending invitations",
        # A refused revoke shows here (the dialog that shows create errors is closed then).
        rx.cond(~InvitesState.open, messages(InvitesState.error, InvitesState.notice)),
        empty_or(
            InvitesState.pending,
            table(header_row("Email", "Role", "Team", "Invited by", "Expires (UTC)", ""), body, "invitations-table"),
            "No pending invitations.",
        ),
    )


def users_tab() -> rx.Component:
    body = rx.table.body(rx.foreach(UsersState.rows, user_row))
    return rx.vstack(
        user_filters(),
        messages(UsersState.error, UsersState.notice),
        empty_or(
            UsersState.rows,
            table(
                header_row("Email", "Name", "Role", "Active", "Teams", "Sign-in", "Last sign-in"), body, "users-table"
            ),
            "No users match.",
        ),
        pager(UsersState.page, UsersState.pages, UsersState.total, UsersState.goto),
        pending_invitations(),
        invite_dialog(),
        spacing="3",
        width="100%",
    )


@console_page(
    routes.ORG,
    "Organization",
    on_load=[UsersState.load, InvitesState.load, TeamsState.load, ServiceAccountsState.load],
)
def page() -> rx.Component:
    return rx.cond(
        UsersState.ready,
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("Users", value="users"),
                rx.tabs.trigger("Teams", value="teams"),
                rx.tabs.trigger("Service accounts", value="service"),
            ),
            rx.tabs.content(users_tab(), value="users", padding_top="12px"),
            rx.tabs.content(teams_tab(), value="teams", padding_top="12px"),
            rx.tabs.content(service_accounts_tab(), value="service", padding_top="12px"),
            default_value="users",
            width="100%",
        ),
        rx.text("The organization is shown to operators and admins.", color=rx.color("gray", 11), id="org-not-ready"),
    )
