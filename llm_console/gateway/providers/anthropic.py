"""Anthropic's native Messages API (`x-api-key`, `anthropic-version`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_console.gateway.providers.base import Call, Wire, v1_root

if TYPE_CHECKING:
    from llm_console.gateway.routing import Target

DEFAULT_VERSION = "2023-06-01"


class Anthropic:
    kind = "anthropic"
    wire: Wire = "anthropic"
    endpoints = frozenset({"messages"})

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "anthropic-version": str(target.options.get("anthropic_version") or DEFAULT_VERSION),
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return headers

    def call(self, target: Target, endpoint: str) -> Call:
        return Call("POST", v1_root(target.api_base) + "/messages", self._headers(target))

    def health(self, target: Target) -> Call:
        return Call("GET", v1_root(target.api_base) + "/models", self._headers(target))
