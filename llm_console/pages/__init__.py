"""Pages: layout only. Importing this package registers every page."""

from llm_console.pages import costs, embeddings, login, logs, overview, planned, spend, usage

__all__ = ["costs", "embeddings", "login", "logs", "overview", "planned", "spend", "usage"]
