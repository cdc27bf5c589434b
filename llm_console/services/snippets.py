"""Ready-to-run usage examples for one alias: curl, the `openai` and `anthropic` Python SDKs, this gateway's URL.

The key is always a placeholder (`$LLMC_API_KEY`, `os.environ["LLMC_API_KEY"]`), never a real one. The alias
is quoted for the language it lands in (JSON inside a shell-quoted string, a Python literal), so a name with
quotes, `$(...)` or newlines stays a string in the copied code.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_ROOT = "http://localhost:3000"
KEY_ENV = "LLMC_API_KEY"
SAFE_HOST = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")
SAFE_PATH = re.compile(r"[A-Za-z0-9._~/-]*")
ENDPOINTS = {"llm": "/chat/completions", "embedding": "/embeddings", "reranker": "/rerank"}


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str  # curl | openai | anthropic | python
    title: str
    language: str  # bash | python
    code: str


def _root(url: str) -> str | None:
    """`url` as scheme://host[:port][/path] when it is a plain http(s) address, else None."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if (
        parts.scheme not in ("http", "https")
        or "@" in netloc
        or not SAFE_HOST.fullmatch(netloc)
        or not SAFE_PATH.fullmatch(parts.path)
        or parts.query
        or parts.fragment
    ):
        return None
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def gateway_root(public_url: str | None, *, origin: str = "", host: str = "") -> str:
    """Where clients reach this gateway: the configured public URL, else the browser's origin, else its host.

    Header values come from the browser's socket, so they are used only when they are a plain address.
    """
    for candidate in (public_url or "", origin, f"http://{host}" if host else ""):
        root = _root(candidate) if candidate else None
        if root:
            return root
    return DEFAULT_ROOT


def endpoint_url(root: str, kind: str) -> str:
    """The gateway URL a client of this type of model posts to (chat completions unless known otherwise)."""
    return f"{root}/v1{ENDPOINTS.get(kind, ENDPOINTS['llm'])}"


def _curl(url: str, body: Mapping[str, object]) -> str:
    return (
        f"curl {shlex.quote(url)} \\\n"
        f'  -H "Authorization: Bearer ${KEY_ENV}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(json.dumps(body, indent=2, ensure_ascii=False))}"
    )


def _openai_client(base: str) -> str:
    return (
        "import os\n\nfrom openai import OpenAI\n\n"
        f"client = OpenAI(base_url={base!r}, api_key=os.environ[{KEY_ENV!r}])\n"
    )


def _llm(alias: str, root: str, base: str) -> list[Snippet]:
    chat = {"model": alias, "messages": [{"role": "user", "content": "Hello!"}]}
    openai_code = (
        _openai_client(base)
        + "response = client.chat.completions.create(\n"
        + f"    model={alias!r},\n"
        + '    messages=[{"role": "user", "content": "Hello!"}],\n'
        + ")\n"
        + "print(response.choices[0].message.content)\n"
    )
    anthropic_code = (
        "import os\n\nimport anthropic\n\n"
        f"client = anthropic.Anthropic(base_url={root!r}, api_key=os.environ[{KEY_ENV!r}])\n"
        "message = client.messages.create(\n"
        f"    model={alias!r},\n"
        "    max_tokens=256,\n"
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(message.content[0].text)\n"
    )
    return [
        Snippet("curl", "curl", "bash", _curl(f"{base}/chat/completions", chat)),
        Snippet("openai", "Python (openai)", "python", openai_code),
        Snippet("anthropic", "Python (anthropic)", "python", anthropic_code),
    ]


def _embedding(alias: str, base: str) -> list[Snippet]:
    texts = ["The quick brown fox", "jumps over the lazy dog"]
    openai_code = (
        _openai_client(base)
        + f"response = client.embeddings.create(model={alias!r}, input={texts!r})\n"
        + "print(len(response.data), len(response.data[0].embedding))\n"
    )
    return [
        Snippet("curl", "curl", "bash", _curl(f"{base}/embeddings", {"model": alias, "input": texts})),
        Snippet("openai", "Python (openai)", "python", openai_code),
    ]


def _reranker(alias: str, base: str) -> list[Snippet]:
    body = {
        "model": alias,
        "query": "What is the capital of France?",
        "documents": ["Paris is the capital of France.", "Berlin is the capital of Germany."],
        "top_n": 2,
    }
    python_code = (
        "import os\n\nimport httpx\n\n"
        "response = httpx.post(\n"
        f"    {base + '/rerank'!r},\n"
        f'    headers={{"Authorization": "Bearer " + os.environ[{KEY_ENV!r}]}},\n'
        f"    json={body!r},\n"
        ")\n"
        'print(response.json()["results"])\n'
    )
    return [
        Snippet("curl", "curl", "bash", _curl(f"{base}/rerank", body)),
        Snippet("python", "Python (httpx)", "python", python_code),
    ]


def snippets(alias: str, root: str, kind: str) -> list[Snippet]:
    """Examples for calling `alias` through the gateway at `root`; an unknown type gets the chat examples."""
    base = f"{root}/v1"
    if kind == "embedding":
        return _embedding(alias, base)
    if kind == "reranker":
        return _reranker(alias, base)
    return _llm(alias, root, base)
