"""Azure OpenAI's deployment routes: the deployment in the path picks the model, `api-version` is mandatory.

Bodies are the OpenAI ones, so the handlers delegate to the OpenAI endpoints after routing; only Azure's
own routing failures (`MissingApiVersionParameter`, `DeploymentNotFound`, `OperationNotSupported`) differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.errors import ApiError
from llm_console.simulator.parsing import read_object

BodyHandler = Callable[[dict[str, Any]], Awaitable[Response]]

DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)


class AzureApi:
    """Deployment-scoped chat, completion and embedding routes over the OpenAI handlers."""

    def __init__(
        self, config: SimulatorConfig, *, chat: BodyHandler, completions: BodyHandler, embeddings: BodyHandler
    ) -> None:
        self.config = config
        self._chat = chat
        self._completions = completions
        self._embeddings = embeddings

    async def chat_completions(self, request: Request) -> Response:
        return await self._chat(await self._routed_body(request, "chatCompletion", self.config.models))

    async def completions(self, request: Request) -> Response:
        return await self._completions(await self._routed_body(request, "completion", self.config.models))

    async def embeddings(self, request: Request) -> Response:
        return await self._embeddings(await self._routed_body(request, "embeddings", self.config.embedding_models))

    async def _routed_body(self, request: Request, operation: str, serves: list[str]) -> dict[str, Any]:
        """Check the query and deployment, then return the body with `model` set to the deployment."""
        if not request.query_params.get("api-version"):
            raise ApiError(
                400,
                "The api-version query parameter (?api-version=) is required for all requests.",
                type=None,
                code="MissingApiVersionParameter",
            )
        deployment = request.path_params["deployment"]
        if deployment not in serves:
            known = [*self.config.models, *self.config.embedding_models, *self.config.rerank_models]
            if deployment in known:
                raise ApiError(
                    400,
                    f"The {operation} operation does not work with the specified model, {deployment}. "
                    "Please choose different model and try again.",
                    type=None,
                    code="OperationNotSupported",
                )
            raise ApiError(404, DEPLOYMENT_NOT_FOUND, type=None, code="DeploymentNotFound")
        body = await read_object(request)
        # Azure ignores any `model` in the body: the deployment decides.
        body["model"] = deployment
        return body
