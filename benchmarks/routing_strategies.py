"""What choosing a deployment costs per request, by strategy: engine-aware against weighted and least-busy.

The router runs on the hot path before every upstream call. Each strategy ranks the same route of N
deployments in the same process; engine-aware is measured with fresh samples on every deployment, and
with every sample stale (then the alias's fallback strategy decides, after the freshness check).

    .venv/bin/python benchmarks/routing_strategies.py            # 2, 8 and 32 deployments
    .venv/bin/python benchmarks/routing_strategies.py --quick
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `llm_console` importable

from llm_console.gateway.balancer import Balancer, EngineSample, EngineSignals
from llm_console.gateway.routing import Policy, Route, Target


def route(n: int, strategy: str) -> Route:
    targets = tuple(
        Target(
            deployment_id=i,
            deployment=f"vllm-{i}",
            model="llama",
            api_base=f"http://10.0.0.{i}:8000/v1",
            kind="openai",
            api_key=None,
            price=None,
            weight=1 + i % 3,
        )
        for i in range(n)
    )
    return Route("llama", targets, strategy, Policy(engine_fallback="least_busy"))


def balancer(n: int, fresh: bool) -> Balancer:
    clock = [1000.0]
    signals = EngineSignals(stale_after_s=20, clock=lambda: clock[0])
    rng = random.Random(7)
    for i in range(n):
        at = clock[0] - (1.0 if fresh else 60.0)
        signals.update(
            i,
            EngineSample(waiting=rng.randrange(0, 6), running=rng.randrange(0, 64), kv_cache_usage=rng.random(), at=at),
        )
    b = Balancer(failure_threshold=3, cooldown_s=5, rng=random.Random(1), clock=lambda: clock[0], signals=signals)
    for i in range(n):
        b.state(i).inflight = rng.randrange(0, 8)
    return b


def per_call_us(b: Balancer, r: Route, calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean time of one `order()`."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            b.order(r)
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    args = parser.parse_args()
    calls, rounds = (2_000, 3) if args.quick else (20_000, 7)
    cases = [
        ("weighted", "weighted", True),
        ("least_busy", "least_busy", True),
        ("engine_aware (fresh)", "engine_aware", True),
        ("engine_aware (stale -> least_busy)", "engine_aware", False),
    ]
    print(f"{'deployments':>11} | " + " | ".join(f"{name:>34}" for name, _, _ in cases))
    for n in (2, 8, 32):
        figures = [per_call_us(balancer(n, fresh), route(n, strategy), calls, rounds) for _, strategy, fresh in cases]
        base = figures[0]
        cells = [f"{f:8.2f} µs ({f / base:4.2f}x weighted)" for f in figures]
        print(f"{n:>11} | " + " | ".join(f"{c:>34}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
