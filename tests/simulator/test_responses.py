"""The Responses API works with the official openai SDK, plain and streamed, with consistent usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pydantic
import pytest
import pytest_asyncio
from openai.types.responses import Response, ResponseStreamEvent

from llm_console.simulator import SimulatorConfig
from llm_console.simulator.engine import count_tokens
from llm_console.simulator.server import SimulatorServer
from tests.simulator.conftest import StartSim, asgi_client, named_events
from tests.simulator.test_simulator import metric_samples

MODEL = "llama-3.1-8b-instruct"
PROMPT = "Hello there, simulator!"
STREAM_ORDER_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
STREAM_ORDER_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)


@pytest_asyncio.fixture
async def server(start_sim: StartSim) -> SimulatorServer:
    return await start_sim(seed=11)


@pytest_asyncio.fixture
async def sdk(server: SimulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key="x", max_retries=0, _strict_response_validation=True
    )
    async with client:
        yield client


async def test_plain_response_through_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.responses.create(model=MODEL, input=PROMPT)
    assert reply.id.startswith("resp_")
    assert (reply.object, reply.status, reply.model) == ("response", "completed", MODEL)
    assert reply.incomplete_details is None and reply.error is None
    assert reply.parallel_tool_calls is True and reply.tool_choice == "auto" and reply.tools == []
    (message,) = reply.output
    assert message.type == "message" and message.id.startswith("msg_")
    assert (message.role, message.status) == ("assistant", "completed")
    (part,) = message.content
    assert part.type == "output_text" and part.annotations == []
    assert reply.output_text == part.text and part.text
    usage = reply.usage
    assert usage is not None
    assert usage.input_tokens == count_tokens(PROMPT) + 4
    assert usage.output_tokens == len(reply.output_text.split())
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


async def test_input_items_instructions_and_echoed_settings(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.responses.create(
        model=MODEL,
        instructions="Answer briefly.",
        input=[
            {"role": "developer", "content": "Use plain words."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hi.", "annotations": []}]},
            {"role": "user", "content": "And now?"},
        ],
        temperature=0.3,
        metadata={"trace": "abc"},
    )
    expected = sum(count_tokens(t) + 4 for t in ["Answer briefly.", "Use plain words.", PROMPT, "Hi.", "And now?"])
    assert reply.usage is not None and reply.usage.input_tokens == expected
    assert reply.instructions == "Answer briefly."
    assert reply.temperature == 0.3 and reply.metadata == {"trace": "abc"}


async def test_max_output_tokens_makes_the_reply_incomplete(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.responses.create(model=MODEL, input=PROMPT, max_output_tokens=5)
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None and reply.incomplete_details.reason == "max_output_tokens"
    assert reply.max_output_tokens == 5
    assert reply.output[0].status == "incomplete"
    assert reply.usage is not None and reply.usage.output_tokens == 5
    assert len(reply.output_text.split()) == 5


async def test_stream_events_through_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.responses.create(model=MODEL, input=PROMPT, stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert kinds == [*STREAM_ORDER_HEAD, *["response.output_text.delta"] * len(deltas), *STREAM_ORDER_TAIL, kinds[-1]]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    created, final = events[0], events[-1]
    assert created.type == "response.created" and final.type == "response.completed"
    assert created.response.status == "in_progress" and created.response.usage is None
    assert created.response.id == final.response.id
    text = "".join(d.delta for d in deltas)
    done = events[-4]
    assert done.type == "response.output_text.done" and done.text == text
    item_ids = {e.item_id for e in deltas} | {events[2].item.id, final.response.output[0].id}
    assert len(item_ids) == 1
    assert final.response.output_text == text
    usage = final.response.usage
    assert usage is not None
    assert usage.input_tokens == count_tokens(PROMPT) + 4
    assert usage.output_tokens == len(deltas) == len(text.split())
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_stream_cut_by_max_output_tokens_ends_incomplete(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.responses.create(model=MODEL, input=PROMPT, max_output_tokens=3, stream=True)
    events = [event async for event in stream]
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete" and final.response.usage is not None
    assert final.response.usage.output_tokens == 3
    assert sum(e.type == "response.output_text.delta" for e in events) == 3


async def test_stream_helper_assembles_the_final_response(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model=MODEL, input=PROMPT) as stream:
        text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
        final = await stream.get_final_response()
    assert final.output_text == text and text
    assert final.usage is not None and final.usage.output_tokens == len(text.split())


async def test_wire_frames_name_their_type_and_validate() -> None:
    async with asgi_client(SimulatorConfig.fast(seed=2)) as c:
        plain = await c.post("/v1/responses", json={"model": MODEL, "input": PROMPT})
        streamed = await c.post("/v1/responses", json={"model": MODEL, "input": PROMPT, "stream": True})
    Response.model_validate(plain.json())
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = named_events(streamed.text)
    assert all(name == data["type"] for name, data in events)
    for _, data in events:
        EVENTS.validate_python(data)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": PROMPT}, "model"),
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": [1]}, "input[0]"),
        ({"model": MODEL, "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": MODEL, "input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "video"}]}]}, "input[0].content[0].type"),
        (
            {"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        ({"model": MODEL, "input": [{"type": "teleport"}]}, "input[0]"),
        ({"model": MODEL, "input": PROMPT, "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": MODEL, "input": PROMPT, "stream": "yes"}, "stream"),
        ({"model": MODEL, "input": PROMPT, "temperature": 3}, "temperature"),
        ({"model": MODEL, "input": PROMPT, "instructions": ["x"]}, "instructions"),
        ({"model": MODEL, "input": PROMPT, "tools": "all"}, "tools"),
        ({"model": MODEL, "input": PROMPT, "tool_choice": "maybe"}, "tool_choice"),
        ({"model": MODEL, "input": PROMPT, "previous_response_id": "resp_1"}, "previous_response_id"),
    ],
)
async def test_bad_requests_get_openai_400(body: dict[str, Any], param: str) -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        response = await c.post("/v1/responses", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


async def test_sdk_errors_and_context_limit(start_sim: StartSim) -> None:
    server = await start_sim(max_model_len=20)
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.responses.create(model="gpt-9", input=PROMPT)
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as too_long:
            await sdk.responses.create(model=MODEL, input=PROMPT, max_output_tokens=11)
        assert too_long.value.code == "context_length_exceeded"
        await sdk.responses.create(model=MODEL, input=PROMPT, max_output_tokens=10)


@pytest.mark.parametrize("stream", [False, True])
async def test_injected_failures_are_500_before_any_token(stream: bool) -> None:
    async with asgi_client(SimulatorConfig.fast(error_rate=1.0)) as c:
        response = await c.post("/v1/responses", json={"model": MODEL, "input": PROMPT, "stream": stream})
        samples = metric_samples((await c.get("/metrics")).text)
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    assert samples[f'vllm:prompt_tokens_total{{model_name="{MODEL}"}}'] == 0


async def test_responses_share_the_engine_metrics() -> None:
    async with asgi_client(SimulatorConfig.fast(seed=5)) as c:
        plain = (await c.post("/v1/responses", json={"model": MODEL, "input": PROMPT})).json()
        streamed = await c.post(
            "/v1/responses", json={"model": MODEL, "input": PROMPT, "stream": True, "max_output_tokens": 4}
        )
        samples = metric_samples((await c.get("/metrics")).text)
    label = f'model_name="{MODEL}"'
    assert streamed.status_code == 200
    assert samples[f"vllm:prompt_tokens_total{{{label}}}"] == 2 * (count_tokens(PROMPT) + 4)
    assert samples[f"vllm:generation_tokens_total{{{label}}}"] == plain["usage"]["output_tokens"] + 4
    assert samples[f'vllm:request_success_total{{finished_reason="stop",{label}}}'] == 1
    assert samples[f'vllm:request_success_total{{finished_reason="length",{label}}}'] == 1
    assert samples[f"vllm:num_requests_running{{{label}}}"] == 0


async def test_stream_reaches_a_real_socket_incrementally(start_sim: StartSim) -> None:
    server = await start_sim(ttft_ms=0.0, tokens_per_second=50.0)
    body = {"model": MODEL, "input": PROMPT, "stream": True, "max_output_tokens": 8}
    async with httpx.AsyncClient(base_url=server.url) as c, c.stream("POST", "/v1/responses", json=body) as response:
        chunks = [chunk async for chunk in response.aiter_raw()]
    # Eight tokens 20 ms apart cannot arrive as one buffered body.
    assert len(chunks) > 2
