"""Prompts at the gateway: `GET /v1/prompts/{name}` (one version, with an ETag for caching clients), and the
rendering of a request's `prompt` reference on /v1/chat/completions, /v1/responses and /v1/messages.

A reference is `{"name" (or OpenAI's "id"), "label" | "version", "variables"}`; with neither a label nor a
version it means the "production" label. The rendered messages go before the request's own, the version's
model settings fill in only what the request left unset, and the body is forwarded (and logged) as rendered.
Lookups go through the runtime's PromptCache: a hit reads no database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from llm_console.db.records import LogRecord, SpanRecord
from llm_console.gateway.errors import GatewayError, bad_request
from llm_console.gateway.runtime import GatewayRuntime
from llm_console.prompts.store import LATEST, PromptNotFound, ResolvedPrompt, VersionNotFound
from llm_console.prompts.template import MissingVariables, PromptError, check_label, check_name, check_values, render

PROMPT_ENDPOINTS = frozenset({"chat", "responses", "messages"})
REFERENCE_FIELDS = ("name", "id", "label", "version", "variables")
MAX_VERSION = 2**31 - 1
CACHE_CONTROL = "private, no-cache"  # clients may keep it, but must revalidate (If-None-Match) before use
CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Where a version's model settings go, per endpoint (a setting the endpoint has no field for is left out).
CONFIG_TARGETS: dict[str, dict[str, str]] = {
    "chat": {
        **{f: f for f in ("model", "temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop")},
        "max_tokens": "max_tokens",
        "max_completion_tokens": "max_completion_tokens",
    },
    "responses": {
        **{f: f for f in ("model", "temperature", "top_p")},
        "max_tokens": "max_output_tokens",
        "max_completion_tokens": "max_output_tokens",
    },
    "messages": {
        **{f: f for f in ("model", "temperature", "top_p")},
        "max_tokens": "max_tokens",
        "max_completion_tokens": "max_tokens",
        "stop": "stop_sequences",
    },
}


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    label: str | None
    version: int | None
    values: dict[str, str]


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def invalid(message: str, param: str = "prompt") -> GatewayError:
    return bad_request(message, param=param, code="invalid_prompt")


def _version(raw: object) -> int | None:
    """A version number from JSON (OpenAI's SDK sends it as a string) or a query string; None if not one."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_VERSION:
        return raw
    return None


def _label(raw: object) -> str | None:
    """A label that could exist ("latest" included); None if not one."""
    if not isinstance(raw, str):
        return None
    if raw == LATEST:
        return raw
    try:
        return check_label(raw) if raw == raw.strip() else None
    except PromptError:
        return None


def reference(raw: object) -> Reference:
    """The request's `prompt` object, checked (400 `invalid_prompt` naming the field at fault)."""
    if not isinstance(raw, dict):
        raise invalid('\'prompt\' must be an object: {"name": ..., "label" or "version", "variables": {...}}.')
    unknown = sorted(str(k) for k in raw if k not in REFERENCE_FIELDS)
    if unknown:
        raise invalid(f"Unknown field 'prompt.{unknown[0][:40]}': use {', '.join(REFERENCE_FIELDS)}.", "prompt")
    if "name" in raw and "id" in raw:
        raise invalid("Give 'prompt.name' or 'prompt.id', not both.", "prompt.id")
    param = "prompt.id" if "id" in raw else "prompt.name"
    name = raw.get("id", raw.get("name"))
    if not isinstance(name, str):
        raise invalid(f"'{param}' must be the prompt's name, a string.", param)
    try:
        name = check_name(name)
        values = check_values(raw.get("variables"))
    except PromptError as exc:
        raise invalid(exc.message, param if exc.param == "name" else exc.param or "prompt") from None
    label, version = raw.get("label"), raw.get("version")
    if label is not None and version is not None:
        raise invalid("Give 'prompt.label' or 'prompt.version', not both.", "prompt.version")
    if version is not None and _version(version) is None:
        raise invalid("'prompt.version' must be a version number (1, 2, ...).", "prompt.version")
    if label is not None and _label(label) is None:
        raise invalid('\'prompt.label\' must be a label such as "production", "staging" or "latest".', "prompt.label")
    return Reference(name, label, _version(version) if version is not None else None, values)


async def resolve(
    rt: GatewayRuntime, name: str, label: str | None, version: int | None, prefix: str = ""
) -> ResolvedPrompt:
    """The version asked for, from the cache; 404s name what was not found."""
    try:
        return await rt.prompts.get(name, label, version)
    except PromptNotFound:
        raise GatewayError(
            404, f"No prompt is named '{name}'.", param=f"{prefix}name", code="prompt_not_found"
        ) from None
    except VersionNotFound:
        what, param = (f"version {version}", "version") if version is not None else (f"label '{label}'", "label")
        if version is None and label is None:
            what = "label 'production' (ask for another label or a version)"
        raise GatewayError(
            404, f"The prompt '{name}' has no {what}.", param=f"{prefix}{param}", code="prompt_version_not_found"
        ) from None
    except SQLAlchemyError:
        raise GatewayError(
            503, "Prompts cannot be read right now; try again.", type="server_error", code="prompt_store_unavailable"
        ) from None


def _into_chat(data: dict[str, Any], messages: list[dict[str, str]]) -> None:
    own = data.get("messages")
    if own is None or isinstance(own, list):  # anything else is refused by validation, untouched
        data["messages"] = [*messages, *(own or [])]


def _into_responses(data: dict[str, Any], messages: list[dict[str, str]]) -> None:
    own = data.get("input")
    if isinstance(own, str):
        own = [{"role": "user", "content": own}]
    if own is None or isinstance(own, list):
        data["input"] = [*messages, *(own or [])]


def _into_messages(data: dict[str, Any], messages: list[dict[str, str]]) -> None:
    """Anthropic's shape: system and developer messages join `system`, the turns go before `messages`."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
    turns = [m for m in messages if m["role"] in ("user", "assistant")]
    own = data.get("messages")
    if own is None or isinstance(own, list):
        data["messages"] = [*turns, *(own or [])]
    current = data.get("system")
    if system and not current:
        data["system"] = system
    elif system and isinstance(current, str):
        data["system"] = f"{system}\n\n{current}"
    elif system and isinstance(current, list):
        data["system"] = [{"type": "text", "text": system}, *current]


INSERT: dict[str, Callable[[dict[str, Any], list[dict[str, str]]], None]] = {
    "chat": _into_chat,
    "responses": _into_responses,
    "messages": _into_messages,
}


def apply_config(endpoint: str, data: dict[str, Any], config: Mapping[str, Any]) -> None:
    """The version's model settings, each only where the request left it unset (one token cap at most)."""
    targets = CONFIG_TARGETS[endpoint]
    capped = any(data.get(cap) is not None for cap in CAPS)
    for name, value in config.items():
        target = targets.get(name)
        if target is None or data.get(target) is not None:
            continue
        if name in CAPS:
            if capped:
                continue
            capped = True
        if target == "stop_sequences" and isinstance(value, str):
            value = [value]
        data[target] = list(value) if isinstance(value, list) else value


async def apply_prompt(rt: GatewayRuntime, endpoint: str, data: dict[str, Any], rec: LogRecord, t0: float) -> bytes:
    """Render `data["prompt"]` into `data` (in place) and return the body to forward; the log row gets the
    version, a "prompt" span, and the body as forwarded (what the model saw)."""
    started = time.perf_counter()
    ref = reference(data.pop("prompt"))
    resolved = await resolve(rt, ref.name, ref.label, ref.version, "prompt.")
    rec.prompt_version_id = resolved.version_id  # a call refused for missing variables counts against it too
    limit = rt.settings.max_request_body_bytes
    if resolved.rendered_chars(ref.values) > limit:  # a long value used many times: refused before it is built
        raise GatewayError(
            413, f"The rendered prompt would be larger than {limit} bytes.", param="prompt", code="request_too_large"
        )
    try:
        rendered = render(resolved.template, ref.values)
    except MissingVariables as exc:
        raise bad_request(exc.message, param="prompt.variables", code="missing_prompt_variables") from None
    messages = rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}]
    INSERT[endpoint](data, messages)
    apply_config(endpoint, data, resolved.config)
    body = orjson.dumps(data)
    rec.request_body = body[: rt.settings.log_body_max_bytes].decode("utf-8", errors="replace")
    attributes = {"name": resolved.name, "version": resolved.version}
    rec.spans.append(SpanRecord("prompt", _ms(t0, started), _ms(started, time.perf_counter()), attributes=attributes))
    return body


