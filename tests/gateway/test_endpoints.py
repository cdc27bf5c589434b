"""Every endpoint and provider kind: the upstream request it makes, the answer and log row it gives, and
the bad input each endpoint refuses before calling anyone."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from llm_console.services.deployments import add_deployment

from .fakes import ALIAS, MESSAGES, PROVIDER_KEY, UPSTREAM_MODEL, Gateway, GatewayFactory

USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


def reply_json(gw: Gateway, body: dict[str, Any], status: int = 200) -> None:
    gw.upstream.reply(lambda: httpx.Response(status, json=body))


async def post(gw: Gateway, path: str, body: object, **headers: str) -> httpx.Response:
    return await gw.client.post(path, json=body, headers={**gw.auth, **headers})


async def add(gw: Gateway, alias: str, *, kind: str, base: str, model: str, **extra: Any) -> None:
    add_deployment(
        gw.rt.engine,
        gw.rt.box,
        alias=alias,
        base_url=base,
        model=model,
        kind=kind,
        api_key=PROVIDER_KEY,
        actor="test",
        extra_allowlist=["127.0.0.1/32"],
        **extra,
    )
    await gw.rt.reload_routes()


@pytest.mark.parametrize(
    ("path", "body", "upstream_path", "usage", "tokens"),
    [
        ("/v1/completions", {"prompt": "Once"}, "/v1/completions", USAGE, (11, 4)),
        ("/v1/embeddings", {"input": ["a", "b"]}, "/v1/embeddings", {"prompt_tokens": 6, "total_tokens": 6}, (6, 0)),
        ("/v1/rerank", {"query": "q", "documents": ["a", "b"]}, "/v1/rerank", {"total_tokens": 9}, (9, 0)),
        ("/v1/responses", {"input": "hi"}, "/v1/responses", {"input_tokens": 5, "output_tokens": 2}, (5, 2)),
    ],
)
async def test_openai_endpoints_pass_through_and_are_priced(
    gw: Gateway, path: str, body: dict[str, Any], upstream_path: str, usage: dict[str, int], tokens: tuple[int, int]
) -> None:
    answer = {"id": "x", "object": "whatever", "usage": usage, "data": [1, 2]}
    reply_json(gw, answer)

    resp = await post(gw, path, {"model": ALIAS, **body})

    assert resp.status_code == 200, resp.text
    assert resp.json() == answer
    sent = gw.upstream.requests[-1]
    assert sent.url.path == upstream_path
    assert orjson.loads(sent.content) == {**body, "model": UPSTREAM_MODEL}
    row = await gw.row()
    assert (row.endpoint, row.alias, row.status) == (path, ALIAS, "ok")
    assert (row.prompt_tokens, row.completion_tokens) == tokens


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"model": ALIAS}, "prompt"),
        ("/v1/completions", {"model": ALIAS, "prompt": "x", "max_tokens": -1}, "max_tokens"),
        ("/v1/completions", {"model": ALIAS, "prompt": {"a": 1}}, "prompt"),
        ("/v1/embeddings", {"model": ALIAS}, "input"),
        ("/v1/embeddings", {"model": ALIAS, "input": 3.5}, "input"),
        ("/v1/embeddings", {"input": "x"}, "model"),
        ("/v1/rerank", {"model": ALIAS, "query": "q", "documents": []}, "documents"),
        ("/v1/rerank", {"model": ALIAS, "documents": ["a"]}, "query"),
        ("/v1/rerank", {"model": ALIAS, "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ("/v1/responses", {"model": ALIAS, "max_output_tokens": 0}, "max_output_tokens"),
        ("/v1/responses", {"model": ALIAS, "stream": "yes"}, "stream"),
    ],
)
async def test_each_endpoint_refuses_bad_bodies_before_the_upstream(
    gw: Gateway, path: str, body: dict[str, Any], param: str
) -> None:
    resp = await post(gw, path, body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert gw.upstream.requests == []
    assert (await gw.row()).status_code == 400


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/responses"])
@pytest.mark.parametrize("raw", [b"{not json", b'{"model": "m"', b"\xff\xfe{}", b"[1, 2]", b""])
async def test_non_json_bodies_are_400_on_every_endpoint(gw: Gateway, path: str, raw: bytes) -> None:
    resp = await gw.client.post(path, content=raw, headers=gw.auth)
    assert resp.status_code == 400
    body = resp.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert gw.upstream.requests == []


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "extra_headers", "headers", "api_version"])
async def test_the_body_cannot_choose_the_upstream_or_its_credentials(gw: Gateway, field: str) -> None:
    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, field: "http://169.254.169.254/"})
    assert resp.status_code == 400
    assert resp.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "invalid_request_error",
        "param": field,
        "code": "forbidden_parameter",
    }
    assert gw.upstream.requests == []


async def test_client_headers_never_reach_the_upstream(gw: Gateway) -> None:
    await gw.chat(headers={"x-forwarded-host": "evil", "openai-organization": "org-x", "anthropic-version": "9"})
    sent = gw.upstream.requests[-1].headers
    assert not {"x-forwarded-host", "openai-organization", "anthropic-version"} & set(sent)


async def test_messages_with_bad_input_get_anthropic_shaped_errors(gw: Gateway) -> None:
    resp = await post(gw, "/v1/messages", {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == "max_tokens"
    unknown = await post(gw, "/v1/messages", {"model": "nope", "max_tokens": 5, "messages": [MESSAGES[0]]})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    missing_key = await gw.client.post("/v1/messages", json={"model": ALIAS})
    assert missing_key.status_code == 401 and missing_key.json()["error"]["type"] == "authentication_error"


async def test_messages_against_an_openai_deployment_are_translated_both_ways(gw: Gateway) -> None:
    reply_json(
        gw,
        {
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
            "usage": USAGE,
        },
    )
    body = {"model": ALIAS, "max_tokens": 50, "system": "Be brief.", "messages": [{"role": "user", "content": "Hey"}]}

    resp = await post(gw, "/v1/messages", body)

    assert resp.status_code == 200, resp.text
    msg = resp.json()
    assert (msg["type"], msg["role"], msg["content"], msg["stop_reason"]) == (
        "message",
        "assistant",
        [{"type": "text", "text": "Hi!"}],
        "end_turn",
    )
    assert (msg["usage"]["input_tokens"], msg["usage"]["output_tokens"]) == (11, 4)
    sent = gw.upstream.requests[-1]
    assert sent.url.path == "/v1/chat/completions"
    assert orjson.loads(sent.content)["messages"][0] == {"role": "system", "content": "Be brief."}
    row = await gw.row()
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens) == ("/v1/messages", 11, 4)


async def test_chat_against_an_anthropic_deployment_is_translated_both_ways(gw: Gateway) -> None:
    root = gw.upstream_base.removesuffix("/v1")
    await add(gw, "claude", kind="anthropic", base=root, model="claude-x")
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 7, "cache_read_input_tokens": 2},
    }
    reply_json(gw, answer)

    resp = await gw.chat({"model": "claude", "messages": MESSAGES, "max_tokens": 7})

    assert resp.status_code == 200, resp.text
    chat = resp.json()
    assert chat["choices"][0]["message"]["content"] == "Hello"
    assert chat["choices"][0]["finish_reason"] == "length"
    assert chat["usage"]["prompt_tokens"] == 5 and chat["usage"]["completion_tokens"] == 7
    sent = gw.upstream.requests[-1]
    assert sent.url.path == "/v1/messages"
    assert sent.headers["x-api-key"] == PROVIDER_KEY and "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert orjson.loads(sent.content)["max_tokens"] == 7
    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (5, 7, 2)


async def test_an_anthropic_error_reaches_an_openai_client_in_openai_shape(gw: Gateway) -> None:
    await add(gw, "claude", kind="anthropic", base=gw.upstream_base.removesuffix("/v1"), model="claude-x")
    reply_json(gw, {"type": "error", "error": {"type": "invalid_request_error", "message": "too long"}}, status=400)
    resp = await gw.chat({"model": "claude", "messages": MESSAGES})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "too long"


async def test_azure_deployments_use_the_deployment_path_api_version_and_api_key(gw: Gateway) -> None:
    await add(
        gw,
        "az",
        kind="azure",
        base=gw.upstream_base.removesuffix("/v1"),
        model="my-gpt4o",
        provider_settings={"api_version": "2024-10-21"},
    )
    resp = await gw.chat({"model": "az", "messages": MESSAGES})
    assert resp.status_code == 200
    sent = gw.upstream.requests[-1]
    assert sent.url.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert sent.url.params["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == PROVIDER_KEY and "authorization" not in sent.headers


async def test_an_endpoint_no_deployment_serves_is_a_clear_400(gw: Gateway) -> None:
    await add(gw, "claude", kind="anthropic", base=gw.upstream_base.removesuffix("/v1"), model="claude-x")
    resp = await post(gw, "/v1/rerank", {"model": "claude", "query": "q", "documents": ["a"]})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "unsupported_endpoint"
    assert gw.upstream.requests == []


async def test_translation_refuses_what_the_other_api_cannot_express(gw: Gateway) -> None:
    await add(gw, "claude", kind="anthropic", base=gw.upstream_base.removesuffix("/v1"), model="claude-x")
    resp = await gw.chat({"model": "claude", "messages": MESSAGES, "n": 3})
    assert resp.status_code == 400
    assert (resp.json()["error"]["param"], resp.json()["error"]["code"]) == ("n", "unsupported_parameter")
    assert gw.upstream.requests == []


async def test_retrieving_a_model_respects_the_key_scope(make_gateway: GatewayFactory) -> None:
    async with make_gateway(allowed_aliases=["other"]) as gw:
        await add(gw, "other", kind="openai", base=gw.upstream_base, model="o")
        assert (await gw.client.get("/v1/models/other", headers=gw.auth)).json()["id"] == "other"
        hidden = await gw.client.get(f"/v1/models/{ALIAS}", headers=gw.auth)
        assert hidden.status_code == 404  # the same answer as for an alias that does not exist
        assert (await gw.client.get("/v1/models/nope", headers=gw.auth)).status_code == 404


async def test_an_integer_beyond_64_bits_is_a_400_not_a_500(gw: Gateway) -> None:
    resp = await post(gw, "/v1/rerank", {"model": ALIAS, "query": "q", "documents": ["a"], "top_n": 2**80})
    assert resp.status_code == 400
    assert "64 bits" in resp.json()["error"]["message"]
    assert gw.upstream.requests == []


async def test_integral_floats_are_accepted_and_forwarded_as_integers(gw: Gateway) -> None:
    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "max_tokens": 16.0})
    assert resp.status_code == 200
    assert gw.upstream.last_json["max_tokens"] == 16 and isinstance(gw.upstream.last_json["max_tokens"], int)
    bad = await gw.chat({"model": ALIAS, "messages": MESSAGES, "max_tokens": 16.5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_tokens"
