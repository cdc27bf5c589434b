"""Pages: layout only. Importing this package registers every page."""

from llm_console.pages import (
    audit,
    catalog,
    config,
    config_io,
    costs,
    embeddings,
    invite,
    keys,
    login,
    logs,
    organization,
    overview,
    planned,
    routing,
    spend,
    usage,
)

__all__ = [
    "audit",
    "catalog",
    "config",
    "config_io",
    "costs",
    "embeddings",
    "invite",
    "keys",
    "login",
    "logs",
    "organization",
    "overview",
    "planned",
    "routing",
    "spend",
    "usage",
]