def _query(request: Request) -> tuple[str | None, int | None]:
    q = request.query_params
    for name in ("label", "version"):
        if len(q.getlist(name)) > 1:
            raise bad_request(f"Give '{name}' once.", param=name, code="invalid_parameter")
    label, raw_version = q.get("label"), q.get("version")
    if label is not None and raw_version is not None:
        raise bad_request("Give ?label= or ?version=, not both.", param="version", code="invalid_parameter")
    version = _version(raw_version) if raw_version is not None else None
    if raw_version is not None and version is None:
        raise bad_request("'version' must be a version number (1, 2, ...).", param="version", code="invalid_parameter")
    if label is not None and _label(label) is None:
        raise bad_request(
            "'label' must be a label such as production, staging or latest.", param="label", code="invalid_parameter"
        )
    return label, version


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match against our ETag: `*`, a list, weak (W/) forms compared weakly, as RFC 9110 says."""
    if not if_none_match:
        return False
    for part in if_none_match.split(","):
        tag = part.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def prompt_json(p: ResolvedPrompt) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "prompt", "name": p.name, "version": p.version, "labels": list(p.labels)}
    body["kind"] = p.kind
    body["messages" if p.kind == "chat" else "text"] = p.template.as_json()
    body |= {
        "variables": list(p.variables),
        "config": dict(p.config),
        "commit_message": p.commit_message,
        "created_at": int(p.created_at.timestamp()),
    }
    return body


async def fetch_prompt(request: Request) -> Response:
    """`GET /v1/prompts/{name}?label=|?version=`: any valid key; 304 when the client's copy is current."""
    rt: GatewayRuntime = request.app.state.llmc_runtime
    await rt.authenticate(request.headers, request.client.host if request.client else "")
    label, version = _query(request)
    raw_name = request.path_params["name"]
    try:
        name = check_name(raw_name)
    except PromptError:
        name = ""
    if not name or name != raw_name:  # no prompt can have such a name
        raise GatewayError(404, f"No prompt is named '{raw_name[:200]}'.", param="name", code="prompt_not_found")
    found = await resolve(rt, name, label, version)
    headers = {"etag": found.etag, "cache-control": CACHE_CONTROL}
    if matches(request.headers.get("if-none-match"), found.etag):
        return Response(status_code=304, headers=headers)
    return Response(orjson.dumps(prompt_json(found)), media_type="application/json", headers=headers)
