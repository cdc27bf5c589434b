"""One interface for every provider: how to address a deployment, authenticate, and check its health.

A provider speaks one wire format natively (`openai` or `anthropic`); the handlers translate between the
client's format and the provider's when they differ (llm_console/gateway/translate.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from llm_console.gateway.routing import Target

Wire = Literal["openai", "anthropic"]

# Endpoint name -> path under the provider's /v1 root (OpenAI-compatible layout).
PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "rerank": "/rerank",
    "responses": "/responses",
    "messages": "/messages",
}


@dataclass(frozen=True, slots=True)
class Call:
    """An upstream request ready to send. `headers` hold the credential: never log this object."""

    method: str
    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # keep credentials out of tracebacks and debug logs
        return f"Call({self.method} {self.url})"


class Provider(Protocol):
    kind: str
    wire: Wire
    endpoints: frozenset[str]

    def call(self, target: Target, endpoint: str) -> Call:
        """Where and how to send `endpoint` (a key of PATHS) for `target`."""
        ...

    def health(self, target: Target) -> Call:
        """A cheap GET proving the deployment answers (its model list)."""
        ...


def v1_root(api_base: str) -> str:
    """`http://h:8000` and `http://h:8000/v1` both address the same OpenAI-style root."""
    return api_base if api_base.endswith("/v1") else f"{api_base}/v1"
