"""Prompt rendering on the hot path: what a call that references a stored prompt pays over one that sends the
same messages itself, in one process, interleaved rounds.

Both paths parse the JSON body and validate it as a chat completion (what every call does before routing);
the prompt path also takes the reference apart, resolves it from the PromptCache (a hit: no database read),
renders the template and serializes the body it forwards. Run `.venv/bin/python benchmarks/prompt_render.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.db.records import LogRecord
from llm_console.gateway.body import parse_json_object
from llm_console.gateway.prompts import apply_prompt
from llm_console.gateway.schemas import ChatCompletionRequest
from llm_console.prompts.store import PromptCache, resolve
from llm_console.services.prompts import create_prompt
from llm_console.settings import Settings

SYSTEM = "You are {{company}}'s support assistant. Answer in at most three sentences and cite the article."
USER = "{{question}}"
VALUES = {"company": "Acme", "question": "How do I rotate my API key without downtime for the batch jobs?"}


def bodies() -> tuple[bytes, bytes]:
    plain = {
        "model": "chat",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": SYSTEM.replace("{{company}}", VALUES["company"])},
            {"role": "user", "content": VALUES["question"]},
        ],
    }
    ref = {"model": "chat", "max_tokens": 64, "messages": [], "prompt": {"name": "bench", "variables": VALUES}}
    return orjson.dumps(plain), orjson.dumps(ref)


async def run(rounds: int, per_round: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
        create_prompt(
            engine, role="admin", actor="bench", name="bench", kind="chat", messages=messages, labels=["production"]
        )
        settings = Settings(_env_file=None, data_dir=Path(folder))  # type: ignore[call-arg]
        rt: Any = SimpleNamespace(prompts=PromptCache(lambda *a: resolve(engine, *a)), settings=settings)
        plain, ref = bodies()

        async def baseline() -> None:
            ChatCompletionRequest.model_validate(parse_json_object(plain))

        async def prompted() -> None:
            data = parse_json_object(ref)
            rec = LogRecord(id="r", created_at=datetime.now(UTC), endpoint="/v1/chat/completions")
            await apply_prompt(rt, "chat", data, rec, time.perf_counter())
            ChatCompletionRequest.model_validate(data)

        await prompted()  # fill the cache: what every call after a process's first one finds
        out: dict[str, list[float]] = {"messages sent": [], "prompt rendered": []}
        for _ in range(rounds):
            for name, fn in (("messages sent", baseline), ("prompt rendered", prompted)):
                start = time.perf_counter()
                for _ in range(per_round):
                    await fn()
                out[name].append((time.perf_counter() - start) / per_round * 1e6)
        engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=2000)
    args = parser.parse_args()
    figures = asyncio.run(run(args.rounds, args.per_round))
    base = statistics.median(figures["messages sent"])
    print(f"{'path':<18}{'median µs/call':>16}{'min':>10}{'max':>10}{'added':>10}")
    for name, values in figures.items():
        median = statistics.median(values)
        added = f"+{median - base:.1f}" if name != "messages sent" else "—"
        print(f"{name:<18}{median:>16.1f}{min(values):>10.1f}{max(values):>10.1f}{added:>10}")
    print(f"{args.rounds} interleaved rounds of {args.per_round} calls per path, one process, cache warm.")


if __name__ == "__main__":
    main()
