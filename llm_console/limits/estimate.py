"""What a request will probably use, known before the call: reserved against TPM/TPD and budgets, then
replaced by the real usage when the request settles.

Prompt tokens are estimated as one per four bytes of the request body (JSON punctuation included, so
usually above the real count); completion tokens as the request's own cap (`max_tokens`,
`max_completion_tokens`, `max_output_tokens`) or LLMC_LIMITS_COMPLETION_ESTIMATE_TOKENS when it sets
none. Cost uses the most expensive deployment the alias may route to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llm_console.gateway.pricing import Price, Usage, cost_usd

NO_COMPLETION = frozenset({"embeddings", "rerank"})
CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def estimate(
    endpoint: str, body_bytes: int, data: dict[str, Any], prices: Iterable[Price | None], default_completion: int
) -> tuple[int, float]:
    """(tokens, USD) this request is expected to use at most."""
    prompt = body_bytes // 4 + 1
    completion = 0
    if endpoint not in NO_COMPLETION:
        caps = [v for name in CAPS if isinstance(v := data.get(name), int) and not isinstance(v, bool) and v >= 0]
        completion = caps[0] if caps else default_completion
        n = data.get("n")
        if isinstance(n, int) and not isinstance(n, bool) and 1 < n <= 128:
            completion *= n
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
    cost = max((cost_usd(usage, p) for p in prices), default=0.0)
    return prompt + completion, cost
