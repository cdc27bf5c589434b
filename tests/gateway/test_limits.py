"""Limits through the gateway's HTTP API: 429 shape and headers, budgets under parallel load, changes
picked up from the database, and what happens while Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_console.db.engine import session
from llm_console.db.models import RateLimit, Team, User, VirtualKey
from llm_console.services.audit import record
from llm_console.services.budgets import set_budget
from llm_console.services.deployments import set_price
from llm_console.services.keys import revoke_key
from tests.conftest import free_port, in_ci

from .fakes import ALIAS, MESSAGES, UPSTREAM_MODEL, Gateway, GatewayFactory, completion


def set_limits(gw: Gateway, entity: str, entity_id: int, **limits: int) -> None:
    with session(gw.rt.engine) as s:
        row = s.get(RateLimit, (entity, entity_id)) or RateLimit(entity_type=entity, entity_id=entity_id)
        for name, value in limits.items():
            setattr(row, name, value)
        s.add(row)
        s.commit()
    gw.rt.keys.invalidate()


async def test_rpm_429_names_the_key_and_every_response_carries_openai_headers(gw: Gateway) -> None:
    set_limits(gw, "key", gw.key.id, rpm=2, tpm=100_000)
    ok = [await gw.chat() for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    assert ok[0].headers["x-ratelimit-limit-requests"] == "2"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["1", "0"]
    assert ok[0].headers["x-ratelimit-limit-tokens"] == "100000"
    assert ok[0].headers["x-ratelimit-reset-requests"].endswith("s")
    refused = await gw.chat()
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "requests"
    assert body["entity"] == "key" and body["entity_id"] == gw.key.id and body["limit"] == "rpm"
    assert f"key {gw.key.id}" in body["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(gw.upstream.requests) == 2  # the refused call never reached the upstream
    rows = {r.id: r for r in await gw.rows()}
    row = rows[refused.headers["x-request-id"]]
    assert (row.status_code, row.error_type) == (429, "rate_limit_exceeded")


async def test_streaming_and_anthropic_shapes(gw: Gateway) -> None:
    set_limits(gw, "key", gw.key.id, rpm=1)
    streamed = await gw.chat({"model": ALIAS, "messages": MESSAGES, "stream": True})
    assert streamed.status_code == 200 and streamed.headers["x-ratelimit-remaining-requests"] == "0"
    refused = await gw.client.post(
        "/v1/messages",
        headers=gw.auth,
        json={"model": ALIAS, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["entity"] == "key" and "retry-after" in refused.headers


async def test_user_and_team_limits_apply_through_the_key(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gw:
        with session(gw.rt.engine) as s:
            user, team = User(email="dev@example.com", role="member"), Team(name="search")
            s.add_all([user, team])
            s.flush()
            row = s.get(VirtualKey, gw.key.id)
            assert row is not None and user.id is not None and team.id is not None
            row.user_id, row.team_id = user.id, team.id
            s.add(row)
            s.commit()
            team_id = team.id
        set_limits(gw, "team", team_id, rpm=1)
        assert (await gw.chat()).status_code == 200
        refused = await gw.chat()
        assert refused.status_code == 429 and refused.json()["error"]["entity"] == "team"


async def test_the_global_default_applies_to_keys_without_their_own(gw: Gateway) -> None:
    set_limits(gw, "default", 0, rpm=1)
    assert (await gw.chat()).status_code == 200
    assert (await gw.chat()).status_code == 429
    set_limits(gw, "key", gw.key.id, rpm=5)  # the key's own row replaces the default
    assert (await gw.chat()).status_code == 200


async def test_parallel_requests_against_a_tiny_remaining_budget(gw: Gateway) -> None:
    # $1 per million tokens in and out; each call is estimated at about (body/4 + 100) tokens and uses 10.
    set_price(gw.rt.engine, model=UPSTREAM_MODEL, input_per_mtok=1.0, output_per_mtok=1.0, actor="test")
    await gw.rt.reload_routes()
    body = {"model": ALIAS, "messages": MESSAGES, "max_tokens": 100}
    set_budget(gw.rt.engine, "key", gw.key.id, daily_usd=0.0005, monthly_usd=None, actor="test")
    gw.rt.keys.invalidate()

    async def slow(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)  # every request is judged while the admitted ones are still in flight
        return httpx.Response(200, json=completion(prompt=7, completion_tokens=3))

    gw.upstream.handler = slow
    results = await asyncio.gather(*(gw.chat(body) for _ in range(40)))
    admitted = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert len(admitted) + len(refused) == 40 and refused
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    per_call_estimate = (len(httpx.Request("POST", "/", json=body).content) // 4 + 1 + 100) / 1e6
    assert len(admitted) * per_call_estimate <= 0.0005 + per_call_estimate  # budget plus one reservation
    assert len(admitted) >= 0.0005 // per_call_estimate  # and the budget was usable up to there
    spent = sum(r.cost_usd for r in await gw.rows())
    assert spent == pytest.approx(len(admitted) * 10 / 1e6)  # charged from real usage


async def test_a_limit_or_revocation_made_elsewhere_applies_within_one_refresh(make_gateway: GatewayFactory) -> None:
    async with make_gateway(key_cache_ttl_s=3600, route_refresh_interval_s=0.2) as gw:
        assert (await gw.chat()).status_code == 200  # the key is cached for an hour
        with session(gw.rt.engine) as s:  # another replica's console writes the limit, with its audit event
            s.add(RateLimit(entity_type="key", entity_id=gw.key.id, rpm=1))
            record(s, actor="other", action="limits.set", target_type="rate_limit", target_id=f"key:{gw.key.id}")
            s.commit()
        await asyncio.sleep(0.6)
        assert (await gw.chat()).status_code == 200  # the new limit's first request
        assert (await gw.chat()).status_code == 429
        revoke_key(gw.rt.engine, gw.key.id, actor="other")
        await asyncio.sleep(0.6)
        assert (await gw.chat()).status_code == 401


@contextlib.contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so it can be stopped mid-test."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            import time

            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def redis_server_binary() -> None:
    import shutil

    if shutil.which("redis-server") is None:
        if in_ci():
            pytest.fail("redis-server is needed under CI=true")
        pytest.skip("redis-server is not installed")


@pytest.mark.parametrize("policy", ["local", "open", "closed"])
async def test_redis_stopped_mid_test_the_policy_holds(
    make_gateway: GatewayFactory, tmp_path: Path, policy: str, redis_server_binary: None
) -> None:
    with private_redis(tmp_path) as (url, proc):
        async with make_gateway(redis_url=url, limits_backend="redis", limits_redis_failure=policy) as gw:
            set_limits(gw, "key", gw.key.id, rpm=2)
            first = await gw.chat()
            assert first.status_code == 200 and first.headers["x-ratelimit-remaining-requests"] == "1"
            proc.kill()
            proc.wait()
            answers = [await gw.chat() for _ in range(4)]
            codes = [r.status_code for r in answers]
            if policy == "local":  # this replica's own counters take over: the limit still holds
                assert codes == [200, 200, 429, 429]
            elif policy == "open":  # admitted without limits, and without limit headers
                assert codes == [200] * 4 and "x-ratelimit-limit-requests" not in answers[0].headers
            else:
                assert codes == [503] * 4
                assert answers[0].json()["error"]["code"] == "limits_unavailable"
            assert (await gw.client.get("/gateway/health")).status_code == 200  # nothing crashed
            metrics = (await gw.client.get("/metrics")).text
            assert 'llmc_limits_store_up{store="redis"} 0.0' in metrics  # operators see the policy apply


async def test_a_key_holder_reads_its_limits_and_budget_status(gw: Gateway) -> None:
    assert (await gw.client.get("/v1/limits")).status_code == 401
    empty = (await gw.client.get("/v1/limits", headers=gw.auth)).json()
    assert empty == {"object": "limits", "timezone": "UTC", "budget_status": None, "data": []}
    set_price(gw.rt.engine, model=UPSTREAM_MODEL, input_per_mtok=1e5, output_per_mtok=1e5, actor="test")
    await gw.rt.reload_routes()
    set_limits(gw, "key", gw.key.id, rpm=5, tpd=10_000)
    set_budget(gw.rt.engine, "key", gw.key.id, daily_usd=1.2, monthly_usd=None, actor="test")
    gw.rt.keys.invalidate()
    for _ in range(2):  # 7 + 3 tokens each at $0.1 per thousand: $1.00 per call
        assert (await gw.chat()).status_code == 200
    await gw.rows()  # settled and logged
    report = (await gw.client.get("/v1/limits", headers=gw.auth)).json()
    (key,) = report["data"]
    assert (key["entity"], key["id"], key["from_default"]) == ("key", gw.key.id, False)
    assert key["limits"]["rpm"] == {"limit": 5, "used": 2, "remaining": 3, "period": "minute", "resets_in_s": None}
    assert key["limits"]["tpd"]["used"] == 20 and key["limits"]["tpd"]["period"] == "day"
    daily = key["limits"]["daily_usd"]
    assert daily["used"] == pytest.approx(2.0) and daily["remaining"] == 0.0 and daily["status"] == "exceeded"
    assert report["budget_status"] == key["budget_status"] == "exceeded"
