"""One request as the Logs page shows it: masked bodies, the conversation, and the span waterfall."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from llm_console.db.queries.logs import RequestDetail

SECRET_FIELD = re.compile(
    r'("(?:api[_-]?key|apikey|authorization|x-api-key|password|secret|access[_-]?token|client[_-]?secret)"\s*:\s*)"[^"]*"',
    re.IGNORECASE,
)
SECRET_TOKEN = re.compile(r"\b(?:sk-[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{12,})")
MAX_MESSAGE_CHARS = 20_000


def mask_secrets(text: str | None) -> str:
    """Bodies are stored as the client sent them; anything that looks like a credential is masked for display."""
    if not text:
        return ""
    return SECRET_TOKEN.sub("***", SECRET_FIELD.sub(r'\1"***"', text))


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


def _text(content: Any) -> str:
    """Message content as text: strings, OpenAI/Anthropic content parts (text kept, others named)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                kind = str(part.get("type", ""))
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif kind:
                    parts.append(f"[{kind}]")
        return "\n".join(parts)
    if content is None:
        return ""
    return orjson.dumps(content).decode()


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _from_request(body: Any) -> list[Message]:
    if not isinstance(body, dict):
        return []
    out: list[Message] = []
    if isinstance(body.get("system"), str | list):
        out.append(Message("system", _text(body["system"])))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            out.append(Message(str(m.get("role", "?"))[:20], _text(m.get("content"))))
    if not out and isinstance(body.get("prompt"), str | list):
        out.append(Message("prompt", _text(body["prompt"])))
    if not out and body.get("input") is not None:
        out.append(Message("input", _text(body["input"])))
    return out


def _stream_text(text: str) -> str:
    """The assistant's text reassembled from captured SSE chunks (OpenAI and Anthropic event shapes)."""
    pieces: list[str] = []
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        event = _loads(line[5:].strip())
        if not isinstance(event, dict):
            continue
        for choice in event.get("choices") or []:
            if isinstance(choice, dict):
                delta = choice.get("delta") or {}
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    pieces.append(delta["content"])
                elif isinstance(choice.get("text"), str):
                    pieces.append(choice["text"])
        delta = event.get("delta")
        if event.get("type") == "content_block_delta" and isinstance(delta, dict):
            if isinstance(delta.get("text"), str):
                pieces.append(delta["text"])
    return "".join(pieces)


def _from_response(text: str) -> list[Message]:
    body = _loads(text)
    if isinstance(body, dict):
        out = []
        for choice in body.get("choices") or []:
            if isinstance(choice, dict):
                msg = choice.get("message")
                if isinstance(msg, dict):
                    out.append(Message(str(msg.get("role", "assistant")), _text(msg.get("content"))))
                elif isinstance(choice.get("text"), str):
                    out.append(Message("completion", choice["text"]))
        if body.get("type") == "message" and isinstance(body.get("content"), list):
            out.append(Message("assistant", _text(body["content"])))
        return out
    streamed = _stream_text(text)
    return [Message("assistant", streamed)] if streamed else []


def conversation(detail: RequestDetail) -> list[Message]:
    """The chat as a reader wants it: prompt messages, then the answer (secrets masked, length capped)."""
    request = _loads(detail.request_body or "")
    messages = _from_request(request) + _from_response(detail.response_body or "")
    return [Message(m.role, mask_secrets(m.content)[:MAX_MESSAGE_CHARS]) for m in messages]


def pretty(text: str | None) -> str:
    """Indented JSON when the body parses (bodies are cut at the log limit, so it may not), else the text."""
    masked = mask_secrets(text)
    parsed = _loads(masked)
    if parsed is None:
        return masked
    return orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()


@dataclass(frozen=True, slots=True)
class Bar:
    name: str
    label: str
    offset_pct: float
    width_pct: float
    start_ms: float
    duration_ms: float
    status: str


def waterfall(detail: RequestDetail) -> list[Bar]:
    """Spans as bars on one time axis from 0 to the request's end."""
    total = max([detail.row.latency_ms, *[s.start_ms + s.duration_ms for s in detail.spans], 0.001])
    bars = []
    for s in detail.spans:
        attrs = s.attributes
        label = s.name
        if s.name == "upstream":
            label = f"upstream #{attrs.get('attempt', 1)} {attrs.get('deployment', '')}".strip()
            if "status_code" in attrs:
                label += f" → {attrs['status_code']}"
        bars.append(
            Bar(
                s.name,
                label,
                round(min(100.0, s.start_ms / total * 100), 2),
                round(max(0.5, min(100.0, s.duration_ms / total * 100)), 2),
                s.start_ms,
                s.duration_ms,
                s.status,
            )
        )
    return bars
