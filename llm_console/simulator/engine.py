"""Simulated engine: admission, token timing, counters and vLLM-style Prometheus metrics."""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import struct
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from llm_console.simulator.config import SimulatorConfig

FINISH_REASONS = ("stop", "length", "abort")
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
EMBEDDING_DIM = 384
MIN_COMPLETION_TOKENS = 8
# Chat templates wrap every message in role markers; each dialect counts them the same way.
MESSAGE_OVERHEAD_TOKENS = 4

_VOCABULARY = (
    "the model can help you plan test and ship small changes with clear notes about each step "
    "a good answer starts from the question then checks the facts and explains the tradeoffs "
    "we keep the service simple fast and easy to observe so that every request is measured "
    "latency depends on the prompt length the batch size and how busy the server is right now "
    "try a shorter prompt or a smaller model when you need quick replies during busy hours"
)
_WORDS = tuple(_VOCABULARY.split())


def count_tokens(text: str) -> int:
    """Rough tokenizer: one token per four characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


def lorem_tokens(rng: random.Random, n: int) -> list[str]:
    """Return n whole-word tokens that join into plain English-looking sentences."""
    tokens: list[str] = []
    sentence_left = 0
    for i in range(n):
        word = rng.choice(_WORDS)
        if sentence_left == 0:
            word = word.capitalize()
            sentence_left = rng.randint(6, 14)
        sentence_left -= 1
        if sentence_left == 0 or i == n - 1:
            word += "."
            sentence_left = 0
        tokens.append(word if i == 0 else " " + word)
    return tokens


def embed(text: str, model: str, dimensions: int = EMBEDDING_DIM) -> list[float]:
    """Deterministic unit vector derived from a hash of the model and text."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{model}\x00{block}\x00{text}".encode()).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", digest))
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class Histogram:
    """Cumulative Prometheus histogram with fixed upper bounds."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


@dataclass
class Generation:
    """One planned completion: its size, the reason it ends and how far it got."""

    prompt_tokens: int
    tokens: list[str]
    finish_reason: str
    completion_tokens: int = 0

    def cut_at(self, stops: Sequence[str]) -> str | None:
        """End the plan at the earliest stop sequence and return it, or None when none occurs.

        The tokens that spelled the stop sequence still count as generated, but their text is dropped,
        as providers do: the answer ends just before the stop sequence.
        """
        text = "".join(self.tokens)
        hits = [(text.find(stop), stop) for stop in stops if stop and stop in text]
        if not hits:
            return None
        start, stop = min(hits)
        end, consumed = start + len(stop), 0
        kept: list[str] = []
        for token in self.tokens:
            kept.append(token[: max(0, start - consumed)])
            consumed += len(token)
            if consumed >= end:
                break
        self.tokens = kept
        self.finish_reason = "stop"
        return stop


class Engine:
    """Mutable state of the simulated server, owned by one app on one event loop."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.finished = dict.fromkeys(FINISH_REASONS, 0)
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self._slots = asyncio.Semaphore(config.max_num_seqs)

    @property
    def kv_cache_usage(self) -> float:
        return min(1.0, self.kv_tokens / self.config.kv_cache_tokens)

    def should_fail(self) -> bool:
        """Draw whether this request gets an injected server error."""
        return self.config.error_rate > 0 and self.rng.random() < self.config.error_rate

    def plan(self, prompt_tokens: int, max_tokens: int | None) -> Generation:
        """Choose the completion length and finish reason for a request."""
        limit = min(max_tokens or self.config.max_output_tokens, self.config.max_output_tokens)
        n = self.rng.randint(min(MIN_COMPLETION_TOKENS, limit), limit)
        finish = "length" if max_tokens is not None and n >= max_tokens else "stop"
        return Generation(prompt_tokens, lorem_tokens(self.rng, n), finish)

    def _jittered(self, mean_s: float) -> float:
        if mean_s <= 0:
            return 0.0
        j = self.config.jitter
        return mean_s * self.rng.uniform(1.0 - j, 1.0 + j)

    async def run(self, gen: Generation) -> AsyncGenerator[str, None]:
        """Queue for a slot, then yield tokens at the configured pace; always releases the slot."""
        arrival = time.monotonic()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.kv_tokens += gen.prompt_tokens
        self.prompt_tokens_total += gen.prompt_tokens
        completed = False
        try:
            due = time.monotonic() + self._jittered(self.config.ttft_ms / 1000)
            for token in gen.tokens:
                pause = due - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                if gen.completion_tokens == 0:
                    self.ttft.observe(time.monotonic() - arrival)
                gen.completion_tokens += 1
                self.kv_tokens += 1
                self.generation_tokens_total += 1
                yield token
                due += self._jittered(self.config.token_delay_s)
            completed = True
        finally:
            self.running -= 1
            self.kv_tokens -= gen.prompt_tokens + gen.completion_tokens
            self._slots.release()
            self.finished[gen.finish_reason if completed else "abort"] += 1
            self.e2e.observe(time.monotonic() - arrival)

    async def complete(self, gen: Generation) -> str:
        """Run a planned generation to its end and return the whole text."""
        async with aclosing(self.run(gen)) as tokens:
            return "".join([token async for token in tokens])

    def render_prometheus(self) -> str:
        """Prometheus text exposition using vLLM's metric names, labelled with the first model."""
        label = f'model_name="{_escape(self.config.models[0])}"'
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", self.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", self.waiting),
            ("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", self.kv_cache_usage),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", self.kv_cache_usage),
        )
        for name, help_text, value in gauges:
            family(name, "gauge", help_text)
            out.append(f"{name}{{{label}}} {float(value)!r}")
        counters = (
            ("vllm:prompt_tokens_total", "Number of prefill tokens processed.", self.prompt_tokens_total),
            ("vllm:generation_tokens_total", "Number of generation tokens processed.", self.generation_tokens_total),
        )
        for name, help_text, value in counters:
            family(name, "counter", help_text)
            out.append(f"{name}{{{label}}} {float(value)!r}")
        family("vllm:request_success_total", "counter", "Count of successfully processed requests.")
        for reason, value in self.finished.items():
            out.append(f'vllm:request_success_total{{finished_reason="{reason}",{label}}} {float(value)!r}')
        histograms = (
            ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", self.ttft),
            ("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", self.e2e),
        )
        for name, help_text, hist in histograms:
            family(name, "histogram", help_text)
            for bound, count in zip(hist.buckets, hist.counts, strict=True):
                out.append(f'{name}_bucket{{le="{bound!r}",{label}}} {float(count)!r}')
            out.append(f'{name}_bucket{{le="+Inf",{label}}} {float(hist.count)!r}')
            out.append(f"{name}_count{{{label}}} {float(hist.count)!r}")
            out.append(f"{name}_sum{{{label}}} {hist.sum!r}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
