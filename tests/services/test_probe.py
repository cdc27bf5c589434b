"""Test connection: judged answers, recorded health and discovered metadata, the SSRF guard, no key leaks;
against scripted answers (httpx.MockTransport) and the real simulator."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import Deployment, DeploymentHealth, Provider
from llm_console.gateway.ssrf import AllowList, SSRFError
from llm_console.services.deployment_admin import DeploymentFields, create_deployment, get_deployment
from llm_console.services.deployments import ConfigError
from llm_console.services.probe import GuardedTransport, ProbeResult, assess, probe_all, probe_deployment
from llm_console.services.providers import create_provider
from tests.conftest import cli_env, free_port, spawn, stop, wait_http

from .conftest import everything_stored

KEY = "sk-probe-canary-0a1b2c3d4e5f6a7b8c9d"
VLLM_LIST = {
    "object": "list",
    "data": [
        {
            "id": "llama",
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": "meta/llama",
            "parent": None,
            "max_model_len": 8192,
            "permission": [{"id": "perm"}],
        },
        {"id": "qwen", "object": "model", "owned_by": "vllm"},
    ],
}


def _deployment(engine: Engine, box: SecretBox, kind: str = "openai", model: str = "llama", **kw: str) -> int:
    provider = create_provider(
        engine,
        box,
        name=f"p-{kind}-{model}",
        kind=kind,
        base_url="http://8.8.8.8:8000/v1",
        api_key=KEY,
        actor="op",
        **kw,
    )
    return create_deployment(engine, provider.id, DeploymentFields(model=model, alias="chat"), actor="op").id


def _mock(answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.MockTransport(handler)


def _health(engine: Engine, dep_id: int) -> DeploymentHealth:
    with session(engine) as s:
        row = s.get(DeploymentHealth, dep_id)
        assert row is not None
        return row


async def test_a_listed_model_is_available_and_its_metadata_is_kept(engine: Engine, box: SecretBox) -> None:
    dep_id, seen = _deployment(engine, box), []
    result = await probe_deployment(
        engine, box, dep_id, transport=_mock(lambda r: httpx.Response(200, json=VLLM_LIST), seen)
    )
    assert result.status == "available" and result.error is None and result.models == ["llama", "qwen"]
    assert result.latency_ms is not None and result.latency_ms >= 0
    [request] = seen
    assert str(request.url) == "http://8.8.8.8:8000/v1/models" and request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    row = _health(engine, dep_id)
    assert (row.status, row.models, row.last_error) == ("available", ["llama", "qwen"], None)
    assert row.checked_at is not None and row.latency_ms == result.latency_ms
    discovered = get_deployment(engine, dep_id).discovered
    assert discovered == {
        "created": 1700000000,
        "owned_by": "vllm",
        "root": "meta/llama",
        "parent": None,
        "max_model_len": 8192,
    }


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (200, {"data": [{"id": "qwen"}]}, "loading", "model 'llama' is not listed (yet); the server lists: qwen"),
        (200, {"data": []}, "loading", "the server lists no models yet"),
        (503, {"error": "Model is loading"}, "loading", "HTTP 503: the server is starting or loading the model"),
        (500, {"error": {"message": "still loading weights"}}, "loading", "still loading weights"),
        (500, {"error": {"message": "CUDA out of memory"}}, "error", "HTTP 500 (CUDA out of memory)"),
        (404, {"detail": "Not Found"}, "error", "no model list at this address; check the base URL"),
        (200, "<html>hello</html>", "error", "the answer is not a model list"),
        (302, "", "error", "redirects are not followed"),
    ],
)
async def test_answers_are_judged(
    engine: Engine, box: SecretBox, status: int, body: object, expected: str, message: str
) -> None:
    dep_id, seen = _deployment(engine, box), []

    def answer(_r: httpx.Request) -> httpx.Response:
        headers = {"location": "http://169.254.169.254/latest"} if status == 302 else {}
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    result = await probe_deployment(engine, box, dep_id, transport=_mock(answer, seen))
    assert result.status == expected and result.error is not None and message in result.error
    assert len(seen) == 1  # a redirect is never followed
    row = _health(engine, dep_id)
    assert row.status == expected and row.last_error == result.error and row.last_error_at is not None


async def test_a_refused_key_is_an_error_that_never_quotes_the_key(
    engine: Engine, box: SecretBox, db_path: Path
) -> None:
    dep_id = _deployment(engine, box)
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    result = await probe_deployment(engine, box, dep_id, transport=_mock(lambda r: httpx.Response(401, json=echo), []))
    assert result.status == "error" and result.error is not None and "refused the API key" in result.error
    assert KEY not in repr(result)
    other = await probe_deployment(engine, box, dep_id, transport=_mock(lambda r: httpx.Response(500, json=echo), []))
    assert other.error is not None and KEY not in other.error and "***" in other.error
    assert KEY.encode() not in everything_stored(engine, db_path)


async def test_the_last_error_outlives_a_later_success(engine: Engine, box: SecretBox) -> None:
    dep_id = _deployment(engine, box)
    await probe_deployment(engine, box, dep_id, transport=_mock(lambda r: httpx.Response(500, text="boom"), []))
    await probe_deployment(engine, box, dep_id, transport=_mock(lambda r: httpx.Response(200, json=VLLM_LIST), []))
    row = _health(engine, dep_id)
    assert row.status == "available" and row.last_error == "HTTP 500 (boom)"


async def test_network_failures_are_errors(engine: Engine, box: SecretBox) -> None:
    dep_id = _deployment(engine, box)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    result = await probe_deployment(engine, box, dep_id, transport=_mock(refuse, []))
    assert result == ProbeResult("error", None, [], "cannot reach http://8.8.8.8:8000/v1: connection refused")
    result = await probe_deployment(engine, box, dep_id, transport=_mock(slow, []), timeout_s=2)
    assert result.error == "no answer within 2 s"


async def test_each_provider_kind_asks_its_own_list(engine: Engine, box: SecretBox) -> None:
    seen: list[httpx.Request] = []
    claude = _deployment(engine, box, "anthropic", "claude-x", api_version="2023-06-01")
    answer = {"data": [{"type": "model", "id": "claude-x", "display_name": "Claude X", "created_at": "2025-01-01"}]}
    result = await probe_deployment(
        engine, box, claude, transport=_mock(lambda r: httpx.Response(200, json=answer), seen)
    )
    assert result.status == "available"
    assert seen[-1].headers["x-api-key"] == KEY and seen[-1].headers["anthropic-version"] == "2023-06-01"
    assert get_deployment(engine, claude).discovered == {
        "type": "model",
        "display_name": "Claude X",
        "created_at": "2025-01-01",
    }
    az = _deployment(engine, box, "azure", "my-gpt4o")
    base = {"data": [{"id": "gpt-4o-2024-08-06", "capabilities": {"chat_completion": True}}]}
    result = await probe_deployment(engine, box, az, transport=_mock(lambda r: httpx.Response(200, json=base), seen))
    assert result.status == "available"  # Azure lists base models, never deployment names
    assert str(seen[-1].url) == "http://8.8.8.8:8000/v1/openai/models?api-version=2024-10-21"
    assert seen[-1].headers["api-key"] == KEY


async def test_the_ssrf_guard_is_checked_before_connecting(engine: Engine, box: SecretBox) -> None:
    dep_id, seen = _deployment(engine, box), []
    with session(engine) as s:  # as if the URL had been stored before the guard (or the allow-list shrank)
        dep = s.get(Deployment, dep_id)
        assert dep is not None
        provider = s.get(Provider, dep.provider_id)
        assert provider is not None
        provider.api_base = "http://169.254.169.254/v1"
        s.add(provider)
        s.commit()
    result = await probe_deployment(engine, box, dep_id, transport=_mock(lambda r: httpx.Response(200), seen))
    assert seen == [] and result.status == "error"
    assert result.error is not None and "refused by the upstream guard" in result.error and "link-local" in result.error


async def test_the_guarded_transport_refuses_private_addresses_at_connect_time() -> None:
    async with httpx.AsyncClient(transport=GuardedTransport(AllowList())) as client:
        with pytest.raises(SSRFError, match="loopback"):
            await client.get("http://localhost:9/v1/models")
        with pytest.raises(SSRFError, match="loopback"):
            await client.get("http://127.0.0.1:9/v1/models")


async def test_an_unreadable_key_and_a_missing_deployment(engine: Engine, box: SecretBox) -> None:
    dep_id = _deployment(engine, box)
    with session(engine) as s:
        dep = s.get(Deployment, dep_id)
        assert dep is not None
        provider = s.get(Provider, dep.provider_id)
        assert provider is not None
        provider.api_key_encrypted = SecretBox("another-secret-key-0123456789abcdef").encrypt("k")
        s.add(provider)
        s.commit()
    result = await probe_deployment(engine, box, dep_id)
    assert (
        result.status == "error" and result.error is not None and "enter the provider's API key again" in result.error
    )
    with pytest.raises(ConfigError, match="no deployment with id 999"):
        await probe_deployment(engine, box, 999)


def test_assess_is_shared_with_the_gateway_health_loop() -> None:
    judged = assess("openai", "llama", 200, b'{"data": [{"id": "llama", "max_model_len": 4096}]}', latency_ms=3.0)
    assert judged.result == ProbeResult("available", 3.0, ["llama"], None)
    assert judged.entry == {"id": "llama", "max_model_len": 4096}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project's simulator on a free local port, requiring an API key."""
    tmp = tmp_path_factory.mktemp("sim")
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "llm_console.simulator", "--port", str(port), "--api-key", KEY, "--echo-key-in-errors"],
        cli_env(tmp),
        tmp / "simulator.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 30, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


