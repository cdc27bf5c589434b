"""Cards, charts and tables used across pages."""

from __future__ import annotations

import reflex as rx


def stat_card(card: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(card["label"], size="2", color=rx.color("gray", 11)),
            rx.text(card["value"], size="7", weight="bold", class_name="stat-value"),
            rx.text(card["hint"], size="1", color=rx.color("gray", 11)),
            spacing="1",
        ),
        min_width="170px",
        flex="1",
        custom_attrs={"data-stat": card["label"]},
    )


def requests_chart(data: rx.Var) -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.bar(data_key="ok", stack_id="a", fill=rx.color("accent", 9), name="OK", is_animation_active=False),
        rx.recharts.bar(
            data_key="errors", stack_id="a", fill=rx.color("red", 9), name="Errors", is_animation_active=False
        ),
        rx.recharts.x_axis(data_key="minute", min_tick_gap=24),
        rx.recharts.y_axis(allow_decimals=False, width=40),
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        data=data,
        height=260,
        width="100%",
    )


def status_badge(status: rx.Var) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("ok", "green"), ("incomplete", "amber"), "red"),
        variant="soft",
        high_contrast=True,
    )
