"""Recharts wrappers with the console's colours; every chart gets at most ~2,000 points from its state."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.widgets import section

SERIES_COLORS = ["indigo", "cyan", "amber", "grass", "crimson", "violet", "gray"]


def _axes(x_key: str) -> list[rx.Component]:
    return [
        rx.recharts.x_axis(data_key=x_key, min_tick_gap=24),
        rx.recharts.y_axis(width=56),
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
    ]


def stacked_bars(data: Any, x_key: str, series: list[tuple[str, Any, str]], height: int = 260) -> rx.Component:
    """Bars stacked per x; `series` is (data key, label, colour); a label may be a Var."""
    return rx.recharts.bar_chart(
        *[
            rx.recharts.bar(data_key=key, stack_id="a", fill=rx.color(color, 9), name=name, is_animation_active=False)
            for key, name, color in series
        ],
        *_axes(x_key),
        data=data,
        height=height,
        width="100%",
    )


def named_stacked_bars(data: Any, x_key: str, names: Any, slots: int, height: int = 260) -> rx.Component:
    """Bars stacked per x with series `s0..s{slots-1}` named by the Var list `names` (top models + other)."""
    series = [(f"s{i}", names[i].to(str), SERIES_COLORS[i % len(SERIES_COLORS)]) for i in range(slots)]
    return stacked_bars(data, x_key, series, height)


def lines(data: Any, x_key: str, series: list[tuple[str, str, str]], height: int = 240) -> rx.Component:
    return rx.recharts.line_chart(
        *[
            rx.recharts.line(
                data_key=key,
                stroke=rx.color(color, 9),
                name=name,
                dot=False,
                is_animation_active=False,
                type_="monotone",
            )
            for key, name, color in series
        ],
        *_axes(x_key),
        data=data,
        height=height,
        width="100%",
    )


def slot_lines(
    data: Any, names: Any, slots: int, *, unit: str = "", dots: bool | rx.Var[bool] = False, height: int = 240
) -> rx.Component:
    """One line per named slot `s0..s{slots-1}` (GPUs, workers, score names); unnamed slots stay out of the
    legend, and gaps are bridged (a slot may have no value in a bucket). `dots` may be a Var (e.g. "few
    points", where a line of one point would draw nothing)."""
    return rx.recharts.line_chart(
        *[
            rx.recharts.line(
                data_key=f"s{i}",
                name=names[i].to(str),
                stroke=rx.color(SERIES_COLORS[i % len(SERIES_COLORS)], 9),
                legend_type=rx.cond(names[i] == "", "none", "line"),
                unit=unit,
                dot=dots,
                connect_nulls=True,
                is_animation_active=False,
                type_="monotone",
            )
            for i in range(slots)
        ],
        *_axes("t"),
        data=data,
        height=height,
        width="100%",
    )


def areas(data: Any, x_key: str, series: list[tuple[str, str, str]], height: int = 240) -> rx.Component:
    return rx.recharts.area_chart(
        *[
            rx.recharts.area(
                data_key=key,
                stroke=rx.color(color, 9),
                fill=rx.color(color, 6),
                name=name,
                stack_id="a",
                is_animation_active=False,
                type_="monotone",
            )
            for key, name, color in series
        ],
        *_axes(x_key),
        data=data,
        height=height,
        width="100%",
    )


def chart_card(title: str, chart: rx.Component, *, chart_id: str = "") -> rx.Component:
    return section(title, rx.box(chart, width="100%", id=chart_id or None, class_name="chart"))
