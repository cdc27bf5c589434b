"""The gateway app factory: standalone (`llm-console gateway`) or mounted in the console."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llm_console.gateway import errors
from llm_console.gateway.feedback import post_feedback
from llm_console.gateway.handlers import ENDPOINTS, key_limits, list_models, make_handler, retrieve_model
from llm_console.gateway.metrics import metrics_endpoint
from llm_console.gateway.openapi import openapi_document
from llm_console.gateway.prompts import fetch_prompt
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.settings import Settings


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def openapi_endpoint(document: Callable[[], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
    async def openapi(_request: Request) -> Response:
        return JSONResponse(document())

    return openapi


def routes(runtime: GatewayRuntime, document: Callable[[], dict[str, Any]] = openapi_document) -> list[BaseRoute]:
    table: list[BaseRoute] = [Route(ep.path, make_handler(ep), methods=["POST"]) for ep in ENDPOINTS]
    table += [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/v1/limits", key_limits, methods=["GET"]),
        Route("/v1/feedback", post_feedback, methods=["POST"]),
        Route("/v1/prompts/{name:path}", fetch_prompt, methods=["GET"]),
        Route("/gateway/health", health, methods=["GET"]),
        Route("/gateway/openapi.json", openapi_endpoint(document), methods=["GET"]),
    ]
    if runtime.settings.metrics_enabled:
        table.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return table


def create_gateway(
    settings: Settings | None = None,
    *,
    runtime: GatewayRuntime | None = None,
    standalone: bool = True,
    extra_routes: list[Route] | None = None,
    document: Callable[[], dict[str, Any]] = openapi_document,
) -> Starlette:
    """Build the ASGI app. Standalone it runs its own lifespan; mounted, the host runs `runtime.lifespan()`.

    `document` is what `/gateway/openapi.json` serves (the console adds its own APIs to the gateway's).
    """
    if runtime is None:
        if settings is None:
            raise ValueError("create_gateway needs settings or a runtime")
        runtime = GatewayRuntime(settings)
    rt = runtime

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with rt.lifespan():
            yield

    app = Starlette(
        routes=[*routes(rt, document), *(extra_routes or [])],
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
