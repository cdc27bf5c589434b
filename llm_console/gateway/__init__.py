"""The OpenAI-compatible gateway: a plain Starlette app with no Reflex import.

`GatewayRuntime` and `create_gateway` load on first use, so a module that needs only a leaf of this
package (`gateway.errors`, `gateway.pricing`) does not import the whole app (and the limiter, which the
app imports, can itself import those leaves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_console.gateway.app import GatewayRuntime, create_gateway

__all__ = ["GatewayRuntime", "create_gateway"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from llm_console.gateway import app

        return getattr(app, name)
    raise AttributeError(f"module 'llm_console.gateway' has no attribute {name!r}")
