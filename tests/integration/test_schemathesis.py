"""Schemathesis fuzzes the running gateway from its own /gateway/openapi.json, with the simulator behind it.

Why the Python API (`APIOperation.as_strategy()` driven by Hypothesis) rather than the pytest plugin or the CLI:
the built-in `not_a_server_error` check cannot tell whose 5xx it saw, and here an error the upstream answered
(`upstream_error`) or an upstream that failed (`upstream_*`) is allowed while any other 5xx is the gateway's bug; the
gateway's log row for the response's `x-request-id` tells which. Driving Hypothesis directly also keeps the run
bounded and stable (`derandomize`, no example database, no shrinking) and collects every bad response, not the first.

The key header is fixed, not fuzzed, so negative cases break the body (auth refusals are tested elsewhere). Four
positive cases in five have their `model` swapped for an alias that exists, so fuzzed bodies travel through routing,
translation and the upstream rather than stopping at a 404; negative cases must all be refused with a 4xx.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.core.result import Ok

from tests.integration.fixtures_gateway import (
    SIM_CHAT_MODEL,
    SIM_EMBED_MODEL,
    SIM_RERANK_MODEL,
    Deployment,
    Gateway,
    gateway,
    simulator,
)

CLAUDE_MODEL = "claude-sim-haiku"
MAX_EXAMPLES = 30
# Aliases that exist, per operation path: a positive case may be routed to one of them.
REAL_ALIASES = {
    "/v1/chat/completions": ["chat", "claude"],
    "/v1/completions": ["chat"],
    "/v1/responses": ["chat"],
    "/v1/embeddings": ["embed"],
    "/v1/rerank": ["rerank"],
    "/v1/messages": ["chat", "claude"],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with simulator(tmp_path_factory.mktemp("sim-fuzz"), "--models", f"{SIM_CHAT_MODEL},{CLAUDE_MODEL}") as sim:
        routes = [
            Deployment("chat", sim + "/v1", SIM_CHAT_MODEL),
            Deployment("embed", sim + "/v1", SIM_EMBED_MODEL),
            Deployment("rerank", sim + "/v1", SIM_RERANK_MODEL),
            Deployment("claude", sim, CLAUDE_MODEL, kind="anthropic"),
        ]
        with gateway(tmp_path_factory.mktemp("gw-fuzz"), routes) as gw:
            yield gw


def with_alias(path: str) -> Callable[[tuple[Case, int]], Case]:
    """Route a generated body to a real alias when `pick` says so (pick 0 keeps the generated model)."""
    aliases = REAL_ALIASES.get(path, [])

    def route(pair: tuple[Case, int]) -> Case:
        case, pick = pair
        if pick and aliases and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
            case.body = {**case.body, "model": aliases[(pick - 1) % len(aliases)]}
        return case

    return route


@dataclass
class Outcome:
    """What a fuzz run saw: one line per response the judge objected to; status codes and request ids per path."""

    problems: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    request_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def fuzz(gw: Gateway, mode: GenerationMode, judge: Callable[[Case, Response], str | None]) -> Outcome:
    """Every operation (with a body, for negative mode), MAX_EXAMPLES seeded cases each."""
    schema = schemathesis.openapi.from_url(gw.url + "/gateway/openapi.json", timeout=10)
    auth = {"Authorization": f"Bearer {gw.key}"}
    outcome = Outcome()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the gateway's schema does not load: {result}"
        operations.append(result.ok())
    assert {op.path for op in operations} >= set(REAL_ALIASES)
    if mode == GenerationMode.NEGATIVE:  # an operation with no input has no invalid input to send
        operations = [op for op in operations if op.path in REAL_ALIASES]
    with requests.Session() as session:
        for op in operations:
            strategy = op.as_strategy(generation_mode=mode, headers=auth)
            if mode == GenerationMode.POSITIVE:
                strategy = st.tuples(strategy, st.integers(0, 4)).map(with_alias(op.path))

            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=strategy)
            def run(case: Case) -> None:
                response = case.call(base_url=gw.url, session=session, headers=auth, timeout=30)
                path = case.operation.path
                outcome.statuses[path][response.status_code] += 1
                if request_id := request_id_of(response):
                    outcome.request_ids[path].append(request_id)
                verdict = judge(case, response)
                if verdict:
                    body = repr(case.body)[:300]
                    line = f"{case.method.upper()} {path} -> {response.status_code} ({verdict}); body={body}"
                    outcome.problems.append(line)

            run()
    return outcome


def request_id_of(response: Response) -> str | None:
    """Schemathesis keeps every header as a list of values."""
    values = response.headers.get("x-request-id")
    return values[0] if values else None


def server_error_verdict(gw: Gateway) -> Callable[[Case, Response], str | None]:
    def judge(_case: Case, response: Response) -> str | None:
        if response.status_code < 500:
            return None
        request_id = request_id_of(response)
        if request_id is None:
            return f"a 5xx with no request id: {response.text[:200]}"
        row = gw.wait_row(request_id)
        if (row.error_type or "").startswith("upstream_"):
            return None  # the upstream answered an error, or failed: passed on, not caused here
        return f"gateway-made {row.error_type}: {response.text[:200]}"

    return judge


def refused(_case: Case, response: Response) -> str | None:
    if 400 <= response.status_code < 500:
        return None
    return f"invalid input was not refused: {response.text[:200]}"


def test_schema_is_served_and_names_every_endpoint(stack: Gateway) -> None:
    doc: Any = requests.get(stack.url + "/gateway/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {*REAL_ALIASES, "/v1/models", "/v1/limits", "/v1/feedback", "/v1/prompts/{name}"}


def test_generated_valid_requests_never_get_a_gateway_made_5xx(stack: Gateway) -> None:
    outcome = fuzz(stack, GenerationMode.POSITIVE, server_error_verdict(stack))
    assert not outcome.problems, "\n".join(outcome.problems[:20])
    reached = {}
    for path in REAL_ALIASES:  # fuzzed bodies got through validation and routing to the upstream, not only to 404
        rows = stack.wait_rows(outcome.request_ids[path]).values()
        reached[path] = sum(1 for r in rows if r.status_code < 300 or r.error_type == "upstream_error")
    assert min(reached.values()) >= 1 and sum(reached.values()) >= 20, reached


def test_generated_invalid_requests_are_all_refused_with_4xx(stack: Gateway) -> None:
    outcome = fuzz(stack, GenerationMode.NEGATIVE, refused)
    assert not outcome.problems, "\n".join(outcome.problems[:20])
    for path in REAL_ALIASES:  # refused by validation, not merely for naming no alias
        assert outcome.statuses[path][400] > 0, f"{path}: {dict(outcome.statuses[path])}"


def test_a_body_the_published_schema_accepts_is_not_refused_as_invalid(stack: Gateway) -> None:
    doc: Any = requests.get(stack.url + "/gateway/openapi.json", timeout=10).json()
    body: Any = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16.0}
    schema = {"$ref": "#/components/schemas/ChatCompletionRequest", "components": doc["components"]}
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(body)
    response = requests.post(
        stack.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {stack.key}"}, timeout=30
    )
    assert response.status_code == 200, response.text
