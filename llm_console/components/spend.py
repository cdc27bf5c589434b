"""Budget widgets: spend bars coloured by budget state, the OK / Warning / Exceeded badge, a pager."""

from __future__ import annotations

from typing import Any

import reflex as rx


def level_color(level: Any) -> Any:
    """Green below 80% of the budget, amber (yellow) from 80%, red at 100% and over, gray without a budget."""
    return rx.match(level, ("ok", "grass"), ("warning", "amber"), ("exceeded", "red"), "gray")


def spend_badge(status: Any, label: Any) -> rx.Component:
    # Amber's soft text reaches only 4.25:1 on its own background: the high-contrast text passes AA.
    return rx.badge(
        label,
        color_scheme=level_color(status),
        high_contrast=status == "warning",
        variant="soft",
        custom_attrs={"data-status": status},
    )


def budget_bar(text: Any, pct: Any, level: Any, aria: Any, *, size: str = "2") -> rx.Component:
    """A spend bar against a budget (`pct` 0-100); `text` says the amounts, `aria` names the bar."""
    return rx.vstack(
        rx.progress(value=pct, max=100, color_scheme=level_color(level), aria_label=aria, size=size),
        rx.text(text, size="1", color=rx.color("gray", 11)),
        spacing="1",
        width="100%",
        min_width="160px",
    )


def pager(page: Any, pages: Any, go: Any) -> rx.Component:
    """Previous / next through server-side pages; `go(n)` is the event that shows page n."""
    return rx.el.nav(
        rx.hstack(
            rx.button(
                rx.icon("chevron-left", size=14),
                "Previous",
                on_click=go(page - 1),
                disabled=page <= 1,
                variant="soft",
                size="1",
            ),
            rx.text("Page ", page, " of ", pages, size="2"),
            rx.button(
                "Next",
                rx.icon("chevron-right", size=14),
                on_click=go(page + 1),
                disabled=page >= pages,
                variant="soft",
                size="1",
            ),
            align="center",
            spacing="3",
        ),
        aria_label="Pages",
    )
