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


def status_badge(status: rx.Var) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("ok", "green"), ("incomplete", "amber"), "red"),
        variant="soft",
        high_contrast=True,
    )


def section(title: str, *children: rx.Component, **props: object) -> rx.Component:
    """A card with an h2 title over its content, the full width of the page."""
    return rx.card(rx.vstack(rx.heading(title, size="3", as_="h2"), *children, width="100%"), width="100%", **props)
