"""Command line: `python -m llm_console.simulator --port 8001`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.server import serve


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
        overrides["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    return replace(config, **overrides)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llm_console.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--fast", action="store_true", help="no latency, unbounded concurrency (benchmarks)")
    parser.add_argument("--error-rate", type=float, help="fraction of requests answered with a 500")
    parser.add_argument("--ttft-ms", type=float, help="mean time to first token in milliseconds")
    parser.add_argument("--tps", type=float, help="generated tokens per second per request")
    parser.add_argument("--seed", type=int, help="seed for lengths, text and injected errors")
    parser.add_argument("--models", help="comma-separated chat model names")
    args = parser.parse_args(argv)
    try:
        config = build_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
