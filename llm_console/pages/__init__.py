"""Pages: layout only. Importing this package registers every page."""

from llm_console.pages import login, overview, planned

__all__ = ["login", "overview", "planned"]
