"""The gateway app factory: standalone (`llm-console gateway`) or mounted in the console."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from llm_console.gateway import errors
from llm_console.gateway.handlers import chat_completions, list_models
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.settings import Settings


async def health(_request: object) -> JSONResponse:
    return JSONResponse({"status": "ok"})


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/gateway/health", health, methods=["GET"]),
]


def create_gateway(
    settings: Settings | None = None,
    *,
    runtime: GatewayRuntime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    standalone: bool = True,
    extra_routes: list[Route] | None = None,
) -> Starlette:
    """Build the ASGI app. Standalone it runs its own lifespan; mounted, the host runs `runtime.lifespan()`."""
    if runtime is None:
        if settings is None:
            raise ValueError("create_gateway needs settings or a runtime")
        runtime = GatewayRuntime(settings, transport=transport)
    rt = runtime

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with rt.lifespan():
            yield

    app = Starlette(
        routes=[*ROUTES, *(extra_routes or [])],
        lifespan=lifespan if standalone else None,
        exception_handlers={
            errors.GatewayError: errors.gateway_error_handler,
            404: errors.not_found_handler,
            405: errors.method_not_allowed_handler,
            500: errors.internal_error_handler,
        },
    )
    app.state.llmc_runtime = rt
    return app
