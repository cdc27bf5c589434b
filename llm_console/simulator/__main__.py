"""Simulated vLLM upstream: `python -m llm_console.simulator --port 8001`.

Serves OpenAI's /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses and /v1/models, rerank
at /v1/rerank (also /rerank and /v2/rerank), Anthropic's /v1/messages, Azure OpenAI's
/openai/deployments/{deployment}/(chat/completions|completions|embeddings)?api-version=..., plus /health and
vLLM-style Prometheus /metrics. With --api-key every model route needs the key (Authorization: Bearer,
x-api-key or api-key header).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.server import serve


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    """Turn parsed flags into a config; explicit flags override the --fast preset."""
    config = SimulatorConfig.fast() if args.fast else SimulatorConfig()
    overrides: dict[str, Any] = {}
    if args.error_rate is not None:
        overrides["error_rate"] = args.error_rate
    if args.ttft_ms is not None:
        overrides["ttft_ms"] = args.ttft_ms
    if args.tps is not None:
        overrides["tokens_per_second"] = args.tps
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.models:
        overrides["models"] = _names(args.models)
    if args.rerank_models:
        overrides["rerank_models"] = _names(args.rerank_models)
    if args.api_key is not None:
        overrides["api_key"] = args.api_key
    if args.echo_key_in_errors:
        overrides["echo_key_in_errors"] = True
    if args.max_num_seqs is not None:
        overrides["max_num_seqs"] = args.max_num_seqs
    if args.kv_cache_tokens is not None:
        overrides["kv_cache_tokens"] = args.kv_cache_tokens
    return replace(config, **overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_console.simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--fast", action="store_true", help="no latency, unbounded concurrency (benchmarks)")
    parser.add_argument(
        "--error-rate", type=float, help="fraction of requests answered with a server error (529 on /v1/messages)"
    )
    parser.add_argument("--ttft-ms", type=float, help="mean time to first token in milliseconds")
    parser.add_argument("--tps", type=float, help="generated tokens per second per request")
    parser.add_argument("--seed", type=int, help="seed for lengths, text and injected errors")
    parser.add_argument("--models", help="comma-separated chat model names (also the Anthropic and Azure ones)")
    parser.add_argument("--rerank-models", help="comma-separated rerank model names")
    parser.add_argument(
        "--max-num-seqs", type=int, help="sequences generated at once; more wait in the queue (vLLM's flag)"
    )
    parser.add_argument("--kv-cache-tokens", type=int, help="tokens the simulated KV cache holds (its usage gauge)")
    parser.add_argument("--api-key", help="require this key on every model route (answered with 401 otherwise)")
    parser.add_argument(
        "--echo-key-in-errors",
        action="store_true",
        help="quote a rejected key verbatim in the 401 message, as real providers do",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
