"""Rerank answers in vLLM's shape, ranks by word overlap, and rejects bad input with OpenAI-shaped errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from llm_console.simulator import SimulatorConfig
from llm_console.simulator.engine import count_tokens
from llm_console.simulator.rerank import relevance
from tests.simulator.conftest import asgi_client
from tests.simulator.test_simulator import metric_samples

RERANKER = "bge-reranker-base"
QUERY = "red apple pie"
DOCUMENTS: list[str | dict[str, str]] = ["apple pie recipe", "blue car", {"text": "Red apple pie!"}, "pie"]
TEXTS = ["apple pie recipe", "blue car", "Red apple pie!", "pie"]


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(SimulatorConfig.fast(seed=3)) as c:
        yield c


def test_relevance_is_word_set_cosine() -> None:
    assert relevance("red apple pie", "Red apple pie!") == 1.0
    assert relevance("red apple pie", "apple pie recipe") == pytest.approx(2 / 3)
    assert relevance("red apple pie", "pie") == pytest.approx(1 / math.sqrt(3))
    assert relevance("red apple pie", "blue car") == 0.0
    assert relevance("", "anything") == 0.0


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
async def test_rerank_sorts_by_score_and_counts_tokens(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={"model": RERANKER, "query": QUERY, "documents": DOCUMENTS})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("rerank-")
    assert body["model"] == RERANKER
    assert [r["index"] for r in body["results"]] == [2, 0, 3, 1]
    assert [r["document"]["text"] for r in body["results"]] == [TEXTS[i] for i in (2, 0, 3, 1)]
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == [relevance(QUERY, TEXTS[i]) for i in (2, 0, 3, 1)]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    tokens = sum(count_tokens(QUERY) + count_tokens(t) for t in TEXTS)
    assert body["usage"] == {"total_tokens": tokens}
    again = (await client.post(path, json={"model": RERANKER, "query": QUERY, "documents": DOCUMENTS})).json()
    assert again["results"] == body["results"]


async def test_top_n_and_return_documents(client: httpx.AsyncClient) -> None:
    body = {"model": RERANKER, "query": QUERY, "documents": DOCUMENTS, "top_n": 2, "return_documents": False}
    results = (await client.post("/v1/rerank", json=body)).json()["results"]
    assert results == [
        {"index": 2, "relevance_score": 1.0},
        {"index": 0, "relevance_score": relevance(QUERY, TEXTS[0])},
    ]
    everything = (await client.post("/v1/rerank", json={**body, "top_n": 0})).json()["results"]
    assert len(everything) == 4
    beyond = (await client.post("/v1/rerank", json={**body, "top_n": 10})).json()["results"]
    assert len(beyond) == 4


async def test_rerank_tokens_reach_the_prompt_counter(client: httpx.AsyncClient) -> None:
    await client.post("/v1/rerank", json={"model": RERANKER, "query": QUERY, "documents": DOCUMENTS})
    samples = metric_samples((await client.get("/metrics")).text)
    expected = sum(count_tokens(QUERY) + count_tokens(t) for t in TEXTS)
    assert samples['vllm:prompt_tokens_total{model_name="llama-3.1-8b-instruct"}'] == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"documents": ["x"], "query": "q"}, "model"),
        ({"model": RERANKER, "documents": ["x"]}, "query"),
        ({"model": RERANKER, "query": "", "documents": ["x"]}, "query"),
        ({"model": RERANKER, "query": "q"}, "documents"),
        ({"model": RERANKER, "query": "q", "documents": []}, "documents"),
        ({"model": RERANKER, "query": "q", "documents": [1]}, "documents"),
        ({"model": RERANKER, "query": "q", "documents": [{"content": "x"}]}, "documents"),
        ({"model": RERANKER, "query": "q", "documents": ["x"], "top_n": -1}, "top_n"),
        ({"model": RERANKER, "query": "q", "documents": ["x"], "top_n": "2"}, "top_n"),
        ({"model": RERANKER, "query": "q", "documents": ["x"], "top_n": True}, "top_n"),
        ({"model": RERANKER, "query": "q", "documents": ["x"], "return_documents": "yes"}, "return_documents"),
    ],
)
async def test_bad_rerank_requests_get_openai_400(
    client: httpx.AsyncClient, body: dict[str, object], param: str
) -> None:
    response = await client.post("/v1/rerank", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize("model", ["nope", "llama-3.1-8b-instruct"])
async def test_rerank_unknown_model_is_404(client: httpx.AsyncClient, model: str) -> None:
    response = await client.post("/rerank", json={"model": model, "query": "q", "documents": ["x"]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


async def test_rerank_non_json_and_injected_failures() -> None:
    async with asgi_client(SimulatorConfig.fast(error_rate=1.0)) as c:
        garbage = await c.post("/v1/rerank", content=b"{not json", headers={"content-type": "application/json"})
        failed = await c.post("/v1/rerank", json={"model": RERANKER, "query": "q", "documents": ["x"]})
    assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "invalid_request_error"
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
