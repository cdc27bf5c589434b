"""Self-tests of the fault-injecting upstream, driven by aiohttp (the gateway's own HTTP client)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import aiohttp
import pytest

from .faulty import Behaviour, FaultyUpstream, completion, content_chunk, default_events, usage_chunk

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


async def wait_until(predicate: Callable[[], object]) -> None:
    """Poll server-side state that has no event to wait on, for up to a second."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.005)
    pytest.fail("condition not reached within 1 s")


async def read_chunks(resp: aiohttp.ClientResponse) -> AsyncGenerator[tuple[bytes, float], None]:
    """Whole HTTP chunks of the body, each with the loop time its last byte arrived."""
    loop = asyncio.get_running_loop()
    pending = b""
    async for data, end_of_chunk in resp.content.iter_chunks():
        pending += data
        if end_of_chunk and pending:
            yield pending, loop.time()
            pending = b""


async def test_ok_answers_json_and_records_the_request() -> None:
    async with FaultyUpstream() as up, aiohttp.ClientSession() as s:
        assert up.base_url == f"http://127.0.0.1:{up.port}/v1" and up.root_url + "/v1" == up.base_url
        async with s.post(f"{up.base_url}/chat/completions?a=1", json=CHAT, headers={"X-Key": "k"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            body = await resp.json()
        assert body["object"] == "chat.completion"
        assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        [seen] = up.requests
        assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", "a=1")
        assert seen.headers["x-key"] == "k" and seen.json == CHAT and json.loads(seen.body) == CHAT


async def test_ok_with_custom_body_status_headers_and_delay() -> None:
    loop = asyncio.get_running_loop()
    async with FaultyUpstream() as up, aiohttp.ClientSession() as s:
        up.script(Behaviour.ok({"x": 1}, status=201, headers={"X-Up": "yes"}, delay_s=0.15))
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            elapsed = loop.time() - up.requests[0].at
            assert (resp.status, resp.headers["X-Up"], await resp.json()) == (201, "yes", {"x": 1})
        assert 0.149 <= elapsed < 1.5


async def test_client_leaving_during_a_delay_is_noticed_at_once() -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.05)
    async with FaultyUpstream(Behaviour.ok(delay_s=30)) as up, aiohttp.ClientSession(timeout=timeout) as s:
        with pytest.raises(asyncio.TimeoutError):
            await s.post(f"{up.base_url}/chat/completions", json=CHAT)
        await up.wait_disconnects(1, timeout=0.5)


async def test_wait_disconnects_times_out_with_a_message() -> None:
    async with FaultyUpstream() as up:
        with pytest.raises(TimeoutError, match=r"expected 1 client disconnects within 0\.05s, saw 0"):
            await up.wait_disconnects(1, timeout=0.05)


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with FaultyUpstream() as up, aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
                assert resp.status == 200
                await resp.read()
        assert (up.connections_open, up.connections_total, len(up.requests)) == (1, 1, 2)
        up.script(Behaviour.stream())
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert (await resp.read()).endswith(b"data: [DONE]\n\n")
        assert (up.connections_total, len(up.requests)) == (1, 3)  # a finished stream keeps the connection
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT, headers={"Connection": "close"}) as resp:
            assert resp.headers["Connection"] == "close"
            await resp.read()
        await wait_until(lambda: up.connections_open == 0)
        assert up.connections_total == 1


async def test_pipelined_request_survives_the_wait_for_a_disconnect() -> None:
    """Watching for the client to leave reads the socket; a request sent meanwhile must still be served."""
    request = b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    async with FaultyUpstream() as up:
        up.script(Behaviour.ok({"n": 1}, delay_s=0.05), Behaviour.ok({"n": 2}))
        reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
        writer.write(request + request.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n"))
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b'{"n":2}')
    assert b'{"n":1}HTTP/1.1 200 OK' in answer and len(up.requests) == 2


async def test_malformed_request_gets_400() -> None:
    async with FaultyUpstream() as up:
        reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
        writer.write(b"NONSENSE\r\n\r\n")
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in answer
    assert up.requests == []


async def test_chunked_request_body_is_read() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": '
        yield b'"m"}'

    async with FaultyUpstream() as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", data=body()) as resp:
            assert resp.status == 200
        [seen] = up.requests
        assert seen.headers["transfer-encoding"] == "chunked" and seen.json == {"model": "m"}


async def test_stream_sends_each_event_as_its_own_chunk_with_gaps() -> None:
    async with FaultyUpstream(Behaviour.stream(gap_s=0.05)) as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", json={**CHAT, "stream": True}) as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["Transfer-Encoding"] == "chunked"
            got = [chunk async for chunk in read_chunks(resp)]
    assert [data for data, _ in got] == default_events()
    # Event i cannot arrive before i gaps after the request was read: lower bounds hold even on a loaded machine,
    # where the client may read late and see two arrivals close together.
    since_request = [at - up.requests[0].at for _, at in got]
    assert all(t >= 0.05 * i - 0.001 for i, t in enumerate(since_request)), since_request
    assert since_request[-1] < 1.5
    usage = json.loads(got[3][0].removeprefix(b"data: "))
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 3


async def test_reset_after_breaks_the_body_mid_stream() -> None:
    events = [content_chunk("a"), content_chunk("b"), usage_chunk()]
    async with FaultyUpstream(Behaviour.stream(events, reset_after=2)) as up, aiohttp.ClientSession() as s:
        got: list[bytes] = []
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
                async for data, _ in read_chunks(resp):
                    got.append(data)
        assert got == events[:2]
        assert up.disconnects == 0  # the server broke it, not the client


