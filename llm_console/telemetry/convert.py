"""A logged gateway call in telemetry terms: times, ids, GenAI semantic-convention attributes, bodies.

Pure functions over `LogRecord`s, shared by both sinks. Times come from the record, never from "now": a
call is exported seconds after it ended. `created_at` is stamped once the key is authenticated and the
record's spans are offsets from the request's arrival, so the call began one "auth" span before it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from llm_console.db.records import LogRecord, SpanRecord

if TYPE_CHECKING:
    from llm_console.db.models import FeedbackScore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
    "/v1/rerank": "rerank",  # no GenAI value exists for reranking; the conventions allow custom ones
}
# gen_ai.provider.name per provider kind (vLLM and other OpenAI-compatible servers speak "openai").
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "azure": "azure.ai.openai"}
_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
AttributeValue = str | bool | int | float | list[str]


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """What the route table knows about a record's deployment: its name, provider kind and address."""

    name: str
    provider: str
    address: str
    port: int | None

    @classmethod
    def of(cls, name: str, kind: str, api_base: str) -> DeploymentInfo:
        try:
            parts = urlsplit(api_base)
            port = parts.port
        except ValueError:
            return cls(name, PROVIDER_NAMES.get(kind, kind), "", None)
        return cls(name, PROVIDER_NAMES.get(kind, kind), parts.hostname or "", port)


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A feedback score as the export worker needs it (a plain copy: no ORM object crosses threads)."""

    id: int | None
    created_at: datetime
    name: str
    value: float | None
    category: str | None
    comment: str | None
    request_id: str | None
    session_id: str | None
    source: str = "api"
    alias: str = ""

    @classmethod
    def of(cls, row: FeedbackScore) -> ScoreRecord:
        return cls(
            row.id,
            row.created_at,
            row.name,
            row.value,
            row.category,
            row.comment,
            row.request_id,
            row.session_id,
            row.source,
            row.alias,
        )


def operation(rec: LogRecord) -> str:
    return OPERATIONS.get(rec.endpoint, rec.endpoint.removeprefix("/v1/").replace("/", "_") or "call")


def span_name(rec: LogRecord) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, as the GenAI conventions name client spans."""
    model = rec.alias or rec.model
    return f"{operation(rec)} {model}" if model else operation(rec)


def trace_name(rec: LogRecord) -> str:
    """The Langfuse trace's name: the endpoint and the alias asked for (`/v1/chat/completions gpt-4o`)."""
    return f"{rec.endpoint} {rec.alias}" if rec.alias else rec.endpoint


def _ns(at: datetime) -> int:
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (at - EPOCH) // timedelta(microseconds=1) * 1000


def _ms_ns(ms: float) -> int:
    return round(ms * 1_000_000)


def started_ns(rec: LogRecord) -> int:
    """When the request arrived: `created_at` less the authentication that preceded it."""
    first = rec.spans[0] if rec.spans else None
    auth = first.duration_ms if first is not None and first.name == "auth" and first.start_ms == 0 else 0.0
    return _ns(rec.created_at) - _ms_ns(auth)


def ended_ns(rec: LogRecord) -> int:
    return started_ns(rec) + _ms_ns(max(rec.latency_ms, 0.0))


def child_times(rec: LogRecord, span: SpanRecord) -> tuple[int, int]:
    start = started_ns(rec) + _ms_ns(span.start_ms)
    return start, start + _ms_ns(max(span.duration_ms, 0.0))


def as_datetime(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def first_token_at(rec: LogRecord) -> datetime | None:
    """When the first byte (streams: the first chunk) came back, for Langfuse's completion_start_time."""
    if rec.ttfb_ms is None:
        return None
    return as_datetime(started_ns(rec) + _ms_ns(rec.ttfb_ms))


def _fraction(request_id: str) -> float:
    digest = hashlib.blake2b(request_id.encode(), digest_size=8, person=b"llmc-sample").digest()
    return int.from_bytes(digest, "big") / 2**64


def sampled(request_id: str, rate: float) -> bool:
    """The sampling decision for one call, the same in every process (a hash of the request id, not its
    time-ordered bits, which OpenTelemetry's ratio sampler would read as always-high)."""
    return rate >= 1.0 or (rate > 0.0 and _fraction(request_id) < rate)


def trace_id_for(request_id: str) -> int:
    """The request id's 128 bits as the trace id, so the console's request and the exported trace share an
    id (a UUID's 32 hex digits); ids that are not UUIDs are hashed."""
    try:
        value = uuid.UUID(request_id).int
    except ValueError:
        value = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=16).digest(), "big")
    return value or 1


def tags(rec: LogRecord) -> list[str]:
    return [t for t in (rec.tags or "").split(",") if t]


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _sse_objects(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("data:"):
            obj = _loads(line[5:].strip())
            if isinstance(obj, dict):
                out.append(obj)
    return out


def response_object(rec: LogRecord) -> dict[str, Any] | None:
    """The answer as one JSON object; a streamed chat answer is reassembled from its chunks."""
    obj = _loads(rec.response_body)
    if isinstance(obj, dict):
        return obj
    if not rec.stream or not rec.response_body:
        return None
    chunks = _sse_objects(rec.response_body)
    if not chunks:
        return None
    text: dict[int, list[str]] = {}
    finish: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                text.setdefault(index, []).append(content)
            if isinstance(choice.get("finish_reason"), str):
                finish[index] = choice["finish_reason"]
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": "".join(text.get(i, []))},
            "finish_reason": finish.get(i),
        }
        for i in sorted(set(text) | set(finish))
    ]
    first = chunks[0]
    return {"id": first.get("id"), "model": first.get("model"), "choices": choices}


