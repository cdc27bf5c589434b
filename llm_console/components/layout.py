"""The console shell (sidebar, header, theme toggle) and the one decorator every page goes through."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from llm_console import routes
from llm_console.auth.roles import ROLE_RANK
from llm_console.components.native_form import native_form
from llm_console.state.session import SessionState

NAV: list[tuple[str, str, str, str]] = [  # label, route, icon, lowest role that may open it
    ("Overview", routes.OVERVIEW, "layout-dashboard", "operator"),
    ("Usage & performance", routes.USAGE, "activity", "operator"),
    ("Logs & traces", routes.LOGS, "scroll-text", "viewer"),
    ("Embeddings", routes.EMBEDDINGS, "binary", "operator"),
    ("Costs & budgets", routes.COSTS, "wallet", "operator"),
    ("Spend by user", routes.SPEND, "user-round", "viewer"),
    ("Model catalog", routes.CATALOG, "boxes", "viewer"),
    ("Configuration", routes.CONFIG, "settings", "viewer"),
    ("Routing rules", routes.ROUTING, "split", "viewer"),
    ("Config as code", routes.CONFIG_IO, "file-code", "operator"),
    ("Telemetry export", routes.TELEMETRY, "radio-tower", "operator"),
    ("Virtual keys", routes.KEYS, "key-round", "viewer"),
    ("Limits & budgets", routes.LIMITS, "gauge", "viewer"),
    ("Alerts", routes.ALERTS, "bell", "operator"),
    ("Fleet & GPUs", routes.FLEET, "server", "viewer"),
    ("Analytics", routes.ANALYTICS, "chart-line", "operator"),
    ("Prompts", routes.PROMPTS, "message-square-text", "viewer"),
    ("Organization", routes.ORG, "users", "operator"),
    ("Audit log", routes.AUDIT, "history", "operator"),
]


def nav_link(label: str, href: str, icon: str, minimum: str) -> rx.Component:
    """A sidebar link, shown to users whose role may open the page (the page checks again)."""
    # Reflex names the "/" route "/index".
    active = rx.State.router.page.path == ("/index" if href == routes.OVERVIEW else href)
    link = rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), align="center", spacing="2"),
        href=href,
        underline="none",
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 11)),
        background=rx.cond(active, rx.color("accent", 3), "transparent"),
        border_radius="6px",
        padding="6px 10px",
        width="100%",
        aria_current=rx.cond(active, "page", "false"),
    )
    return rx.cond(SessionState.rank >= ROLE_RANK[minimum], link)


def sidebar() -> rx.Component:
    return rx.el.nav(
        rx.vstack(
            rx.hstack(
                rx.icon("waypoints", size=20), rx.text("LLM Console", size="4", weight="bold"), padding="8px 10px"
            ),
            *[nav_link(*item) for item in NAV],
            spacing="1",
            width="100%",
        ),
        aria_label="Main",
        width="232px",
        min_width="232px",
        padding="12px",
        border_right=f"1px solid {rx.color('gray', 5)}",
        height="100vh",
        position="sticky",
        top="0",
        overflow_y="auto",
        display=["none", "none", "block"],
    )


def mobile_menu() -> rx.Component:
    return rx.box(
        rx.menu.root(
            rx.menu.trigger(rx.icon_button(rx.icon("menu"), variant="ghost", aria_label="Open navigation")),
            rx.menu.content(
                *[
                    rx.cond(
                        SessionState.rank >= ROLE_RANK[minimum],
                        rx.menu.item(rx.link(label, href=href, underline="none")),
                    )
                    for label, href, _, minimum in NAV
                ]
            ),
        ),
        display=["block", "block", "none"],
    )


def header(title: str) -> rx.Component:
    return rx.hstack(
        mobile_menu(),
        rx.heading(title, size="6", as_="h1"),
        rx.spacer(),
        rx.badge(SessionState.role, variant="soft"),
        rx.text(SessionState.email, size="2", color=rx.color("gray", 11), id="signed-in-as"),
        rx.color_mode.button(aria_label="Toggle dark mode"),
        native_form(
            rx.button("Sign out", type="submit", variant="outline", size="1"),
            action="/auth/logout",
            method="post",
        ),
        align="center",
        width="100%",
        padding_bottom="12px",
        spacing="3",
        wrap="wrap",
    )


def console_page(
    route: str, title: str, on_load: list[rx.event.EventType] | None = None
) -> Callable[[Callable[[], rx.Component]], Callable[[], rx.Component]]:
    """Register a signed-in page: the session check first, then the page's own loaders."""

    def decorator(body: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            return rx.hstack(
                sidebar(),
                rx.el.main(header(title), body(), padding=["12px", "16px", "24px"], width="100%", min_width="0"),
                spacing="0",
                align="start",
                width="100%",
            )

        rx.page(route=route, title=f"{title} · LLM Console", on_load=[SessionState.check, *(on_load or [])])(page)
        return page

    return decorator


def coming_soon(what: str, items: list[str]) -> rx.Component:
    """An honest empty area: what will be here, and no invented data."""
    return rx.card(
        rx.vstack(
            rx.hstack(rx.icon("construction", size=18), rx.heading("Coming next", size="4", as_="h2")),
            rx.text(what, color=rx.color("gray", 11)),
            rx.unordered_list(*[rx.list_item(i) for i in items]),
            spacing="3",
        ),
        max_width="720px",
    )
