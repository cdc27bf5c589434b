"""The OpenAI-compatible gateway: a plain Starlette app with no Reflex import."""

from llm_console.gateway.app import GatewayRuntime, create_gateway

__all__ = ["GatewayRuntime", "create_gateway"]