def body_value(text: str | None) -> Any:
    """A body for Langfuse's input/output: its JSON when it parses (it may be cut at the log limit)."""
    obj = _loads(text)
    return obj if obj is not None else text


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
                parts.append({"type": "text", "content": item["text"]})
            elif isinstance(item, dict):
                parts.append({"type": str(item.get("type") or "unknown")})
    return parts


def input_messages(rec: LogRecord) -> str | None:
    """`gen_ai.input.messages` (role + parts) from a chat or completion request; None when unreadable."""
    req = _loads(rec.request_body)
    if not isinstance(req, dict):
        return None
    messages: list[dict[str, Any]] = []
    if isinstance(req.get("system"), str):  # Anthropic's top-level system prompt
        messages.append({"role": "system", "parts": _parts(req["system"])})
    for msg in req.get("messages") or []:
        if isinstance(msg, dict):
            messages.append({"role": str(msg.get("role") or "user"), "parts": _parts(msg.get("content"))})
    prompt = req.get("prompt") if "messages" not in req else None
    if isinstance(prompt, str):
        messages.append({"role": "user", "parts": _parts(prompt)})
    return orjson.dumps(messages).decode() if messages else None


def output_messages(rec: LogRecord) -> str | None:
    """`gen_ai.output.messages` from the answer's choices (or Anthropic's content blocks)."""
    obj = response_object(rec)
    if obj is None:
        return None
    out: list[dict[str, Any]] = []
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else choice.get("text")
        out.append({"role": "assistant", "parts": _parts(content), "finish_reason": choice.get("finish_reason") or ""})
    if not out and isinstance(obj.get("content"), list):
        out.append(
            {"role": "assistant", "parts": _parts(obj["content"]), "finish_reason": obj.get("stop_reason") or ""}
        )
    return orjson.dumps(out).decode() if out else None


def genai_attributes(rec: LogRecord, dep: DeploymentInfo | None) -> dict[str, AttributeValue]:
    """The GenAI client-span attributes of one call (content excluded: see `input_messages`)."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": operation(rec),
        "gen_ai.request.model": rec.alias or rec.model,
        "http.response.status_code": rec.status_code,
        "gen_ai.request.stream": rec.stream,
    }
    if dep is not None:
        attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = dep.provider
        if dep.address:
            attrs["server.address"] = dep.address
        if dep.port:
            attrs["server.port"] = dep.port
    if rec.model:
        attrs["gen_ai.response.model"] = rec.model
    if rec.status == "ok" or rec.prompt_tokens or rec.completion_tokens:
        attrs["gen_ai.usage.input_tokens"] = rec.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = rec.completion_tokens
        if rec.cached_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = rec.cached_tokens
    if rec.stream and rec.ttfb_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = round(rec.ttfb_ms / 1000, 6)
    if rec.embedding_dims:
        attrs["gen_ai.embeddings.dimension.count"] = rec.embedding_dims
    if rec.status != "ok":
        attrs["error.type"] = rec.error_type or rec.status
    req = _loads(rec.request_body)
    if isinstance(req, dict):
        for field, name in _REQUEST_PARAMS.items():
            value = req.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[name] = value
    resp = response_object(rec) if rec.status == "ok" else None
    if resp is not None:
        if isinstance(resp.get("id"), str):
            attrs["gen_ai.response.id"] = resp["id"]
        reasons = [c.get("finish_reason") for c in resp.get("choices") or [] if isinstance(c, dict)]
        if isinstance(resp.get("stop_reason"), str):
            reasons.append(resp["stop_reason"])
        if any(isinstance(r, str) for r in reasons):
            attrs["gen_ai.response.finish_reasons"] = [r for r in reasons if isinstance(r, str)]
    return attrs


def console_attributes(rec: LogRecord, dep: DeploymentInfo | None) -> dict[str, AttributeValue]:
    """`llm_console.*` attributes: what ties the span to the console's request, key and deployment."""
    attrs: dict[str, AttributeValue] = {
        "llm_console.request_id": rec.id,
        "llm_console.endpoint": rec.endpoint,
        "llm_console.cost_usd": rec.cost_usd,
        "llm_console.status": rec.status,
        "llm_console.attempts": rec.attempts,
    }
    optional: dict[str, Any] = {
        "llm_console.alias": rec.alias,
        "llm_console.key_id": rec.key_id,
        "llm_console.user_id": rec.user_id,
        "llm_console.team_id": rec.team_id,
        "llm_console.deployment_id": rec.deployment_id,
        "llm_console.deployment": dep.name if dep is not None else None,
        "llm_console.end_user": rec.end_user,
        "llm_console.session_id": rec.session_id,
        "llm_console.throttle": rec.throttle,
        "llm_console.prompt_version_id": rec.prompt_version_id,
        "llm_console.error_message": rec.error_message[:1000] if rec.error_message else None,
    }
    attrs.update({k: v for k, v in optional.items() if v not in (None, "")})
    if rec.tags:
        attrs["llm_console.tags"] = tags(rec)
    return attrs


def child_attributes(span: SpanRecord) -> dict[str, AttributeValue]:
    """A record span's own attributes under `llm_console.`, coerced to OpenTelemetry value types."""
    out: dict[str, AttributeValue] = {}
    for key, value in span.attributes.items():
        if isinstance(value, str | bool | int | float):
            out[f"llm_console.{key}"] = value
        elif value is not None:
            out[f"llm_console.{key}"] = str(value)
    if isinstance(span.attributes.get("status_code"), int):
        out["http.response.status_code"] = span.attributes["status_code"]
    return out
