"""Usage examples: the gateway URL chosen safely, names quoted for each language, and the SDK examples really run."""

from __future__ import annotations

import ast
import json
import shlex
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from llm_console.services.snippets import DEFAULT_ROOT, Snippet, endpoint_url, gateway_root, snippets

ROOT = "https://llm.example.com"
NASTY = 'it\'s "x" $(touch /tmp/pwned) `id` \\ <script>alert(1)</script>\nnext'


@pytest.mark.parametrize(
    ("public_url", "origin", "host", "expected"),
    [
        ("https://llm.example.com/", "http://other:3000", "other:3000", "https://llm.example.com"),
        ("https://llm.example.com/gateway", "", "", "https://llm.example.com/gateway"),
        (None, "http://localhost:3000", "localhost:3000", "http://localhost:3000"),
        (None, "", "console.internal:8080", "http://console.internal:8080"),
        (None, "https://[::1]:8443", "", "https://[::1]:8443"),
        (None, "", "", DEFAULT_ROOT),
        ("javascript:alert(1)", "", "", DEFAULT_ROOT),
        (None, 'http://evil.test" onerror="x', "", DEFAULT_ROOT),
        (None, "http://user:pw@evil.test", "", DEFAULT_ROOT),
        (None, "http://evil.test/?q=1", "", DEFAULT_ROOT),
        (None, "http://evil.test/#x", "", DEFAULT_ROOT),
        (None, "", "evil.test/<script>", DEFAULT_ROOT),
        ("ftp://files.test", "null", "", DEFAULT_ROOT),
    ],
)
def test_gateway_root_uses_only_plain_addresses(public_url: str | None, origin: str, host: str, expected: str) -> None:
    assert gateway_root(public_url, origin=origin, host=host) == expected


def test_endpoint_url_per_type() -> None:
    assert endpoint_url(ROOT, "llm") == f"{ROOT}/v1/chat/completions"
    assert endpoint_url(ROOT, "embedding") == f"{ROOT}/v1/embeddings"
    assert endpoint_url(ROOT, "reranker") == f"{ROOT}/v1/rerank"
    assert endpoint_url(ROOT, "") == f"{ROOT}/v1/chat/completions"


def by_id(items: list[Snippet]) -> dict[str, Snippet]:
    return {s.id: s for s in items}


def curl_parts(code: str) -> tuple[str, dict[str, Any], list[str]]:
    """(url, JSON body, headers) of a curl example, parsed the way a shell would split it."""
    words = shlex.split(code.replace("\\\n", " "))
    assert words[0] == "curl"
    headers = [words[i + 1] for i, w in enumerate(words) if w == "-H"]
    return words[1], json.loads(words[words.index("-d") + 1]), headers


def python_kwargs(code: str) -> dict[str, Any]:
    """Every constant keyword argument in a Python example (it must parse as Python)."""
    out: dict[str, Any] = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.keyword) and node.arg and isinstance(node.value, ast.Constant):
            out[node.arg] = node.value.value
    return out


def test_llm_examples_quote_any_alias_and_never_hold_a_key() -> None:
    got = by_id(snippets(NASTY, ROOT, "llm"))
    assert list(got) == ["curl", "openai", "anthropic"]
    url, body, headers = curl_parts(got["curl"].code)
    assert url == f"{ROOT}/v1/chat/completions"
    assert body["model"] == NASTY
    assert "Authorization: Bearer $LLMC_API_KEY" in headers
    assert python_kwargs(got["openai"].code) == {"base_url": f"{ROOT}/v1", "model": NASTY}
    anth = python_kwargs(got["anthropic"].code)
    assert anth["base_url"] == ROOT  # the SDK adds /v1/messages itself
    assert anth["model"] == NASTY
    for s in got.values():
        assert "sk-" not in s.code
    assert 'os.environ["LLMC_API_KEY"]' in got["openai"].code.replace("'", '"')


def test_embedding_and_reranker_examples() -> None:
    emb = by_id(snippets("bge-m3", ROOT, "embedding"))
    assert list(emb) == ["curl", "openai"]
    url, body, _ = curl_parts(emb["curl"].code)
    assert url == f"{ROOT}/v1/embeddings" and body["model"] == "bge-m3" and body["input"]
    assert "client.embeddings.create" in emb["openai"].code
    rr = by_id(snippets("bge-reranker", ROOT, "reranker"))
    assert list(rr) == ["curl", "python"]
    url, body, _ = curl_parts(rr["curl"].code)
    assert url == f"{ROOT}/v1/rerank"
    assert body["model"] == "bge-reranker" and body["query"] and len(body["documents"]) == 2
    ast.parse(rr["python"].code)


def run_example(
    code: str, monkeypatch: pytest.MonkeyPatch, module: Any, cls: str, reply: dict[str, Any], http: Any = httpx
) -> list[Any]:
    """Execute an SDK example as written, its client's HTTP answered by a mock transport; the requests it sent.

    `http` is the HTTP library the SDK is built on (the anthropic SDK uses its own `httpx2`).
    """
    sent: list[Any] = []

    def handler(request: Any) -> Any:
        sent.append(request)
        return http.Response(200, json=reply)

    real = getattr(module, cls)

    def fake(*args: Any, **kwargs: Any) -> Any:
        return real(*args, http_client=http.Client(transport=http.MockTransport(handler)), **kwargs)

    monkeypatch.setattr(module, cls, fake)
    monkeypatch.setenv("LLMC_API_KEY", "test-key-123")
    exec(compile(code, "<snippet>", "exec"), {"__name__": "snippet"})
    return sent


def test_openai_example_calls_the_gateway_with_the_alias(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    code = by_id(snippets(NASTY, ROOT, "llm"))["openai"].code
    reply = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": NASTY,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi!"}, "finish_reason": "stop"}],
    }
    (req,) = run_example(code, monkeypatch, openai, "OpenAI", reply)
    assert str(req.url) == f"{ROOT}/v1/chat/completions"
    assert json.loads(req.content)["model"] == NASTY
    assert req.headers["authorization"] == "Bearer test-key-123"
    assert "hi!" in capsys.readouterr().out


def test_anthropic_example_calls_the_gateway_messages_endpoint(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    code = by_id(snippets("claude-ish", ROOT, "llm"))["anthropic"].code
    reply = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude-ish",
        "content": [{"type": "text", "text": "hello back"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    (req,) = run_example(code, monkeypatch, anthropic, "Anthropic", reply, httpx2)
    assert str(req.url) == f"{ROOT}/v1/messages"
    assert json.loads(req.content)["model"] == "claude-ish"
    # The SDK sends the key as x-api-key or as a bearer token (newer releases); the gateway takes either.
    assert "test-key-123" in (
        req.headers.get("x-api-key", ""),
        req.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert "hello back" in capsys.readouterr().out


def test_openai_embeddings_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    code = by_id(snippets("bge-m3", ROOT, "embedding"))["openai"].code
    reply = {
        "object": "list",
        "model": "bge-m3",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(2)],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    (req,) = run_example(code, monkeypatch, openai, "OpenAI", reply)
    assert str(req.url) == f"{ROOT}/v1/embeddings"
    assert capsys.readouterr().out.strip() == "2 3"
