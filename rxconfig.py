"""Reflex configuration. Settings proper live in llm_console/settings.py (LLMC_* variables)."""

import os

import reflex as rx

config = rx.Config(
    app_name="llm_console",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    frontend_port=int(os.environ.get("LLMC_PORT", "3000")),
    backend_port=int(os.environ.get("LLMC_PORT", "3000")),
    redis_url=os.environ.get("LLMC_REDIS_URL") or None,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="inherit", accent_color="indigo"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