async def test_reset_is_a_tcp_reset_not_a_close() -> None:
    async with FaultyUpstream(Behaviour.stream(reset_after=1)) as up:
        reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        received = b""
        with pytest.raises(ConnectionResetError):
            while data := await reader.read(65536):
                received += data
        writer.close()
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()
        assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(
            b"\r\n" + default_events()[0] + b"\r\n"
        )


async def test_stall_after_is_left_by_the_client_on_read_timeout() -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.15)
    async with FaultyUpstream(Behaviour.stream(stall_after=1)) as up, aiohttp.ClientSession(timeout=timeout) as s:
        got: list[bytes] = []
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            with pytest.raises(asyncio.TimeoutError):
                async for data, _ in read_chunks(resp):
                    got.append(data)
        assert got == default_events()[:1]
        await up.wait_disconnects(1, timeout=1)
        assert up.connections_open == 0


async def test_stall_after_is_left_when_the_client_closes() -> None:
    async with FaultyUpstream(Behaviour.stream(stall_after=2)) as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            chunks = read_chunks(resp)
            assert [await anext(chunks), await anext(chunks)][1][0] == default_events()[1]
            resp.close()
            await chunks.aclose()
        await up.wait_disconnects(1, timeout=1)


async def test_hang_before_headers_trips_the_client_timeout() -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.15)
    async with FaultyUpstream(Behaviour.hang_before_headers()) as up, aiohttp.ClientSession(timeout=timeout) as s:
        with pytest.raises(asyncio.TimeoutError):
            await s.post(f"{up.base_url}/chat/completions", json=CHAT)
        assert len(up.requests) == 1
        await up.wait_disconnects(1, timeout=1)


async def test_close_without_answer_is_a_server_disconnect() -> None:
    async with FaultyUpstream(Behaviour.close_without_answer()) as up, aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await s.post(f"{up.base_url}/chat/completions", json=CHAT)
        assert len(up.requests) == 1 and up.disconnects == 0


async def test_drip_delivers_the_body_slowly() -> None:
    loop = asyncio.get_running_loop()
    size = len(json.dumps(completion(), separators=(",", ":"))) + 4
    async with FaultyUpstream(Behaviour.drip(size, every_s=0.05)) as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert resp.content_length == size
            raw = await resp.read()
            elapsed = loop.time() - up.requests[0].at
    assert len(raw) == size and raw.startswith(b"    {") and json.loads(raw) == completion()
    assert 0.249 <= elapsed < 1.5, elapsed  # four pieces of padding, then the document: five 50 ms waits


async def test_drip_left_by_the_client_is_counted() -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.1)
    async with FaultyUpstream(Behaviour.drip(400, every_s=0.3)) as up, aiohttp.ClientSession(timeout=timeout) as s:
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            with pytest.raises(asyncio.TimeoutError):
                await resp.read()
        await up.wait_disconnects(1, timeout=1)


async def test_endless_body_aborted_by_the_client_is_counted() -> None:
    async with FaultyUpstream(Behaviour.endless()) as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            received = 0
            async for data in resp.content.iter_any():
                received += len(data)
                if received > 1 << 20:
                    break
            resp.close()
        await up.wait_disconnects(1, timeout=1)
        assert up.disconnects == 1 and up.connections_open == 0


@pytest.mark.parametrize("retry_after", ["1", "Wed, 21 Oct 2015 07:28:00 GMT", None])
async def test_rate_limited_carries_retry_after(retry_after: str | None) -> None:
    async with FaultyUpstream(Behaviour.rate_limited(retry_after)) as up, aiohttp.ClientSession() as s:
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert resp.status == 429 and resp.headers.get("Retry-After") == retry_after
            body = await resp.json()
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["message"]


async def test_error_bodies() -> None:
    async with FaultyUpstream() as up, aiohttp.ClientSession() as s:
        up.script(Behaviour.error(503), Behaviour.error(502, b"<html>bad gateway</html>", headers={"X-E": "1"}))
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert resp.status == 503 and resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["error"]["type"] == "server_error"
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert (resp.status, resp.headers["X-E"], await resp.read()) == (502, "1", b"<html>bad gateway</html>")


async def test_refused_url_refuses() -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectorError):
            await s.post(f"{FaultyUpstream.refused_url()}/chat/completions", json=CHAT)


async def test_script_runs_in_order_then_default_and_always_replaces_both() -> None:
    async with FaultyUpstream(Behaviour.ok({"d": 1})) as up, aiohttp.ClientSession() as s:
        up.script(Behaviour.error(500), Behaviour.rate_limited())
        up.script(Behaviour.ok({"third": 1}))
        statuses = []
        for _ in range(5):
            async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
                statuses.append((resp.status, await resp.json()))
        assert [st for st, _ in statuses] == [500, 429, 200, 200, 200]
        assert [b for _, b in statuses[2:]] == [{"third": 1}, {"d": 1}, {"d": 1}]
        up.script(Behaviour.error(500))
        up.always(Behaviour.error(418))
        async with s.post(f"{up.base_url}/chat/completions", json=CHAT) as resp:
            assert resp.status == 418


async def test_exit_drops_open_connections_without_leaks() -> None:
    async with aiohttp.ClientSession() as s:
        async with FaultyUpstream(Behaviour.hang_before_headers()) as up:
            pending = asyncio.create_task(s.post(f"{up.base_url}/chat/completions", json=CHAT))
            await wait_until(lambda: up.requests)
            assert up.connections_open == 1
        assert up.connections_open == 0
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await pending
    gc.collect()  # an unclosed transport would surface here as a ResourceWarning, which fails the test
