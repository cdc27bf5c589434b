"""Cost of a call from a per-model price table (USD per million tokens)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cached_input_per_mtok: float = 0.0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: object) -> Usage:
        """Read an OpenAI `usage` object defensively; junk counts as zero."""
        if not isinstance(usage, dict):
            return cls()
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        return cls(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(cached))

    @classmethod
    def from_responses(cls, usage: object) -> Usage:
        """The Responses API's `usage`: input/output tokens, cached ones under input_tokens_details."""
        if not isinstance(usage, dict):
            return cls()
        details = usage.get("input_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        return cls(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")), _int(cached))

    @classmethod
    def from_anthropic(cls, usage: object) -> Usage:
        """Anthropic's `input_tokens` exclude cache reads and writes; prompt tokens here include both."""
        if not isinstance(usage, dict):
            return cls()
        read, write = _int(usage.get("cache_read_input_tokens")), _int(usage.get("cache_creation_input_tokens"))
        return cls(_int(usage.get("input_tokens")) + read + write, _int(usage.get("output_tokens")), read)

    @classmethod
    def from_rerank(cls, usage: object) -> Usage:
        """Rerankers report one figure (`total_tokens`, sometimes `prompt_tokens`): all of it is input."""
        if not isinstance(usage, dict):
            return cls()
        return cls(_int(usage.get("prompt_tokens")) or _int(usage.get("total_tokens")))

    def merged(self, other: Usage) -> Usage:
        """Field-wise maximum: streams report input and output tokens in different events."""
        return Usage(
            max(self.prompt_tokens, other.prompt_tokens),
            max(self.completion_tokens, other.completion_tokens),
            max(self.cached_tokens, other.cached_tokens),
        )


def _int(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


# Public list prices of a few well-known hosted models; the table in the database overrides these.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "text-embedding-3-small": Price(0.02, 0.0, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0, 0.0),
}


def cost_usd(usage: Usage, price: Price | None) -> float:
    """Cached prompt tokens are billed at the cached rate, the rest at the input rate."""
    if price is None:
        return 0.0
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    uncached = usage.prompt_tokens - cached
    cached_rate = price.cached_input_per_mtok or price.input_per_mtok
    return (
        uncached * price.input_per_mtok + cached * cached_rate + usage.completion_tokens * price.output_per_mtok
    ) / 1e6
