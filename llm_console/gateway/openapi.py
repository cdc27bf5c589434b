"""The gateway's OpenAPI 3.1 description, built from the same pydantic schemas that validate requests
(served at /gateway/openapi.json; schemathesis fuzzes the gateway against it in the tests)."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from llm_console.gateway import schemas
from llm_console.prompts.template import LABEL, MAX_VALUE_CHARS, MAX_VALUES, NAME

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

PROMPT_REFERENCE = {
    "type": "object",
    "additionalProperties": False,
    "description": "A stored prompt to render before the request's own messages (llm-console's own field).",
    "properties": {
        "name": {"type": "string", "pattern": NAME.pattern, "description": "The prompt's name."},
        "id": {"type": "string", "pattern": NAME.pattern, "description": "Same as `name` (OpenAI's spelling)."},
        "label": {
            "type": "string",
            "pattern": LABEL.pattern,
            "description": "A label (default `production`); `latest` is the newest version.",
        },
        "version": {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                {"type": "string", "pattern": "^[1-9][0-9]{0,8}$"},
            ],
            "description": "A version number, instead of a label.",
        },
        "variables": {
            "type": "object",
            "maxProperties": MAX_VALUES,
            "additionalProperties": {
                "anyOf": [{"type": "string", "maxLength": MAX_VALUE_CHARS}, {"type": ["number", "boolean"]}]
            },
            "description": "A value for each `{{ variable }}` of the template; inserted as literal text.",
        },
    },
    "oneOf": [{"required": ["name"]}, {"required": ["id"]}],
    "not": {"required": ["label", "version"]},
}
# Request schemas that take a `prompt` reference, and the fields a prompt may stand in for.
PROMPTED = {
    "ChatCompletionRequest": ("model", "messages"),
    "ResponsesRequest": ("model",),
    "MessagesRequest": ("model", "messages"),
}

PROMPT_OK = {
    "type": "object",
    "required": ["object", "name", "version", "labels", "kind", "variables", "config", "created_at"],
    "properties": {
        "object": {"const": "prompt"},
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["chat", "text"]},
        "messages": {"type": "array", "items": {"type": "object"}},
        "text": {"type": "string"},
        "variables": {"type": "array", "items": {"type": "string"}},
        "config": {"type": "object"},
        "commit_message": {"type": "string"},
        "created_at": {"type": "integer"},
    },
}

ERROR_STATUSES = {
    "400": "Malformed body, wrong types, a forbidden field, or a parameter the target cannot express; a malformed "
    "`prompt` (`invalid_prompt`) or one missing variables (`missing_prompt_variables`).",
    "401": "Missing, malformed, unknown, revoked or expired key.",
    "403": "The key may not use this model (`model_not_allowed`).",
    "404": "Unknown model (`model_not_found`), prompt (`prompt_not_found`) or prompt label or version "
    "(`prompt_version_not_found`).",
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


def _take_prompt(schema: dict[str, Any], replaced: tuple[str, ...]) -> None:
    """A request schema that also takes a `prompt`. With one, `replaced` may be left out (the messages come from
    the prompt, the model may come from its settings): said in words, the schema keeps them required so that
    generated bodies (schemathesis) still reach an upstream rather than naming prompts that do not exist."""
    fields = " and ".join(f"`{r}`" for r in replaced)
    schema["properties"]["prompt"] = {
        "allOf": [{"$ref": "#/components/schemas/PromptReference"}],
        "description": f"A stored prompt rendered before the request's own messages; with one, {fields} may be "
        "left out (the model may come from the prompt's settings).",
    }


def _prompt_operation() -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    query = [
        ("label", {"type": "string", "pattern": LABEL.pattern}, "A label (default `production`); `latest` is newest."),
        ("version", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "A version number, instead of a label."),
    ]
    parameters: list[dict[str, Any]] = [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": NAME.pattern}},
        *({"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in query),
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    ]
    return {
        "get": {
            "summary": "One version of a stored prompt, with an ETag (any valid key)",
            "operationId": "v1_prompts_get",
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The version; `ETag` and `Cache-Control: private, no-cache` headers.",
                    "content": {"application/json": {"schema": PROMPT_OK}},
                },
                "304": {"description": "`If-None-Match` names the current ETag: the client's copy is current."},
                "400": {"description": "Both `label` and `version`, or a malformed one.", "content": error},
                "401": {"description": ERROR_STATUSES["401"]},
                "404": {
                    "description": "Unknown prompt (`prompt_not_found`), label or version "
                    "(`prompt_version_not_found`).",
                    "content": error,
                },
            },
        }
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR}
    for path, model, summary, streams in OPERATIONS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        if model.__name__ in PROMPTED:
            _take_prompt(schema, PROMPTED[model.__name__])
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
    components["PromptReference"] = PROMPT_REFERENCE
    paths["/v1/prompts/{name}"] = _prompt_operation()
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
