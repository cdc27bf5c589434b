"""Wire schemas for what the gateway must understand; unknown fields pass through untouched.

Validation is deliberately shallow: the gateway checks what it acts on (model, stream, token limits) and
what would otherwise reach the upstream malformed; everything else is the upstream's to judge.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool


def _integral(value: Any) -> Any:
    """JSON cannot tell 16 from 16.0 (nor can the published JSON Schema): accept an integral number, refuse
    booleans, strings and fractions."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError("expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer, got a fraction")
        return int(value)
    return value


StrictInt = Annotated[int, BeforeValidator(_integral)]
INTEGER_FIELDS = ("max_tokens", "max_completion_tokens", "n", "dimensions", "top_n", "max_output_tokens")

# Fields some proxies honour in the body to pick the upstream; here they would let a caller redirect our
# credentials, so a body carrying one is refused (400, code `forbidden_parameter`).
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "azure_endpoint",
        "azure_ad_token",
        "custom_llm_provider",
        "extra_headers",
        "headers",
        "extra_query",
        "organization",
        "aws_access_key_id",
        "aws_secret_access_key",
        "vertex_credentials",
    }
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class _Generation(_Open):
    model: str = Field(min_length=1, max_length=300)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = Field(default=None, ge=1, le=128)


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)


class CompletionRequest(_Generation):
    prompt: str | list[str] | list[int] | list[list[int]]


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1, max_length=300)
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: StrictInt | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] | None = None


class RerankRequest(_Open):
    model: str = Field(min_length=1, max_length=300)
    query: str
    documents: list[str | dict[str, Any]] = Field(min_length=1)
    top_n: StrictInt | None = Field(default=None, ge=1)


class ResponsesRequest(_Open):
    model: str = Field(min_length=1, max_length=300)
    input: str | list[dict[str, Any]] | None = None
    stream: StrictBool = False
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(_Open):
    model: str = Field(min_length=1, max_length=300)
    max_tokens: StrictInt = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: StrictBool = False
