"""Rerank in the shape vLLM, Jina and Cohere share, scored by word overlap so results are deterministic.

The score is the Ochiai (cosine) coefficient of the query's and document's word sets: 1.0 when they hold the
same words, 0.0 when they share none, and long documents that merely contain the query score lower.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llm_console.simulator.config import SimulatorConfig
from llm_console.simulator.engine import Engine, count_tokens
from llm_console.simulator.errors import ApiError, simulated_failure
from llm_console.simulator.parsing import is_int, optional_bool, read_object, require_model
from llm_console.simulator.wire import OrjsonResponse

_WORD = re.compile(r"\w+")


def relevance(query: str, document: str) -> float:
    """Word-set cosine similarity in [0, 1], case-insensitive."""
    q = set(_WORD.findall(query.lower()))
    d = set(_WORD.findall(document.lower()))
    if not q or not d:
        return 0.0
    return len(q & d) / math.sqrt(len(q) * len(d))


def _document_texts(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "`documents` must be a non-empty list.", param="documents")
    texts = []
    for index, doc in enumerate(raw):
        text = doc.get("text") if isinstance(doc, dict) else doc
        if not isinstance(text, str):
            raise ApiError(
                400, f"documents[{index}] must be a string or an object with a string `text`.", param="documents"
            )
        texts.append(text)
    return texts


class RerankApi:
    """`POST /v1/rerank` and its vLLM aliases `/rerank` and `/v2/rerank`."""

    def __init__(self, config: SimulatorConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    async def rerank(self, request: Request) -> Response:
        body = await read_object(request)
        model = require_model(body, self.config.rerank_models)
        query = body.get("query")
        if not isinstance(query, str) or not query:
            raise ApiError(400, "`query` must be a non-empty string.", param="query")
        texts = _document_texts(body.get("documents"))
        top_n = body.get("top_n")
        if top_n is not None and (not is_int(top_n) or top_n < 0):
            raise ApiError(400, f"`top_n` must be a non-negative integer, got {top_n!r}.", param="top_n")
        # vLLM reads a missing or zero top_n as "all documents".
        limit = top_n or len(texts)
        return_documents = optional_bool(body, "return_documents", True)
        if self.engine.should_fail():
            raise simulated_failure()
        scored = sorted(
            ((index, relevance(query, text)) for index, text in enumerate(texts)), key=lambda item: (-item[1], item[0])
        )
        results = []
        for index, score in scored[:limit]:
            result: dict[str, Any] = {"index": index}
            if return_documents:
                result["document"] = {"text": texts[index]}
            results.append({**result, "relevance_score": score})
        # A cross-encoder reads the query once per document.
        tokens = sum(count_tokens(query) + count_tokens(text) for text in texts)
        self.engine.prompt_tokens_total += tokens
        usage = {"total_tokens": tokens}
        return OrjsonResponse({"id": f"rerank-{uuid.uuid4().hex}", "model": model, "usage": usage, "results": results})
