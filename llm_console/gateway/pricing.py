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