async def test_the_real_simulator(engine: Engine, box: SecretBox, simulator: str) -> None:
    provider = create_provider(
        engine, box, name="sim", kind="openai", base_url=simulator, api_key=KEY, allow_private=True, actor="op"
    )
    live = create_deployment(engine, provider.id, DeploymentFields(model="llama-3.1-8b-instruct", alias="a"), actor="o")
    absent = create_deployment(engine, provider.id, DeploymentFields(model="not-served", alias="b"), actor="op")
    results = await probe_all(engine, box)
    assert set(results) == {live.id, absent.id}
    assert results[live.id].status == "available" and "qwen2.5-7b-instruct" in results[live.id].models
    assert results[live.id].latency_ms is not None and results[live.id].latency_ms < 5000
    assert results[absent.id].status == "loading"
    assert get_deployment(engine, live.id).discovered["max_model_len"] > 0
    wrong = create_provider(engine, box, name="wrong", kind="openai", base_url=simulator, api_key="sk-wrong", actor="o")
    bad = create_deployment(engine, wrong.id, DeploymentFields(model="llama-3.1-8b-instruct"), actor="op")
    result = await probe_deployment(engine, box, bad.id)
    assert result.status == "error" and result.error is not None and "refused the API key" in result.error
    assert "sk-wrong" not in result.error


async def test_a_closed_port_is_a_readable_error(engine: Engine, box: SecretBox) -> None:
    provider = create_provider(
        engine,
        box,
        name="down",
        kind="openai",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        allow_private=True,
        actor="op",
    )
    dep = create_deployment(engine, provider.id, DeploymentFields(model="m"), actor="op")
    result = await probe_deployment(engine, box, dep.id, timeout_s=3)
    assert result.status == "error" and result.error is not None and result.error.startswith("cannot reach")
