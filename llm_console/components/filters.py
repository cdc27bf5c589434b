"""Filter controls shared by the dashboards; each change calls the page state's `set_param`."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.state.dashboard import ANY

RANGE_ITEMS = [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")]


def range_picker(state: Any, with_resolution: bool = True) -> rx.Component:
    """Preset ranges, a custom from/to, and the chart resolution."""
    return rx.hstack(
        rx.segmented_control.root(
            *[rx.segmented_control.item(label, value=value) for value, label in RANGE_ITEMS],
            rx.segmented_control.item("Custom", value="custom"),
            value=state.range_name,
            on_change=lambda v: state.set_param("range", v),
            aria_label="Time range",
            size="1",
        ),
        rx.cond(
            state.range_name == "custom",
            rx.hstack(
                rx.el.label("From", html_for="range-from", class_name="rt-Text rt-r-size-1"),
                rx.input(
                    id="range-from",
                    type="datetime-local",
                    default_value=state.range_from,
                    on_blur=lambda v: state.set_param("from", v),
                    size="1",
                ),
                rx.el.label("To", html_for="range-to", class_name="rt-Text rt-r-size-1"),
                rx.input(
                    id="range-to",
                    type="datetime-local",
                    default_value=state.range_to,
                    on_blur=lambda v: state.set_param("to", v),
                    size="1",
                ),
                align="center",
                spacing="2",
            ),
        ),
        rx.cond(with_resolution, resolution_select(state), rx.fragment()),
        align="center",
        spacing="3",
        wrap="wrap",
    )


def resolution_select(state: Any) -> rx.Component:
    return rx.hstack(
        rx.text("Resolution", size="1", color=rx.color("gray", 11), id="res-label"),
        rx.select.root(
            rx.select.trigger(aria_labelledby="res-label"),
            rx.select.content(
                rx.select.item("Auto", value=ANY),
                rx.select.item("Minute", value="minute"),
                rx.select.item("Hour", value="hour"),
                rx.select.item("Day", value="day"),
            ),
            value=rx.cond(state.resolution == "", ANY, state.resolution),
            on_change=lambda v: state.set_param("res", v),
            size="1",
        ),
        align="center",
        spacing="2",
    )


def option_select(
    state: Any, param: str, label: str, options: Any, current: Any, *, any_label: str = "All"
) -> rx.Component:
    """A labelled select over `options` (a Var of {"value", "label"} dicts) for one URL parameter."""
    label_id = f"filter-{param}-label"
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 11), id=label_id),
        rx.select.root(
            rx.select.trigger(aria_labelledby=label_id, min_width="120px", id=f"filter-{param}"),
            rx.select.content(
                rx.select.item(any_label, value=ANY),
                rx.foreach(options, lambda o: rx.select.item(o["label"], value=o["value"])),
            ),
            value=rx.cond(current == "", ANY, current),
            on_change=lambda v: state.set_param(param, v),
            size="1",
        ),
        spacing="1",
    )


def text_filter(
    state: Any, param: str, label: str, current: Any, *, placeholder: str = "", width: str = "140px"
) -> rx.Component:
    """A text input applied when Enter is pressed or it loses focus."""
    input_id = f"filter-{param}"
    return rx.form(
        rx.vstack(
            rx.el.label(label, html_for=input_id, class_name="rt-Text rt-r-size-1"),
            rx.input(
                id=input_id,
                name=param,
                default_value=current,
                key=current,
                placeholder=placeholder,
                on_blur=lambda v: state.set_param(param, v),
                size="1",
                width=width,
                max_length=200,
            ),
            spacing="1",
        ),
        on_submit=lambda data: state.set_param(param, data.to(dict)[param].to(str)),
        reset_on_submit=False,
        display="inline-flex",
        width="auto",
    )


def filter_errors(state: Any) -> rx.Component:
    return rx.cond(
        state.filter_errors.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("info")),
            rx.callout.text(rx.foreach(state.filter_errors, lambda e: rx.text(e, size="2"))),
            color_scheme="amber",
            high_contrast=True,
            size="1",
            role="status",
        ),
    )


def export_buttons(state: Any) -> rx.Component:
    """Download what the page shows: its main table as CSV, every table as JSON."""
    return rx.hstack(
        rx.button(rx.icon("download", size=14), "CSV", variant="outline", size="1", on_click=state.export("csv")),
        rx.button(rx.icon("download", size=14), "JSON", variant="outline", size="1", on_click=state.export("json")),
        spacing="2",
        aria_label="Export",
    )


def dashboard_toolbar(state: Any, *extra: rx.Component, with_resolution: bool = True) -> rx.Component:
    """A dashboard page's top row: the range picker, any page links, then the exports and when it was updated."""
    return rx.hstack(
        range_picker(state, with_resolution=with_resolution),
        *extra,
        rx.spacer(),
        export_buttons(state),
        rx.text("updated ", state.as_of, size="1", color=rx.color("gray", 11)),
        align="center",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


def search_box(value: Any, on_submit: Any, *, field_id: str, placeholder: str) -> rx.Component:
    """A labelled search field submitted with Enter or its button (the value goes to the handler as form
    field "q"); `value` is the current search, so the field shows it after a reload or a deep link."""
    return rx.form(
        rx.hstack(
            rx.el.label("Search", html_for=field_id, class_name="rt-Text rt-r-size-1"),
            rx.input(
                id=field_id,
                name="q",
                default_value=value,
                key=value,
                placeholder=placeholder,
                max_length=200,
                size="1",
                width="220px",
            ),
            rx.button("Search", type="submit", size="1", variant="soft"),
            align="center",
            spacing="2",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
    )
