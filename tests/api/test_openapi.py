"""The analytics API's OpenAPI description: every route documented with the parameters it takes, served by
the console, and true of the answers (schemathesis drives the app from the document itself)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from starlette.routing import Route

from llm_console.api import OPENAPI_PATH, make_analytics_routes
from llm_console.api.openapi import PREFIX, analytics_document, console_document
from llm_console.api.params import ENDPOINT_PARAMS
from llm_console.gateway.openapi import openapi_document
from tests.api.conftest import World, make_app, open_client

MAX_EXAMPLES = 25


def documented_routes() -> list[Route]:
    routes = make_analytics_routes(lambda: None, lambda: None)  # type: ignore[arg-type,return-value]
    return [r for r in routes if isinstance(r, Route) and r.path.startswith(PREFIX + "/") and "{rest" not in r.path]


def test_every_route_is_documented_with_its_parameters() -> None:
    doc = console_document()
    routes = documented_routes()
    assert len(routes) == len(ENDPOINT_PARAMS) == 8
    for route in routes:
        operation = doc["paths"][route.path]["get"]
        assert route.methods == {"GET", "HEAD"}
        name = route.path.removeprefix(PREFIX + "/")
        query = [p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"] if "$ref" in p]
        assert query == list(ENDPOINT_PARAMS[name]), name
        assert operation["security"] == [{"cookie": []}, {"bearer": []}]
        assert {"200", "400", "401", "403"} <= set(operation["responses"])
    assert set(doc["paths"]) - set(openapi_document()["paths"]) == {r.path for r in routes}
    schemes = doc["components"]["securitySchemes"]
    assert schemes["cookie"] == {"type": "apiKey", "in": "cookie", "name": "llmc_session"}
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    for name in {p for names in ENDPOINT_PARAMS.values() for p in names}:
        assert doc["components"]["parameters"][name]["description"]


def test_the_standalone_gateway_document_is_unchanged() -> None:
    gateway = openapi_document()
    assert not [p for p in gateway["paths"] if p.startswith("/api/")]
    assert "cookie" not in gateway["components"]["securitySchemes"]
    merged = console_document()
    assert {p: merged["paths"][p] for p in gateway["paths"]} == gateway["paths"]
    assert analytics_document()["paths"].keys() <= merged["paths"].keys()


async def test_the_document_is_served_without_credentials(sqlite_world: World) -> None:
    async with open_client(sqlite_world) as api:
        resp = await api.http.get(OPENAPI_PATH)
    assert resp.status_code == 200
    assert resp.json() == console_document()


def judge(case: Case, response: Any) -> None:
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_fuzzed_queries_get_documented_answers_and_never_a_5xx(sqlite_world: World, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi(OPENAPI_PATH, make_app(sqlite_world.engine))
    auth = {"Authorization": f"Bearer {sqlite_world.keys['analytics']}"}
    statuses: Counter[int] = Counter()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        if result.ok().path.startswith(PREFIX):
            operations.append(result.ok())
    assert len(operations) == 8
    for op in operations:

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=op.as_strategy(generation_mode=mode, headers=auth))
        def run(case: Case) -> None:
            response = case.call(headers=auth)
            statuses[response.status_code] += 1
            judge(case, response)

        run()
    assert statuses[200] > 0 and statuses[400] > 0, statuses
    assert max(statuses) < 500
