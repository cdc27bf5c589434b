"""With an API key configured every model route demands it, and a rejected key is answered in the route's dialect."""

from __future__ import annotations

import anthropic
import openai
import pytest
from starlette.datastructures import Headers
from starlette.routing import Route

from llm_console.simulator import SimulatorConfig, create_app
from llm_console.simulator.__main__ import build_config, build_parser
from llm_console.simulator.auth import presented_keys
from tests.simulator.conftest import StartSim, asgi_client

KEY = "sk-sim-correct-horse"
WRONG = "sk-live-Wr0ng-K3y/with+chars"
MODEL = "llama-3.1-8b-instruct"
GREETING = [{"role": "user", "content": "Hello there, simulator!"}]
OPEN_PATHS = {"/health", "/metrics"}


def guarded_routes() -> list[tuple[str, str]]:
    """Every (method, concrete path) the app serves that must demand the key."""
    found = []
    for route in create_app(SimulatorConfig.fast()).routes:
        assert isinstance(route, Route)
        if route.path in OPEN_PATHS:
            continue
        method = "POST" if "POST" in (route.methods or set()) else "GET"
        found.append((method, route.path.replace("{deployment}", MODEL) + "?api-version=2024-10-21"))
    return found


@pytest.mark.parametrize(("method", "path"), guarded_routes())
async def test_every_model_route_demands_the_key(method: str, path: str) -> None:
    async with asgi_client(SimulatorConfig.fast(api_key=KEY)) as c:
        missing = await c.request(method, path, json={})
        wrong = await c.request(method, path, json={}, headers={"authorization": f"Bearer {WRONG}"})
        right = await c.request(method, path, json={}, headers={"authorization": f"Bearer {KEY}"})
    assert missing.status_code == wrong.status_code == 401
    assert KEY not in missing.text + wrong.text and WRONG not in wrong.text
    assert right.status_code != 401


async def test_health_and_metrics_stay_open() -> None:
    async with asgi_client(SimulatorConfig.fast(api_key=KEY)) as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
async def test_any_provider_header_carries_the_key(header: str) -> None:
    value = f"Bearer {KEY}" if header == "authorization" else KEY
    async with asgi_client(SimulatorConfig.fast(api_key=KEY)) as c:
        response = await c.get("/v1/models", headers={header: value})
    assert response.status_code == 200


@pytest.mark.parametrize("echo", [False, True])
async def test_openai_sdk_key_check(start_sim: StartSim, echo: bool) -> None:
    server = await start_sim(api_key=KEY, echo_key_in_errors=echo)
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as good:
        reply = await good.chat.completions.create(model=MODEL, messages=GREETING, max_tokens=2)
        assert reply.usage is not None and reply.usage.completion_tokens == 2
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=WRONG, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as rejected:
            await bad.responses.create(model=MODEL, input="hi")
    error = rejected.value.body
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    if echo:
        assert error["message"] == f"Incorrect API key provided: {WRONG}"
    else:
        assert WRONG not in error["message"]


@pytest.mark.parametrize("echo", [False, True])
async def test_anthropic_sdk_key_check(start_sim: StartSim, echo: bool) -> None:
    server = await start_sim(api_key=KEY, echo_key_in_errors=echo)
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY, max_retries=0) as good:
        reply = await good.messages.create(model=MODEL, max_tokens=2, messages=GREETING)
        assert reply.usage.output_tokens == 2
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key=WRONG, max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as rejected:
            await bad.messages.create(model=MODEL, max_tokens=2, messages=GREETING)
    message = f"Incorrect API key provided: {WRONG}" if echo else "invalid x-api-key"
    assert rejected.value.body == {"type": "error", "error": {"type": "authentication_error", "message": message}}


@pytest.mark.parametrize("echo", [False, True])
async def test_azure_sdk_key_check(start_sim: StartSim, echo: bool) -> None:
    server = await start_sim(api_key=KEY, echo_key_in_errors=echo)

    def azure(key: str) -> openai.AsyncAzureOpenAI:
        return openai.AsyncAzureOpenAI(azure_endpoint=server.url, api_key=key, api_version="2024-10-21", max_retries=0)

    async with azure(KEY) as good:
        stream = await good.chat.completions.create(model=MODEL, messages=GREETING, max_tokens=3, stream=True)
        assert sum([1 async for chunk in stream if chunk.choices and chunk.choices[0].delta.content]) == 3
    async with azure(WRONG) as bad:
        with pytest.raises(openai.AuthenticationError) as rejected:
            await bad.chat.completions.create(model=MODEL, messages=GREETING)
    error = rejected.value.body
    assert isinstance(error, dict) and set(error) == {"code", "message"} and error["code"] == "401"
    assert (error["message"] == f"Incorrect API key provided: {WRONG}") is echo
    assert (WRONG in error["message"]) is echo


async def test_missing_key_messages_per_dialect() -> None:
    async with asgi_client(SimulatorConfig.fast(api_key=KEY, echo_key_in_errors=True)) as c:
        openai_style = await c.post("/v1/chat/completions", json={})
        anthropic_style = await c.post("/v1/messages", json={})
        azure_style = await c.post(f"/openai/deployments/{MODEL}/embeddings?api-version=1", json={})
    assert "didn't provide an API key" in openai_style.json()["error"]["message"]
    assert anthropic_style.json()["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    assert azure_style.json()["error"]["message"].startswith("Access denied")


async def test_no_configured_key_accepts_anything() -> None:
    async with asgi_client(SimulatorConfig.fast()) as c:
        assert (await c.get("/v1/models", headers={"authorization": "Bearer whatever"})).status_code == 200
        assert (await c.get("/v1/models")).status_code == 200


def test_config_and_cli_flags() -> None:
    args = build_parser().parse_args(["--api-key", KEY, "--echo-key-in-errors", "--rerank-models", "r1, r2"])
    config = build_config(args)
    assert (config.api_key, config.echo_key_in_errors, config.rerank_models) == (KEY, True, ["r1", "r2"])
    defaults = build_config(build_parser().parse_args([]))
    assert (defaults.api_key, defaults.echo_key_in_errors) == (None, False)
    assert KEY not in repr(config)
    with pytest.raises(ValueError):
        SimulatorConfig(api_key="  ")


def test_help_documents_the_new_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for needle in ("--api-key", "--echo-key-in-errors", "--rerank-models", "/v1/messages", "/v1/responses"):
        assert needle in text


def test_bearer_parsing_keeps_odd_schemes_as_presented_keys() -> None:
    headers = Headers({"authorization": "Basic abc", "x-api-key": "k1", "api-key": "k2"})
    assert presented_keys(headers) == ["Basic abc", "k1", "k2"]
    assert presented_keys(Headers({"authorization": "bearer  k3 "})) == ["k3"]
