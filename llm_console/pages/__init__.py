"""Pages: layout only. Importing this package registers every page."""

from llm_console.pages import login, logs, overview, planned, usage

__all__ = ["login", "logs", "overview", "planned", "usage"]
