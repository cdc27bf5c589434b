"""The gateway against misbehaving upstreams over real sockets (tests/support/faulty.py): each fault with
the result the client sees and the log row it leaves. Retries, fallbacks, the circuit breaker, the
concurrency cap and the four timeouts are proven here."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.migrate import upgrade
from llm_console.db.models import Deployment, ModelAlias
from llm_console.gateway import GatewayRuntime, create_gateway
from llm_console.services.deployments import add_deployment
from llm_console.services.keys import create_key

from ..support.faulty import Behaviour, FaultyUpstream, completion, content_chunk, error_body, usage_chunk
from .fakes import StoredRows, StreamingASGITransport, make_settings

CANARY = "sk-canary-7Hq2ZpX9wLm4Rt8Vb3Nc"
MESSAGES = [{"role": "user", "content": "Hello"}]


@dataclass
class Rig(StoredRows):
    rt: GatewayRuntime
    client: httpx.AsyncClient
    auth: dict[str, str]
    deployments: dict[str, int]

    async def chat(self, model: str = "a", **extra: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/chat/completions", json={"model": model, "messages": MESSAGES, **extra}, headers=self.auth
        )

    async def set_alias(self, alias: str, *, strategy: str | None = None, **policy: Any) -> None:
        with session(self.rt.engine) as s:
            row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).one()
            row.settings = {**row.settings, **policy}
            if strategy:
                row.strategy = strategy
            s.add(row)
            s.commit()
        await self.rt.reload_routes()

    async def set_deployment(self, name: str, **fields: Any) -> None:
        with session(self.rt.engine) as s:
            dep = s.get(Deployment, self.deployments[name])
            assert dep is not None
            for k, v in fields.items():
                setattr(dep, k, v)
            s.add(dep)
            s.commit()
        await self.rt.reload_routes()


RigFactory = Callable[..., contextlib.AbstractAsyncContextManager[Rig]]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RigFactory:
    """`rig({"a": [up1, up2], "b": [up3]}, **settings)`: aliases routed to FaultyUpstreams, gateway started."""
    for name in [n for n in os.environ if n.startswith("LLMC_")]:
        monkeypatch.delenv(name)

    @contextlib.asynccontextmanager
    async def factory(aliases: dict[str, list[FaultyUpstream]], **overrides: Any) -> AsyncIterator[Rig]:
        defaults: dict[str, Any] = {
            "log_flush_interval_s": 0.02,
            "upstream_allowlist": ["127.0.0.1/32"],
            "retry_backoff_ms": 1.0,
            "health_check_interval_s": 0,
        }
        settings = make_settings(tmp_path, **{**defaults, **overrides})
        upgrade(settings.database_url)
        rt = GatewayRuntime(settings)
        deployments: dict[str, int] = {}
        try:
            for alias, ups in aliases.items():
                for i, up in enumerate(ups):
                    dep = add_deployment(
                        rt.engine,
                        rt.box,
                        alias=alias,
                        base_url=up.base_url,
                        model=f"{alias}-model-{i}",
                        api_key=CANARY,
                        actor="test",
                        extra_allowlist=settings.upstream_allowlist,
                    )
                    assert dep.id is not None
                    deployments[f"{alias}{i}"] = dep.id
            key = create_key(rt.engine, name="t", actor="test")
            app = create_gateway(runtime=rt)
            async with rt.lifespan():
                async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://gw") as client:
                    yield Rig(rt, client, {"authorization": f"Bearer {key.secret}"}, deployments)
        finally:
            rt.engine.dispose()

    return factory


def sse_events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e.strip()]


# -- retries ------------------------------------------------------------------------------------------------


async def test_a_5xx_is_retried_and_the_retry_answers(rig: RigFactory) -> None:
    async with FaultyUpstream() as up, rig({"a": [up]}) as r:
        up.script(Behaviour.error(503))
        resp = await r.chat()
        assert resp.status_code == 200, resp.text
        assert len(up.requests) == 2
        row = await r.row()
        assert (row.status, row.attempts, row.prompt_tokens) == ("ok", 2, 7)
        upstream_spans = [s for s in r.spans(row.id) if s.name == "upstream"]
        assert [s.status for s in upstream_spans] == ["error", "ok"]
        assert upstream_spans[0].attributes["status_code"] == 503


async def test_retries_run_out_and_the_last_upstream_error_is_passed_on(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(500)) as up, rig({"a": [up]}, retry_attempts=2) as r:
        resp = await r.chat()
        assert resp.status_code == 500
        assert resp.json() == error_body(500)
        assert len(up.requests) == 3
        row = await r.row()
        assert (row.status, row.status_code, row.error_type, row.attempts) == ("error", 500, "upstream_error", 3)


async def test_a_4xx_is_not_retried(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(400)) as up, rig({"a": [up]}) as r:
        resp = await r.chat()
        assert resp.status_code == 400
        assert len(up.requests) == 1


async def test_429_retry_after_seconds_within_the_cap_is_waited_for(rig: RigFactory) -> None:
    async with FaultyUpstream() as up, rig({"a": [up]}, retry_after_cap_s=5) as r:
        up.script(Behaviour.rate_limited("1"))
        started = time.monotonic()
        resp = await r.chat()
        assert resp.status_code == 200
        assert len(up.requests) == 2
        assert up.requests[1].at - up.requests[0].at >= 0.95  # Retry-After: 1 was honoured
        assert time.monotonic() - started < 4


async def test_429_retry_after_date_beyond_the_cap_is_passed_on_without_waiting(rig: RigFactory) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    async with FaultyUpstream(Behaviour.rate_limited(when)) as up, rig({"a": [up]}, retry_after_cap_s=2) as r:
        started = time.monotonic()
        resp = await r.chat()
        assert time.monotonic() - started < 1.5
        assert resp.status_code == 429
        assert 25 <= int(resp.headers["retry-after"]) <= 31
        assert resp.json() == error_body(429, "Rate limit reached, retry later")  # passed on as sent
        assert len(up.requests) == 1  # that deployment asked for longer than the cap: not retried
        row = await r.row()
        assert (row.status_code, row.error_type) == (429, "upstream_error")


async def test_a_retry_moves_to_another_deployment_first(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(502)) as bad, FaultyUpstream() as good:
        async with rig({"a": [bad, good]}, retry_attempts=1, circuit_failure_threshold=100) as r:
            results = [await r.chat() for _ in range(12)]
            assert all(x.status_code == 200 for x in results)
            assert len(good.requests) == 12
            assert len(bad.requests) < 12  # some first picks went to the bad one and moved on at once
            for row in await r.rows():
                assert row.deployment_id == r.deployments["a1"]


async def test_connect_refused_is_a_502_after_the_retries(rig: RigFactory) -> None:
    async with FaultyUpstream() as up:
        pass  # closed at once: nothing listens on its port any more
    refused = FaultyUpstream()
    refused.port = up.port
    async with rig({"a": [refused]}, retry_attempts=1) as r:
        resp = await r.chat()
        assert resp.status_code == 502
        assert resp.json()["error"]["code"] == "upstream_unavailable"
        row = await r.row()
        assert (row.status, row.error_type, row.attempts) == ("error", "upstream_unavailable", 2)


# -- timeouts -----------------------------------------------------------------------------------------------


async def test_first_byte_timeout_is_a_504(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.hang_before_headers()) as up:
        async with rig({"a": [up]}, upstream_first_byte_timeout_s=0.3, retry_attempts=0) as r:
            started = time.monotonic()
            resp = await r.chat()
            assert 0.25 < time.monotonic() - started < 2
            assert resp.status_code == 504
            assert resp.json()["error"]["code"] == "upstream_timeout"
            assert (await r.row()).error_type == "upstream_timeout"
            await up.wait_disconnects(1)  # the abandoned call was closed, not left hanging


async def test_the_total_timeout_bounds_the_whole_call_retries_included(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.hang_before_headers()) as up:
        async with rig({"a": [up]}, upstream_timeout_s=0.5, retry_attempts=5) as r:
            started = time.monotonic()
            resp = await r.chat()
            assert time.monotonic() - started < 1.5
            assert resp.status_code == 504
            assert len(up.requests) == 1


async def test_a_slow_drip_within_the_idle_timeout_is_read_whole(rig: RigFactory) -> None:
    drip = Behaviour.drip(251 + 8 * 4, every_s=0.05, piece=b"    ")  # 8 pieces of padding, then the JSON
    async with FaultyUpstream(drip) as up, rig({"a": [up]}, upstream_idle_timeout_s=0.5) as r:
        started = time.monotonic()
        resp = await r.chat()
        assert resp.status_code == 200
        assert time.monotonic() - started >= 0.35
        assert resp.json()["usage"]["prompt_tokens"] == 7
        assert len(up.requests) == 1


async def test_a_drip_slower_than_the_idle_timeout_is_a_504(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.drip(251 + 10, every_s=0.5)) as up:
        async with rig({"a": [up]}, upstream_idle_timeout_s=0.1, retry_attempts=0) as r:
            resp = await r.chat()
            assert resp.status_code == 504
            assert (await r.row()).error_type == "upstream_timeout"


async def test_an_endless_body_is_cut_at_the_response_cap(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.endless()) as up:
        async with rig({"a": [up]}, upstream_max_response_bytes=256 * 1024, retry_attempts=0) as r:
            resp = await r.chat()
            assert resp.status_code == 502
            assert resp.json()["error"]["code"] == "upstream_response_too_large"
            await up.wait_disconnects(1)


# -- streams ------------------------------------------------------------------------------------------------


async def test_a_reset_mid_stream_ends_with_an_error_event_and_an_incomplete_row(rig: RigFactory) -> None:
    events = [content_chunk("A"), content_chunk("B"), content_chunk("C"), usage_chunk(5, 3), b"data: [DONE]\n\n"]
    async with FaultyUpstream(Behaviour.stream(events, reset_after=2)) as up, rig({"a": [up]}) as r:
        resp = await r.chat(stream=True)
        assert resp.status_code == 200
        got = sse_events(resp.content)
        assert got[:2] == [content_chunk("A").strip(), content_chunk("B").strip()]
        final = orjson.loads(got[-1].removeprefix(b"data: "))
        assert final["error"]["code"] == "upstream_disconnected"
        assert len(up.requests) == 1  # bytes had reached the client: never retried
        row = await r.row()
        assert (row.status, row.error_type, row.stream) == ("incomplete", "upstream_disconnected", True)
        assert row.completion_tokens == 2  # estimated from the chunks seen


async def test_a_stream_broken_before_its_first_chunk_is_retried(rig: RigFactory) -> None:
    async with FaultyUpstream() as up, rig({"a": [up]}) as r:
        up.script(Behaviour.stream(reset_after=0), Behaviour.stream())
        resp = await r.chat(stream=True)
        assert resp.status_code == 200
        assert sse_events(resp.content)[-1] == b"data: [DONE]"
        assert len(up.requests) == 2
        row = await r.row()
        assert (row.status, row.attempts, row.completion_tokens) == ("ok", 2, 3)


async def test_a_stalled_stream_hits_the_idle_timeout(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.stream(stall_after=2)) as up:
        async with rig({"a": [up]}, upstream_idle_timeout_s=0.3) as r:
            started = time.monotonic()
            resp = await r.chat(stream=True)
            assert time.monotonic() - started < 3  # the idle limit, not the first-byte one, ended it
            final = orjson.loads(sse_events(resp.content)[-1].removeprefix(b"data: "))
            assert final["error"]["code"] == "upstream_timeout"
            row = await r.row()
            assert (row.status, row.error_type) == ("incomplete", "upstream_timeout")
            await up.wait_disconnects(1)


async def test_a_client_leaving_mid_stream_cancels_the_upstream_and_charges_what_was_seen(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.stream(stall_after=2)) as up, rig({"a": [up]}) as r:
        body = {"model": "a", "messages": MESSAGES, "stream": True}
        async with r.client.stream("POST", "/v1/chat/completions", json=body, headers=r.auth) as resp:
            seen = b""
            async for chunk in resp.aiter_raw():
                seen += chunk
                if seen.count(b"\n\n") >= 2:
                    break
        await up.wait_disconnects(1)  # the upstream saw the gateway hang up
        row = await r.row()
        assert (row.status, row.error_type) == ("incomplete", "client_disconnected")
        assert row.completion_tokens == 2
        assert row.prompt_tokens > 0


# -- fallbacks, circuit breaker, concurrency ----------------------------------------------------------------


async def test_an_alias_that_fails_falls_back_to_the_next(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(503)) as bad, FaultyUpstream() as good:
        async with rig({"a": [bad], "b": [good]}, retry_attempts=1) as r:
            await r.set_alias("a", fallbacks=["b"])
            resp = await r.chat("a")
            assert resp.status_code == 200
            assert (len(bad.requests), len(good.requests)) == (2, 1)
            assert good.requests[0].json["model"] == "b-model-0"
            row = await r.row()
            assert (row.alias, row.deployment_id, row.attempts) == ("a", r.deployments["b0"], 3)


async def test_the_circuit_opens_then_a_probe_closes_it(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(500)) as up:
        async with rig({"a": [up]}, retry_attempts=0, circuit_failure_threshold=2, circuit_cooldown_s=0.4) as r:
            assert (await r.chat()).status_code == 500
            assert (await r.chat()).status_code == 500
            blocked = await r.chat()
            assert blocked.status_code == 503
            assert blocked.json()["error"]["code"] == "no_healthy_deployment"
            assert int(blocked.headers["retry-after"]) >= 1
            assert len(up.requests) == 2  # refused without calling the upstream
            await asyncio.sleep(0.45)
            up.always(Behaviour.ok())
            assert (await r.chat()).status_code == 200  # the half-open probe
            assert r.rt.balancer.state(r.deployments["a0"]).circuit == "closed"
            metrics = (await r.client.get("/metrics")).text
            assert 'llmc_gateway_circuit_state{deployment="a-model-0@' in metrics


async def test_the_concurrency_cap_turns_extra_requests_away(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.stream(stall_after=1)) as up, rig({"a": [up]}) as r:
        await r.set_deployment("a0", max_concurrency=1)
        body = {"model": "a", "messages": MESSAGES, "stream": True}
        async with r.client.stream("POST", "/v1/chat/completions", json=body, headers=r.auth) as held:
            async for _ in held.aiter_raw():
                break  # the first request now holds the only slot
            extra = await r.chat()
            assert extra.status_code == 429
            assert extra.json()["error"]["code"] == "deployment_busy"
            assert extra.headers["retry-after"] == "1"
        await up.wait_disconnects(1)
        up.always(Behaviour.ok())
        assert (await r.chat()).status_code == 200  # the slot came back


async def test_health_checks_open_and_close_the_circuit(rig: RigFactory) -> None:
    async with FaultyUpstream(Behaviour.error(503)) as up, rig({"a": [up]}) as r:
        target = r.rt.routes.targets()[r.deployments["a0"]]
        assert await r.rt.check_health(target) is False
        assert up.requests[-1].path == "/v1/models" and up.requests[-1].method == "GET"
        assert (await r.chat()).status_code == 503  # circuit open: not called
        up.always(Behaviour.ok({"object": "list", "data": []}))
        assert await r.rt.check_health(target) is True
        up.always(Behaviour.ok(completion()))
        assert (await r.chat()).status_code == 200


# -- secrets ------------------------------------------------------------------------------------------------


async def test_a_canary_provider_key_is_found_nowhere(rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {CANARY}", "type": "auth", "code": CANARY}}
    caplog.set_level(logging.DEBUG)
    async with FaultyUpstream(Behaviour.error(401, echo)) as up, rig({"a": [up]}) as r:
        resp = await r.chat()
        assert resp.status_code == 401
        assert up.requests[0].headers["authorization"] == f"Bearer {CANARY}"  # sent upstream, nowhere else
        up.always(Behaviour.error(502, f"gateway says key={CANARY}".encode()))
        await r.chat()
        up.always(Behaviour.ok({**completion(), "echo": CANARY}))
        await r.chat()
        streamed = [content_chunk(CANARY), b"data: [DONE]\n\n"]
        up.always(Behaviour.stream(streamed))
        await r.chat(stream=True)
        metrics = (await r.client.get("/metrics")).text
        rows = await r.rows()
        spans = [s for row in rows for s in r.spans(row.id)]
    assert CANARY not in resp.text
    assert CANARY not in metrics
    for row in rows:
        assert CANARY not in orjson.dumps(row.model_dump(mode="json")).decode()
    assert all(CANARY not in orjson.dumps(s.attributes).decode() for s in spans)
    assert CANARY not in caplog.text
    with session(r.rt.engine) as s:
        from llm_console.db.models import Provider

        stored = [p.api_key_encrypted or "" for p in s.exec(select(Provider))]
    assert stored and all(CANARY not in value for value in stored)  # encrypted at rest
