"""Azure OpenAI: deployment names in the path, `api-version` in the query, the key in `api-key`."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from llm_console.gateway.providers.base import PATHS, Call, Wire

if TYPE_CHECKING:
    from llm_console.gateway.routing import Target

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAI:
    kind = "azure"
    wire: Wire = "openai"
    endpoints = frozenset({"chat", "completions", "embeddings"})

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["api-key"] = target.api_key
        return headers

    def _version(self, target: Target) -> str:
        return quote(str(target.options.get("api_version") or DEFAULT_API_VERSION), safe="-")

    def call(self, target: Target, endpoint: str) -> Call:
        base = target.api_base.removesuffix("/openai")
        url = f"{base}/openai/deployments/{quote(target.model, safe='')}{PATHS[endpoint]}"
        return Call("POST", f"{url}?api-version={self._version(target)}", self._headers(target))

    def health(self, target: Target) -> Call:
        base = target.api_base.removesuffix("/openai")
        return Call("GET", f"{base}/openai/models?api-version={self._version(target)}", self._headers(target))
