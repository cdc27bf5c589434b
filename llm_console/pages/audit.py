"""Audit log: every configuration change, who made it and when; a row opens its before → after, secrets masked."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import RANGE_ITEMS, filter_errors
from llm_console.components.layout import console_page
from llm_console.components.tables import WRAP
from llm_console.state.audit import ANY, AuditState

COLUMNS = ["When (UTC)", "Who", "Action", "Target"]
CHANGE_COLORS = (("added", "green"), ("removed", "red"), ("changed", "amber"), "gray")


def _select(param: str, label: str, options: rx.Var, current: rx.Var, any_label: str) -> rx.Component:
    label_id = f"audit-{param}-label"
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 11), id=label_id),
        rx.select.root(
            rx.select.trigger(aria_labelledby=label_id, min_width="140px", id=f"audit-{param}"),
            rx.select.content(
                rx.select.item(any_label, value=ANY), rx.foreach(options, lambda o: rx.select.item(o, value=o))
            ),
            value=rx.cond(current == "", ANY, current),
            on_change=lambda v: AuditState.set_param(param, v),
            size="1",
        ),
        spacing="1",
    )


def _text(name: str, label: str, placeholder: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=f"audit-{name}", class_name="rt-Text rt-r-size-1"),
        rx.input(
            id=f"audit-{name}",
            name=name,
            default_value=AuditState.current[name],
            key=AuditState.current[name],
            placeholder=placeholder,
            size="1",
            max_length=320,
        ),
        spacing="1",
    )


def filters() -> rx.Component:
    c = AuditState.current
    ranges = [*RANGE_ITEMS, ("all", "All time")]
    return rx.vstack(
        rx.flex(
            rx.segmented_control.root(
                *[rx.segmented_control.item(label, value=value) for value, label in ranges],
                value=rx.cond(AuditState.range_name == "custom", "all", AuditState.range_name),
                on_change=lambda v: AuditState.set_param("range", v),
                aria_label="Time range",
                size="1",
            ),
            _select("actor", "Who", AuditState.actors, c["actor"], "Anyone"),
            _select("type", "Target type", AuditState.types, c["type"], "Any target"),
            rx.form(
                rx.flex(
                    _text("action", "Action starts with", "user."),
                    _text("target", "Target id", "42"),
                    rx.button("Apply", type="submit", size="1", variant="soft", align_self="end"),
                    gap="12px",
                    align="end",
                ),
                on_submit=AuditState.apply_text,
                reset_on_submit=False,
            ),
            rx.button("Clear filters", variant="soft", size="1", on_click=AuditState.clear_filters, align_self="end"),
            gap="12px",
            wrap="wrap",
            align="end",
        ),
        filter_errors(AuditState),
        width="100%",
        spacing="2",
    )


def row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                r["when"],
                variant="ghost",
                size="1",
                on_click=AuditState.open_event(r["id"]),
                aria_label="Open audit event " + r["id"].to(str),
                class_name="open-audit-event",
            )
        ),
        rx.table.cell(r["actor"], style=WRAP),
        rx.table.cell(rx.code(r["action"], variant="ghost")),
        rx.table.cell(r["target"], style=WRAP),
        custom_attrs={"data-audit-id": r["id"]},
    )


def table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in COLUMNS])),
            rx.table.body(rx.foreach(AuditState.rows, row)),
            variant="surface",
            size="1",
            width="100%",
            id="audit-table",
        ),
        overflow_x="auto",
        width="100%",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.button("Newest", on_click=AuditState.first_page, disabled=~AuditState.paged, variant="soft", size="1"),
        rx.button(
            "Older", on_click=AuditState.next_page, disabled=AuditState.next_cursor == "", variant="soft", size="1"
        ),
        spacing="2",
    )


def change_row(d: rx.Var) -> rx.Component:
    value = {"white_space": "pre-wrap", "overflow_wrap": "anywhere", "font_family": "var(--code-font-family)"}
    return rx.table.row(
        rx.table.cell(rx.text(d["field"], weight="medium")),
        rx.table.cell(rx.text(d["before"], size="1", style=value)),
        rx.table.cell(rx.text(d["after"], size="1", style=value)),
        rx.table.cell(rx.badge(d["change"], color_scheme=rx.match(d["change"], *CHANGE_COLORS), variant="soft")),
    )


def detail_drawer() -> rx.Component:
    d = AuditState.detail
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.code(d["action"], variant="ghost")),
            rx.dialog.description(
                rx.text(d["when"], " UTC · ", d["actor"], " · ", d["target"], size="2", style=WRAP), size="2"
            ),
            rx.cond(
                AuditState.changes.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(*[rx.table.column_header_cell(c) for c in ("Field", "Before", "After", "")])
                    ),
                    rx.table.body(rx.foreach(AuditState.changes, change_row)),
                    size="1",
                    width="100%",
                    id="audit-diff",
                ),
                rx.text("No before or after recorded for this event.", size="2", color=rx.color("gray", 11)),
            ),
            rx.text("Secret fields are shown as ***.", size="1", color=rx.color("gray", 11), margin_top="8px"),
            rx.dialog.close(rx.button("Close", variant="soft", size="1", margin_top="12px")),
            max_width="860px",
            id="audit-detail",
        ),
        open=AuditState.detail_open,
        on_open_change=AuditState.close_event,
    )


@console_page(routes.AUDIT, "Audit log", on_load=[AuditState.load])
def page() -> rx.Component:
    return rx.cond(
        AuditState.ready,
        rx.vstack(
            filters(),
            pager(),
            rx.cond(
                AuditState.rows.length() > 0,
                table(),
                rx.text("No configuration changes match these filters.", color=rx.color("gray", 11), id="audit-empty"),
            ),
            detail_drawer(),
            spacing="4",
            width="100%",
        ),
        rx.text("The audit log is shown to operators and admins.", color=rx.color("gray", 11), id="audit-not-ready"),
    )
