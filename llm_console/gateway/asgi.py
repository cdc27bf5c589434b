"""ASGI factory for `llm-console gateway` (uvicorn workers call it; nothing runs at import)."""

from __future__ import annotations

from starlette.applications import Starlette

from llm_console.gateway.app import create_gateway
from llm_console.settings import Settings


def create_app() -> Starlette:
    return create_gateway(Settings())
