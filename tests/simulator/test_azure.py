"""Azure OpenAI's deployment routes work with the openai SDK's AsyncAzureOpenAI and fail like Azure does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio

from llm_console.simulator import SimulatorConfig
from llm_console.simulator.engine import count_tokens
from tests.simulator.conftest import StartSim, asgi_client

MODEL = "llama-3.1-8b-instruct"
PROMPT = "Hello there, simulator!"
GREETING = [{"role": "user", "content": PROMPT}]
API_VERSION = "2024-10-21"


@pytest_asyncio.fixture
async def azure(start_sim: StartSim) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    server = await start_sim(seed=5)
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=server.url, api_key="azure-key", api_version=API_VERSION, max_retries=0
    )
    async with client:
        yield client


async def test_chat_completion_on_a_deployment(azure: openai.AsyncAzureOpenAI) -> None:
    reply = await azure.chat.completions.create(model=MODEL, messages=GREETING, max_tokens=5)
    assert reply.model == MODEL and reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (count_tokens(PROMPT) + 4, 5)


async def test_streamed_chat_on_a_deployment(azure: openai.AsyncAzureOpenAI) -> None:
    stream = await azure.chat.completions.create(
        model=MODEL,
        messages=GREETING,
        max_tokens=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert len(text.split()) == 7
    assert usage is not None and usage.completion_tokens == 7 and usage.prompt_tokens == count_tokens(PROMPT) + 4


async def test_completions_and_embeddings_on_deployments(azure: openai.AsyncAzureOpenAI) -> None:
    completion = await azure.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=3)
    assert len(completion.choices[0].text.split()) == 3
    embedding = await azure.embeddings.create(model="bge-small-en", input="alpha")
    assert len(embedding.data[0].embedding) == 384
    assert embedding.usage.prompt_tokens == count_tokens("alpha")


async def test_unknown_deployment_is_deployment_not_found(azure: openai.AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await azure.chat.completions.create(model="gpt-4o", messages=GREETING)
    assert isinstance(missing.value.body, dict)
    assert set(missing.value.body) == {"code", "message"}
    assert missing.value.code == "DeploymentNotFound"


async def test_wrong_operation_for_a_deployment(azure: openai.AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as wrong:
        await azure.embeddings.create(model=MODEL, input="alpha")
    assert wrong.value.code == "OperationNotSupported"
    with pytest.raises(openai.BadRequestError):
        await azure.chat.completions.create(model="bge-small-en", messages=GREETING)


@pytest.mark.parametrize("query", ["", "?api-version="])
async def test_missing_api_version_is_400(query: str) -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        response = await c.post(f"/openai/deployments/{MODEL}/chat/completions{query}", json={"messages": GREETING})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] == "MissingApiVersionParameter" and "api-version" in error["message"]


async def test_deployment_decides_and_body_model_is_ignored() -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        url = f"/openai/deployments/qwen2.5-7b-instruct/chat/completions?api-version={API_VERSION}"
        response = await c.post(url, json={"model": "something-else", "messages": GREETING, "max_tokens": 2})
        unknown = await c.post(f"/openai/deployments/nope/embeddings?api-version={API_VERSION}", json={"input": "x"})
    assert response.status_code == 200 and response.json()["model"] == "qwen2.5-7b-instruct"
    assert unknown.status_code == 404
    assert set(unknown.json()["error"]) == {"code", "message"}
    assert unknown.json()["error"]["code"] == "DeploymentNotFound"


async def test_body_errors_keep_the_openai_shape() -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        url = f"/openai/deployments/{MODEL}/chat/completions?api-version={API_VERSION}"
        missing = await c.post(url, json={"max_tokens": 2})
        broken = await c.post(url, content=b"{", headers={"content-type": "application/json"})
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
