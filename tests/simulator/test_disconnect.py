"""A client leaving a Responses or Messages stream early aborts the generation and frees its engine slot."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.simulator.conftest import StartSim
from tests.simulator.test_simulator import _wait_for

MODEL = "llama-3.1-8b-instruct"
PROMPT = "Hello there, simulator!"
USER = [{"role": "user", "content": PROMPT}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": MODEL, "max_tokens": 200, "messages": USER, "stream": True}),
        ("/v1/responses", {"model": MODEL, "input": PROMPT, "stream": True}),
    ],
)
async def test_disconnect_mid_stream_frees_the_slot(start_sim: StartSim, path: str, body: dict[str, Any]) -> None:
    server = await start_sim(tokens_per_second=10.0, max_output_tokens=200)
    label = f'model_name="{MODEL}"'
    async with httpx.AsyncClient(base_url=server.url) as c:
        async with c.stream("POST", path, json=body) as response:
            lines = response.aiter_lines()
            while "delta" not in await anext(lines):
                pass
            busy = await _wait_for(c, lambda s: s[f"vllm:num_requests_running{{{label}}}"] == 1)
            assert busy[f"vllm:kv_cache_usage_perc{{{label}}}"] > 0
        idle = await _wait_for(c, lambda s: s[f"vllm:num_requests_running{{{label}}}"] == 0)
    assert idle[f'vllm:request_success_total{{finished_reason="abort",{label}}}'] == 1
    assert idle[f"vllm:kv_cache_usage_perc{{{label}}}"] == 0
