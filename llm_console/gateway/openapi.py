"""The gateway's OpenAPI 3.1 description, built from the same pydantic schemas that validate requests
(served at /gateway/openapi.json; schemathesis fuzzes the gateway against it in the tests)."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from llm_console.gateway import schemas

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

FEEDBACK = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "request_id": {"type": "string", "maxLength": 36, "description": "The scored call's x-request-id."},
        "session_id": {"type": "string", "maxLength": 200, "description": "Or a session (X-LLMC-Session-Id)."},
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "value": {"type": ["number", "string"], "description": "A number, or a category label."},
        "category": {"type": "string", "maxLength": 100},
        "comment": {"type": "string", "maxLength": 2000},
    },
}

ERROR_STATUSES = {
    "400": "Malformed body, wrong types, a forbidden field, or a parameter the target cannot express.",
    "401": "Missing, malformed, unknown, revoked or expired key.",
    "403": "The key may not use this model (`model_not_allowed`).",
    "404": "Unknown model (`model_not_found`).",
    "413": "Body larger than `LLMC_MAX_REQUEST_BODY_BYTES` (`request_too_large`).",
    "429": "Upstream rate limit passed on with `Retry-After`, or every deployment busy (`deployment_busy`).",
    "502": "Upstream unreachable, broke the connection, or refused by the SSRF guard.",
    "503": "Every deployment's circuit is open (`no_healthy_deployment`), with `Retry-After`.",
    "504": "The upstream did not answer in time (`upstream_timeout`).",
}

OPERATIONS: tuple[tuple[str, type[Any], str, bool], ...] = (
    ("/v1/chat/completions", schemas.ChatCompletionRequest, "Chat completion (OpenAI)", True),
    ("/v1/completions", schemas.CompletionRequest, "Text completion (OpenAI legacy)", True),
    ("/v1/embeddings", schemas.EmbeddingRequest, "Embeddings (OpenAI)", False),
    ("/v1/rerank", schemas.RerankRequest, "Rerank documents (vLLM / Jina / Cohere shape)", False),
    ("/v1/responses", schemas.ResponsesRequest, "Responses API, passed through to providers that speak it", True),
    ("/v1/messages", schemas.MessagesRequest, "Messages (Anthropic), against Anthropic or OpenAI upstreams", True),
)


def _responses(streams: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    out: dict[str, Any] = {"200": {"description": "The upstream's answer, in the client's format.", "content": ok}}
    for status, text in ERROR_STATUSES.items():
        out[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR}
    for path, model, summary, streams in OPERATIONS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        paths[path] = {
            "post": {
                "summary": summary,
                "operationId": path.strip("/").replace("/", "_"),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
                },
                "responses": _responses(streams),
            }
        }
    models_ok = {
        "description": "Aliases this key may use.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    paths["/v1/models"] = {
        "get": {
            "summary": "List models",
            "operationId": "v1_models",
            "responses": {"200": models_ok, "401": {"description": ERROR_STATUSES["401"]}},
        }
    }
    paths["/v1/limits"] = {
        "get": {
            "summary": "The calling key's rate limits and budgets, what is used of each, and when each resets",
            "operationId": "v1_limits",
            "responses": {
                "200": {
                    "description": "One entry per entity (key, user, team) that limits this key.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": {"description": ERROR_STATUSES["401"]},
            },
        }
    }
    components["Feedback"] = FEEDBACK
    paths["/v1/feedback"] = {
        "post": {
            "summary": "Score one of the caller's requests (its x-request-id) or sessions",
            "operationId": "v1_feedback",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Feedback"}}},
            },
            "responses": {
                "201": {
                    "description": "The stored score.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {
                    "description": "A missing or malformed field (`invalid_feedback`, `param` names it).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                "401": {"description": ERROR_STATUSES["401"]},
                "404": {
                    "description": "No such request or session made with this key, its owner or its team.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                "413": {"description": "Body larger than 16 KiB."},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM Console gateway", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def merge_documents(base: dict[str, Any], *extras: dict[str, Any]) -> dict[str, Any]:
    """A new document: `base` plus the paths, components and tags of `extras` (the console adds its own APIs)."""
    out = copy.deepcopy(base)
    for extra in extras:
        out["paths"].update(copy.deepcopy(extra.get("paths", {})))
        components = out.setdefault("components", {})
        for section, entries in extra.get("components", {}).items():
            components.setdefault(section, {}).update(copy.deepcopy(entries))
        out.setdefault("tags", []).extend(copy.deepcopy(extra.get("tags", [])))
    return out
