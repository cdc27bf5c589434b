"""Configuration: being built (placeholder until its page lands)."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.layout import coming_soon, console_page


@console_page(routes.CONFIG, "Configuration")
def page() -> rx.Component:
    return coming_soon("Providers and deployments, audited.", [])
