"""/v1/chat/completions passes bodies through, streams incrementally, captures usage and logs every call."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import RequestLog
from llm_console.services.deployments import set_price

from .fakes import (
    ALIAS,
    DONE,
    MESSAGES,
    PROVIDER_KEY,
    UPSTREAM_MODEL,
    ChunkStream,
    Gateway,
    GatewayFactory,
    completion,
    content_chunk,
    usage_chunk,
)

STREAM_TIMEOUT_S = 5


def sse_events(raw: bytes) -> list[bytes]:
    return [ev for ev in raw.replace(b"\r\n", b"\n").split(b"\n\n") if ev.strip()]


def event_json(event: bytes) -> dict[str, object]:
    assert event.startswith(b"data: "), event
    return orjson.loads(event.removeprefix(b"data: "))  # type: ignore[no-any-return]


async def test_non_streaming_body_passes_through_byte_for_byte(gw: Gateway) -> None:
    # Odd spacing, key order and an unknown field: any re-encoding by the gateway would change these bytes.
    raw = b'{ "z_extra": {"nested": [1, 2.50]},  "id":"chatcmpl-x", "choices":[], "usage": {"prompt_tokens": 4} }'
    gw.upstream.reply(lambda: httpx.Response(200, content=raw, headers={"content-type": "application/json"}))

    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "temperature": 0.25, "vendor_knob": {"a": [1]}})

    assert resp.status_code == 200
    assert resp.content == raw
    assert resp.headers["content-type"] == "application/json"
    sent = gw.upstream.last_json
    assert sent["model"] == UPSTREAM_MODEL
    assert sent["messages"] == MESSAGES
    assert sent["temperature"] == 0.25
    assert sent["vendor_knob"] == {"a": [1]}
    assert "stream_options" not in sent


async def test_upstream_gets_the_provider_key_and_never_the_virtual_key(gw: Gateway) -> None:
    resp = await gw.chat(headers={"x-api-key": gw.key.secret, "x-custom": "client-header"})

    assert resp.status_code == 200
    request = gw.upstream.requests[-1]
    assert request.url == httpx.URL(f"{gw.upstream_base}/chat/completions")
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-custom" not in request.headers
    wire = b"".join(f"{k}: {v}".encode() for k, v in request.headers.items()) + request.content
    assert gw.key.secret.encode() not in wire


async def test_response_header_x_request_id_is_the_log_row_id(gw: Gateway) -> None:
    first = await gw.chat()
    second = await gw.chat()

    rows = await gw.rows()
    assert {r.id for r in rows} == {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_log_row_for_a_non_streaming_call(make_gateway: GatewayFactory) -> None:
    async with make_gateway(log_body_max_bytes=64) as gw:
        gw.upstream.reply(lambda: httpx.Response(200, json=completion(prompt=11, completion_tokens=5)))
        body = {"model": ALIAS, "messages": [{"role": "user", "content": "x" * 500}]}
        resp = await gw.chat(body)
        assert resp.status_code == 200

        row = await gw.row()
        assert row.id == resp.headers["x-request-id"]
        assert (row.status, row.status_code, row.error_type) == ("ok", 200, None)
        assert (row.alias, row.model, row.deployment_id) == (ALIAS, UPSTREAM_MODEL, gw.deployment_id)
        assert row.key_id == gw.key.id
        assert row.endpoint == "/v1/chat/completions"
        assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (11, 5, 0)
        assert row.stream is False
        assert row.request_body == orjson.dumps(body)[:64].decode()
        assert row.response_body is not None and len(row.response_body) == 64
        assert row.ttfb_ms is not None and 0 < row.ttfb_ms <= row.latency_ms
        assert row.latency_ms < 10_000
        spans = gw.spans(row.id)
        assert [s.name for s in spans] == ["auth", "route", "upstream"]
        assert spans[-1].attributes["status_code"] == 200
        assert all(s.status == "ok" for s in spans)


async def test_cost_uses_the_price_set_for_the_upstream_model(gw: Gateway) -> None:
    set_price(
        gw.rt.engine,
        model=UPSTREAM_MODEL,
        input_per_mtok=2.0,
        output_per_mtok=8.0,
        cached_input_per_mtok=0.5,
        actor="test",
    )
    await gw.rt.reload_routes()
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200}}
    gw.upstream.reply(lambda: httpx.Response(200, json={**completion(), "usage": usage}))

    assert (await gw.chat()).status_code == 200

    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (1000, 500, 200)
    assert row.cost_usd == pytest.approx((800 * 2.0 + 200 * 0.5 + 500 * 8.0) / 1e6)


async def test_without_a_price_the_cost_is_zero(gw: Gateway) -> None:
    assert (await gw.chat()).status_code == 200
    row = await gw.row()
    assert row.prompt_tokens == 7
    assert row.cost_usd == 0.0


async def test_streaming_chunks_reach_the_client_before_the_upstream_finishes(gw_stream: Gateway) -> None:
    gate = asyncio.Event()
    stream = ChunkStream([content_chunk("Hel"), content_chunk("lo"), usage_chunk(3, 2), DONE], gate=gate, gate_at=1)
    gw_stream.upstream.reply(lambda: httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"}))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}

    async with asyncio.timeout(STREAM_TIMEOUT_S):  # a buffering gateway never shows the first chunk: timeout
        async with gw_stream.client.stream("POST", "/v1/chat/completions", json=body, headers=gw_stream.auth) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers["cache-control"] == "no-cache"
            chunks = resp.aiter_raw()
            first = await anext(chunks)
            assert first == content_chunk("Hel")
            assert stream.produced == 1  # the upstream is still waiting on the gate
            gate.set()
            rest = b"".join([c async for c in chunks])

    assert rest == content_chunk("lo") + DONE
    assert stream.closed
    row = await gw_stream.row()
    assert row.id == resp.headers["x-request-id"]
    assert (row.status, row.status_code, row.stream) == ("ok", 200, True)
    assert (row.prompt_tokens, row.completion_tokens) == (3, 2)
    assert row.ttfb_ms is not None and 0 < row.ttfb_ms <= row.latency_ms
    spans = gw_stream.spans(row.id)
    assert [s.name for s in spans] == ["auth", "route", "upstream", "stream"]
    assert spans[-1].attributes == {"chunks": 2, "usage_reported": True}


async def test_streaming_with_delays_between_chunks_keeps_every_event(gw_stream: Gateway) -> None:
    chunks = [content_chunk(str(i)) for i in range(5)] + [usage_chunk(4, 5), DONE]
    gw_stream.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream(chunks, delay=0.01)))

    async with asyncio.timeout(STREAM_TIMEOUT_S):
        resp = await gw_stream.chat({"model": ALIAS, "messages": MESSAGES, "stream": True})

    events = sse_events(resp.content)
    assert [event_json(e)["choices"][0]["delta"]["content"] for e in events[:-1]] == ["0", "1", "2", "3", "4"]  # type: ignore[index]
    assert events[-1] == b"data: [DONE]"


async def test_usage_is_injected_upstream_and_the_usage_chunk_hidden_from_the_client(gw: Gateway) -> None:
    set_price(gw.rt.engine, model=UPSTREAM_MODEL, input_per_mtok=1.0, output_per_mtok=2.0, actor="test")
    await gw.rt.reload_routes()
    upstream_bytes = content_chunk("A") + content_chunk("B") + usage_chunk(12, 2) + DONE
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([upstream_bytes])))

    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "stream": True, "stream_options": {"x": 1}})

    assert resp.status_code == 200
    sent = gw.upstream.last_json
    assert sent["stream_options"] == {"x": 1, "include_usage": True}
    assert sent["stream"] is True
    assert resp.content == content_chunk("A") + content_chunk("B") + DONE
    assert b'"usage"' not in resp.content
    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens) == (12, 2)
    assert row.cost_usd == pytest.approx((12 * 1.0 + 2 * 2.0) / 1e6)
    assert row.status == "ok"


async def test_usage_chunk_is_passed_on_when_the_client_asked_for_it(gw: Gateway) -> None:
    upstream_bytes = content_chunk("A") + usage_chunk(9, 1) + DONE
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([upstream_bytes])))

    body = {"model": ALIAS, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    resp = await gw.chat(body)

    assert gw.upstream.last_json["stream_options"] == {"include_usage": True}
    assert resp.content == upstream_bytes
    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens) == (9, 1)


async def test_usage_chunk_split_across_network_reads_is_still_captured(gw: Gateway) -> None:
    wire = content_chunk("A") + usage_chunk(21, 8) + DONE
    pieces = [wire[i : i + 7] for i in range(0, len(wire), 7)]  # events cut at arbitrary byte offsets
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream(pieces)))

    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "stream": True})

    assert resp.content == content_chunk("A") + DONE
    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (21, 8, "ok")


async def test_crlf_framed_upstream_events_are_understood(gw: Gateway) -> None:
    wire = (content_chunk("A") + usage_chunk(5, 1) + DONE).replace(b"\n", b"\r\n")
    gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([wire])))

    resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "stream": True})

    assert sse_events(resp.content) == sse_events(content_chunk("A") + DONE)
    row = await gw.row()
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (5, 1, "ok")


async def test_stream_log_row_captures_the_response_up_to_the_cap(make_gateway: GatewayFactory) -> None:
    async with make_gateway(log_body_max_bytes=40) as gw:
        wire = content_chunk("A" * 30) + content_chunk("B") + usage_chunk(1, 2) + DONE
        gw.upstream.reply(lambda: httpx.Response(200, stream=ChunkStream([wire])))

        resp = await gw.chat({"model": ALIAS, "messages": MESSAGES, "stream": True})

        row = await gw.row()
        assert row.response_body == resp.content[:40].decode()
        assert row.request_body is not None and len(row.request_body) == 40


async def test_client_disconnect_mid_stream_cancels_upstream_and_charges_partial_usage(
    gw_stream: Gateway,
) -> None:
    gate = asyncio.Event()  # never set: the upstream would wait forever for it
    stream = ChunkStream([content_chunk("A"), content_chunk("B"), DONE], gate=gate, gate_at=2)
    gw_stream.upstream.reply(lambda: httpx.Response(200, stream=stream))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}

    async with asyncio.timeout(STREAM_TIMEOUT_S):
        async with gw_stream.client.stream("POST", "/v1/chat/completions", json=body, headers=gw_stream.auth) as resp:
            got = b""
            async for chunk in resp.aiter_raw():
                got += chunk
                if got.count(b"\n\n") == 2:
                    break
        row = await gw_stream.row()

    assert got == content_chunk("A") + content_chunk("B")
    assert stream.closed
    assert (row.status, row.error_type) == ("incomplete", "client_disconnected")
    assert row.completion_tokens == 2  # one per content chunk seen
    assert row.prompt_tokens == len(orjson.dumps(body)) // 4


async def test_the_row_of_a_call_answered_just_before_shutdown_is_kept(make_gateway: GatewayFactory) -> None:
    async with make_gateway(log_flush_interval_s=0.5) as gw:  # the default interval
        resp = await gw.chat()
        assert resp.status_code == 200
        await asyncio.sleep(0.05)
    # The lifespan has ended: the row is in the database, or spooled for the next start.
    with session(gw.rt.engine) as s:
        stored = [r.id for r in s.exec(select(RequestLog))]
    spooled = list((gw.settings.data_dir / "spool").glob("*.jsonl"))
    assert stored == [resp.headers["x-request-id"]] or spooled
