"""Generic OpenAI-compatible upstreams: vLLM, OpenAI, LiteLLM, FakeAI, SGLang, TGI's OpenAI layer, ..."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_console.gateway.providers.base import PATHS, Call, Wire, v1_root

if TYPE_CHECKING:
    from llm_console.gateway.routing import Target


class OpenAICompatible:
    kind = "openai"
    wire: Wire = "openai"
    endpoints = frozenset({"chat", "completions", "embeddings", "rerank", "responses"})

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return headers

    def call(self, target: Target, endpoint: str) -> Call:
        return Call("POST", v1_root(target.api_base) + PATHS[endpoint], self._headers(target))

    def health(self, target: Target) -> Call:
        return Call("GET", v1_root(target.api_base) + "/models", self._headers(target))
