"""Deployment CRUD: form parsing, validation, alias routing, enable/disable, delete impact, audit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, AuditEvent, Deployment, DeploymentHealth, ModelAlias, utcnow
from llm_console.gateway.routing import load_route_table
from llm_console.services.deployment_admin import (
    DeploymentFields,
    create_deployment,
    delete_deployment,
    deletion_impact,
    get_deployment,
    list_deployments,
    set_deployment_enabled,
    update_deployment,
)
from llm_console.services.deployments import ConfigError
from llm_console.services.providers import create_provider


@pytest.fixture
def provider(engine: Engine, box: SecretBox) -> int:
    return create_provider(engine, box, name="gpu-1", kind="openai", base_url="http://8.8.8.8:8000/v1", actor="op").id


@pytest.fixture
def azure(engine: Engine, box: SecretBox) -> int:
    return create_provider(
        engine, box, name="az", kind="azure", base_url="https://1.1.1.1", api_version="2024-10-21", actor="op"
    ).id


def _actions(engine: Engine) -> list[str]:
    with session(engine) as s:
        return [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]  # type: ignore[arg-type]


def test_form_values_are_parsed_with_readable_errors() -> None:
    fields = DeploymentFields.from_form(
        {"model": " llama ", "alias": "chat", "weight": "3", "max_concurrency": "", "connect_s": "2.5", "total_s": ""}
    )
    assert fields == DeploymentFields(model="llama", alias="chat", weight=3, timeouts={"connect_s": 2.5})
    with pytest.raises(ConfigError, match="max concurrency must be a whole number, got 'ten'"):
        DeploymentFields.from_form({"model": "m", "max_concurrency": "ten"})
    with pytest.raises(ConfigError, match="timeout idle_s must be a finite number"):
        DeploymentFields.from_form({"model": "m", "idle_s": "inf"})


def test_create_routes_the_alias_and_the_gateway_sees_it(engine: Engine, box: SecretBox, provider: int) -> None:
    view = create_deployment(
        engine,
        provider,
        DeploymentFields(model="llama", alias="chat", weight=2, max_concurrency=4, timeouts={"first_byte_s": 30.0}),
        actor="op@x",
    )
    assert view.name == "llama@8.8.8.8:8000" and view.provider_name == "gpu-1"
    assert view.aliases == (("chat", 2),) and view.health.status == "unknown"
    route = load_route_table(engine, box).get("chat")
    assert route is not None
    [target] = route.targets
    assert (target.model, target.weight, target.max_concurrency) == ("llama", 2, 4)
    assert target.options["timeouts"] == {"first_byte_s": 30.0}
    assert _actions(engine)[-1] == "deployment.create"


def test_create_under_an_existing_alias_adds_a_second_target(engine: Engine, box: SecretBox, provider: int) -> None:
    create_deployment(engine, provider, DeploymentFields(model="a", alias="chat"), actor="op")
    create_deployment(engine, provider, DeploymentFields(model="b", alias="chat", name="B"), actor="op")
    route = load_route_table(engine, box).get("chat")
    assert route is not None and [t.deployment for t in route.targets] == ["a@8.8.8.8:8000", "B"]
    with session(engine) as s:
        assert len(list(s.exec(select(ModelAlias)))) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (DeploymentFields(model=""), "upstream model must be 1-300 characters"),
        (DeploymentFields(model="m", weight=-1), "weight must be between 0 and 1000"),
        (DeploymentFields(model="m", max_concurrency=0), "max concurrency must be between 1 and 100000"),
        (DeploymentFields(model="m", timeouts={"total_s": 0}), "timeout total_s must be more than 0"),
        (DeploymentFields(model="m", timeouts={"bogus_s": 1}), "unknown timeout 'bogus_s'"),
        (DeploymentFields(model="m", api_version="2024-10-21"), "applies to Azure providers only"),
        (DeploymentFields(model="m", alias="x" * 301), "alias must be 1-300 characters"),
    ],
)
def test_bad_fields_are_refused(engine: Engine, provider: int, fields: DeploymentFields, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_deployment(engine, provider, fields, actor="op")
    assert list_deployments(engine) == []


def test_duplicates_are_refused(engine: Engine, provider: int) -> None:
    create_deployment(engine, provider, DeploymentFields(model="m", name="Main"), actor="op")
    with pytest.raises(ConfigError, match="already has a deployment of 'm': 'Main'"):
        create_deployment(engine, provider, DeploymentFields(model="m"), actor="op")
    with pytest.raises(ConfigError, match="a deployment named 'main' already exists"):
        create_deployment(engine, provider, DeploymentFields(model="n", name="main"), actor="op")
    with pytest.raises(ConfigError, match="no provider with id 999"):
        create_deployment(engine, 999, DeploymentFields(model="n"), actor="op")


def test_azure_deployments_take_an_api_version(engine: Engine, box: SecretBox, azure: int) -> None:
    view = create_deployment(
        engine, azure, DeploymentFields(model="gpt4o-prod", alias="gpt-4o", api_version="2025-01-01"), actor="op"
    )
    assert view.api_version == "2025-01-01" and view.name == "gpt4o-prod@1.1.1.1 (azure)"
    route = load_route_table(engine, box).get("gpt-4o")
    assert route is not None and route.targets[0].options["api_version"] == "2025-01-01"


def test_edit_replaces_the_form_fields_and_can_route_another_alias(engine: Engine, provider: int) -> None:
    dep = create_deployment(
        engine,
        provider,
        DeploymentFields(model="m", alias="a", max_concurrency=2, timeouts={"idle_s": 5.0}),
        actor="op",
    )
    view = update_deployment(engine, dep.id, DeploymentFields(model="m2", alias="b", weight=0), actor="op")
    assert (view.name, view.model, view.max_concurrency, view.timeouts) == (dep.name, "m2", None, {})
    assert view.aliases == (("a", 1), ("b", 0))
    view = update_deployment(engine, dep.id, DeploymentFields(model="m2", name="renamed"), actor="op")
    assert view.name == "renamed"
    with session(engine) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "deployment.update")).first()
    assert event is not None and event.before is not None and event.after is not None
    assert (event.before["model"], event.after["model"], event.after["alias"]) == ("m", "m2", "b")


def test_disable_takes_the_deployment_out_of_routing(engine: Engine, box: SecretBox, provider: int) -> None:
    dep = create_deployment(engine, provider, DeploymentFields(model="m", alias="chat"), actor="op")
    set_deployment_enabled(engine, dep.id, False, actor="op")
    set_deployment_enabled(engine, dep.id, False, actor="op")
    assert not get_deployment(engine, dep.id).enabled
    assert load_route_table(engine, box).get("chat") is None
    set_deployment_enabled(engine, dep.id, True, actor="op")
    assert load_route_table(engine, box).get("chat") is not None
    assert _actions(engine).count("deployment.disable") == 1


def test_delete_names_the_aliases_that_lose_it(engine: Engine, box: SecretBox, provider: int) -> None:
    solo = create_deployment(engine, provider, DeploymentFields(model="a", alias="solo"), actor="op")
    create_deployment(engine, provider, DeploymentFields(model="b", alias="solo", weight=0), actor="op")
    update_deployment(engine, solo.id, DeploymentFields(model="a", alias="shared"), actor="op")
    create_deployment(engine, provider, DeploymentFields(model="c", alias="shared"), actor="op")
    with session(engine) as s:
        s.add(DeploymentHealth(deployment_id=solo.id, status="error", checked_at=utcnow(), last_error="boom"))
        s.commit()
    assert get_deployment(engine, solo.id).health.last_error == "boom"
    impact = deletion_impact(engine, solo.id)
    assert impact.aliases == ["shared", "solo"] and impact.orphaned_aliases == ["solo"]  # b has weight 0
    assert delete_deployment(engine, solo.id, actor="op") == impact
    with session(engine) as s:
        assert s.get(Deployment, solo.id) is None
        assert all(link.deployment_id != solo.id for link in s.exec(select(AliasDeployment)))
        assert s.get(DeploymentHealth, solo.id) is None
    assert load_route_table(engine, box).get("solo") is None
    with pytest.raises(ConfigError, match="no deployment with id"):
        delete_deployment(engine, solo.id, actor="op")
