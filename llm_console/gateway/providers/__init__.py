"""Provider adapters, one module each, looked up by `Provider.kind`."""

from __future__ import annotations

from llm_console.gateway.providers.anthropic import Anthropic
from llm_console.gateway.providers.azure import AzureOpenAI
from llm_console.gateway.providers.base import PATHS, Call, Provider
from llm_console.gateway.providers.openai_compat import OpenAICompatible

PROVIDERS: dict[str, Provider] = {p.kind: p for p in (OpenAICompatible(), Anthropic(), AzureOpenAI())}

__all__ = ["PATHS", "PROVIDERS", "Call", "Provider"]
