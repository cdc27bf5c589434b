"""Tunable behaviour of the simulated vLLM upstream."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any


def _default_models() -> list[str]:
    return ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct"]


def _default_embedding_models() -> list[str]:
    return ["bge-small-en"]


def _default_rerank_models() -> list[str]:
    return ["bge-reranker-base"]


@dataclass
class SimulatorConfig:
    """Latency, capacity and failure knobs; the defaults feel like a small GPU serving an 8B model.

    `api_key`, when set, is required on every model route; `echo_key_in_errors` makes the 401 quote the
    presented key verbatim, as real providers do, so a gateway's redaction of upstream errors can be tested.
    """

    models: list[str] = field(default_factory=_default_models)
    embedding_models: list[str] = field(default_factory=_default_embedding_models)
    rerank_models: list[str] = field(default_factory=_default_rerank_models)
    ttft_ms: float = 120.0
    tokens_per_second: float = 60.0
    jitter: float = 0.25
    max_num_seqs: int = 16
    error_rate: float = 0.0
    max_output_tokens: int = 256
    kv_cache_tokens: int = 200_000
    max_model_len: int = 32_768
    seed: int | None = None
    api_key: str | None = field(default=None, repr=False)
    echo_key_in_errors: bool = False

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("SimulatorConfig.models must name at least one model")
        if self.ttft_ms < 0 or self.tokens_per_second < 0:
            raise ValueError("ttft_ms and tokens_per_second must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if self.max_num_seqs < 1 or self.max_output_tokens < 1 or self.kv_cache_tokens < 1:
            raise ValueError("max_num_seqs, max_output_tokens and kv_cache_tokens must be positive")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be blank; leave it unset to accept any key")

    @property
    def token_delay_s(self) -> float:
        """Mean pause between two generated tokens; zero when tokens_per_second is 0 or infinite."""
        if self.tokens_per_second <= 0 or math.isinf(self.tokens_per_second):
            return 0.0
        return 1.0 / self.tokens_per_second

    @classmethod
    def fast(cls, **overrides: Any) -> SimulatorConfig:
        """No latency, no jitter and effectively unbounded concurrency, for tests and benchmarks."""
        base = cls(ttft_ms=0.0, tokens_per_second=math.inf, jitter=0.0, max_num_seqs=1_000_000)
        return replace(base, **overrides)
