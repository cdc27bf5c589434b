"""Gentle, realistic demo traffic against an OpenAI-compatible `/v1/chat/completions`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 4
STREAM_SHARE = 0.4
BAD_MODEL_SHARE = 0.03
BAD_MODEL = "demo-model-that-does-not-exist"
LOG_EVERY_S = 60.0
REQUEST_TIMEOUT_S = 60.0
EMBEDDING_HINTS = ("embed", "bge-", "e5-", "gte-", "minilm")

PROMPTS = (
    "How do I reverse a list in Python without modifying the original?",
    "Summarise the difference between TCP and UDP in two sentences.",
    "Write a polite email declining a meeting invitation for Friday.",
    "What are three good questions to ask at the end of a job interview?",
    "Explain what a Kubernetes readiness probe is for.",
    "Give me a vegetarian dinner idea that takes under 30 minutes.",
    "Translate 'Where is the train station?' into Spanish and German.",
    "What is the time complexity of binary search, and why?",
    "Suggest a name for a small bakery that focuses on sourdough.",
    "How should I structure a README for an open-source CLI tool?",
    "Why does my SQL query with GROUP BY return more rows than expected?",
    "Write a haiku about on-call rotations.",
    "What is the difference between a process and a thread?",
    "Draft a short release note for a bug fix in the login page.",
    "Explain gradient descent to a high-school student.",
    "Which HTTP status code should an API return for a rate limit?",
)
SYSTEM_PROMPTS = (
    "You are a concise assistant.",
    "You are a helpful senior engineer. Answer briefly.",
)

DEMO_PROMPT = "support/answer"  # seeded by llm_console.demo.library
PROMPT_SHARE = 0.25


@dataclass
class TrafficStats:
    """Running totals; `sent` equals `ok + errors` once all requests have finished."""

    sent: int = 0
    ok: int = 0
    errors: int = 0


def _chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def _payload(rng: random.Random, models: list[str], prompt: str | None = None) -> dict[str, Any]:
    model = BAD_MODEL if rng.random() < BAD_MODEL_SHARE else rng.choice(models)
    messages = [{"role": "user", "content": rng.choice(PROMPTS)}]
    if rng.random() < 0.3:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    payload: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": rng.randint(32, 200)}
    if prompt is not None and rng.random() < PROMPT_SHARE:  # rendered by the gateway from the stored prompt
        variables = {"company": "Acme", "question": messages[-1]["content"]}
        payload |= {"messages": [], "prompt": {"name": prompt, "variables": variables}}
    if rng.random() < 0.8:  # the application names its end user (OpenAI's `user` field)
        payload["user"] = f"user-{int(rng.paretovariate(1.2)) % 200:04d}"
    if rng.random() < STREAM_SHARE:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


async def _send(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> bool:
    """Send one request and report whether it fully succeeded; never raises on HTTP trouble."""
    try:
        if not payload.get("stream"):
            response = await client.post(url, json=payload)
            return response.status_code == 200
        async with client.stream("POST", url, json=payload) as response:
            if response.status_code != 200:
                await response.aread()
                return False
            done = False
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: ") and "error" in orjson.loads(line[6:]):
                    return False
            return done
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        log.debug("demo request failed: %r", exc)
        return False


async def run_traffic(
    base_url: str,
    api_key: str,
    models: list[str],
    rate_per_second: float = 0.5,
    stop: asyncio.Event | None = None,
    max_requests: int | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    seed: int | None = None,
    prompt: str | None = None,
) -> TrafficStats:
    """Send requests with Poisson spacing until `stop` is set or `max_requests` were sent.

    Once stopped it waits for the requests in flight; cancelling the task abandons them instead.
    """
    if not models:
        raise ValueError("run_traffic needs at least one model")
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    stop = stop or asyncio.Event()
    rng = random.Random(seed)
    stats = TrafficStats()
    url = _chat_url(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()
    last_log = time.monotonic()

    async def one(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
        nonlocal last_log
        try:
            ok = await _send(client, url, payload)
        finally:
            slots.release()
        if ok:
            stats.ok += 1
        else:
            stats.errors += 1
        if time.monotonic() - last_log >= LOG_EVERY_S:
            last_log = time.monotonic()
            log.info("demo traffic: sent=%d ok=%d errors=%d", stats.sent, stats.ok, stats.errors)

    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=5.0)
    async with httpx.AsyncClient(transport=transport, headers=headers, timeout=timeout) as client:
        try:
            while not stop.is_set() and (max_requests is None or stats.sent < max_requests):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=rng.expovariate(rate_per_second))
                    break
                await slots.acquire()
                stats.sent += 1
                task = asyncio.create_task(one(client, _payload(rng, models, prompt)))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight)
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
    return stats


async def _discover_models(base_url: str, api_key: str) -> list[str]:
    url = _chat_url(base_url).removesuffix("/chat/completions") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(headers=headers, timeout=10.0) as client:
        response = await client.get(url)
        response.raise_for_status()
        ids = [m["id"] for m in response.json()["data"]]
    # /v1/models also lists embedding models, which would only produce 404s on chat.
    return [i for i in ids if not any(hint in i.lower() for hint in EMBEDDING_HINTS)]


async def _has_prompt(base_url: str, api_key: str, name: str) -> bool:
    """Whether the gateway holds the demo's prompt (a seeded database does), so some calls can use it."""
    url = _chat_url(base_url).removesuffix("/chat/completions") + f"/prompts/{name}"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(headers=headers, timeout=10.0) as client:
        return (await client.get(url)).status_code == 200


async def _main(args: argparse.Namespace) -> TrafficStats:
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    if not models:
        models = await _discover_models(args.base_url, args.api_key)
    prompt = DEMO_PROMPT if await _has_prompt(args.base_url, args.api_key, DEMO_PROMPT) else None
    log.info("demo traffic to %s at %.2f req/s over %s", args.base_url, args.rate, ", ".join(models))
    return await run_traffic(args.base_url, args.api_key, models, args.rate, max_requests=args.count, prompt=prompt)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m llm_console.demo.traffic --base-url http://127.0.0.1:3000`."""
    parser = argparse.ArgumentParser(prog="python -m llm_console.demo.traffic", description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8001")
    parser.add_argument("--api-key", default=os.environ.get("LLMC_DEMO_API_KEY", ""))
    parser.add_argument("--rate", type=float, default=0.5, help="mean requests per second")
    parser.add_argument("--models", help="comma-separated model names (default: the server's /v1/models)")
    parser.add_argument("--count", type=int, help="stop after this many requests")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        stats = asyncio.run(_main(args))
    except KeyboardInterrupt:
        return
    except httpx.HTTPError as exc:
        parser.exit(1, f"cannot reach {args.base_url}: {exc}\n")
    print(f"sent={stats.sent} ok={stats.ok} errors={stats.errors}")


if __name__ == "__main__":
    main()
