"""The console's read-only analytics API (`/api/v1/analytics/`), for signed-in users and admin keys."""

from llm_console.api.routes import OPENAPI_PATH, make_analytics_routes

__all__ = ["OPENAPI_PATH", "make_analytics_routes"]
