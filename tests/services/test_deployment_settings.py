"""A deployment's GPU-hour price and engine metrics URL: form parsing, the same-host rule, storage, audit,
what the gateway and the scraper read, and config export/import."""

from __future__ import annotations

import re

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, Deployment
from llm_console.fleet.engines import metrics_url
from llm_console.gateway.routing import load_route_table
from llm_console.services.config_io import apply_import, export_config, preview_import
from llm_console.services.config_schema import ConfigImportError
from llm_console.services.deployment_admin import (
    DeploymentFields,
    clean_metrics_url,
    create_deployment,
    get_deployment,
    gpu_hour_price,
    update_deployment,
)
from llm_console.services.deployments import ConfigError
from llm_console.services.providers import create_provider

BASE = "http://8.8.8.8:8000/v1"


@pytest.fixture
def provider(engine: Engine, box: SecretBox) -> int:
    return create_provider(engine, box, name="gpu-1", kind="openai", base_url=BASE, actor="op").id


def test_the_form_reads_a_price_and_a_metrics_url() -> None:
    fields = DeploymentFields.from_form({"model": "m", "gpu_hour_usd": " 2.5 ", "metrics_url": " off "})
    assert (fields.gpu_hour_usd, fields.metrics_url) == (2.5, "off")
    blank = DeploymentFields.from_form({"model": "m", "gpu_hour_usd": "", "metrics_url": ""})
    assert (blank.gpu_hour_usd, blank.metrics_url) == (None, "")
    with pytest.raises(ConfigError, match="GPU-hour price must be a number, got 'two'"):
        DeploymentFields.from_form({"model": "m", "gpu_hour_usd": "two"})
    with pytest.raises(ConfigError, match="GPU-hour price must be a finite number"):
        DeploymentFields.from_form({"model": "m", "gpu_hour_usd": "nan"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", ""),
        ("  OFF ", "off"),
        ("http://8.8.8.8:9090/metrics", "http://8.8.8.8:9090/metrics"),  # same host, another port
        ("https://8.8.8.8/prom/metrics?x=1", "https://8.8.8.8/prom/metrics?x=1"),
    ],
)
def test_metrics_urls_on_the_provider_host_are_kept(url: str, expected: str) -> None:
    assert clean_metrics_url(url, BASE) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data", "must be on the provider's host '8.8.8.8', not '169.254.169.254'"),
        ("http://8.8.8.8.evil.test/metrics", "must be on the provider's host '8.8.8.8'"),
        ("http://127.0.0.1:8000/metrics", "must be on the provider's host '8.8.8.8', not '127.0.0.1'"),
        ("ftp://8.8.8.8/metrics", "must be an http:// or https:// URL with a host"),
        ("8.8.8.8:8000/metrics", "must be an http:// or https:// URL with a host"),
        ("http://user:pw@8.8.8.8/metrics", "must not carry a user name or password"),
        ("http://8.8.8.8:99999/metrics", "is not a valid URL"),
        ("http://8.8.8.8/me trics", "must not contain spaces or control characters"),
        ("http://8.8.8.8/" + "m" * 1000, "must be at most 1000 characters"),
    ],
)
def test_other_hosts_and_odd_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        clean_metrics_url(url, BASE)


@pytest.mark.parametrize("price", [-0.01, 1_000_001.0, float("inf")])
def test_a_price_out_of_range_is_refused(engine: Engine, provider: int, price: float) -> None:
    with pytest.raises(ConfigError, match="GPU-hour price must be between 0 and 1,000,000 USD"):
        create_deployment(engine, provider, DeploymentFields(model="m", gpu_hour_usd=price), actor="op")


def test_saved_settings_reach_the_view_the_gateway_the_scraper_and_the_audit(
    engine: Engine, box: SecretBox, provider: int
) -> None:
    fields = DeploymentFields(model="m", alias="chat", gpu_hour_usd=3.0, metrics_url="http://8.8.8.8:9090/metrics")
    view = create_deployment(engine, provider, fields, actor="op")
    assert (view.gpu_hour_usd, view.metrics_url) == (3.0, "http://8.8.8.8:9090/metrics")
    route = load_route_table(engine, box).get("chat")
    assert route is not None
    [target] = route.targets
    assert metrics_url(target) == "http://8.8.8.8:9090/metrics"
    with session(engine) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "deployment.create")).one()
    assert event.after is not None
    assert event.after["settings"] == {"gpu_hour_usd": 3.0, "metrics_url": "http://8.8.8.8:9090/metrics"}

    # The edit form is the whole form: blanks clear both, and the scraper falls back to <root>/metrics.
    view = update_deployment(engine, view.id, DeploymentFields(model="m", timeouts={"idle_s": 5.0}), actor="op")
    assert (view.gpu_hour_usd, view.metrics_url, view.timeouts) == (None, "", {"idle_s": 5.0})
    route = load_route_table(engine, box).get("chat")
    assert route is not None and metrics_url(route.targets[0]) == "http://8.8.8.8:8000/metrics"
    view = update_deployment(engine, view.id, DeploymentFields(model="m", metrics_url="off"), actor="op")
    route = load_route_table(engine, box).get("chat")
    assert view.metrics_url == "off" and route is not None and metrics_url(route.targets[0]) is None


def test_another_host_is_refused_on_save_and_nothing_is_written(engine: Engine, provider: int) -> None:
    with pytest.raises(ConfigError, match="must be on the provider's host"):
        create_deployment(
            engine, provider, DeploymentFields(model="m", metrics_url="http://10.0.0.1/metrics"), actor="op"
        )
    with session(engine) as s:
        assert s.exec(select(Deployment)).first() is None


def test_a_hand_edited_price_that_is_not_a_number_reads_as_unset(engine: Engine, provider: int) -> None:
    assert [gpu_hour_price(s) for s in ({"gpu_hour_usd": "2"}, {"gpu_hour_usd": True}, {"gpu_hour_usd": -1}, None)] == [
        None,
        None,
        None,
        None,
    ]
    view = create_deployment(engine, provider, DeploymentFields(model="m", gpu_hour_usd=0), actor="op")
    with session(engine) as s:
        row = s.get(Deployment, view.id)
        assert row is not None
        row.settings = {"gpu_hour_usd": "lots"}
        s.add(row)
        s.commit()
    assert get_deployment(engine, view.id).gpu_hour_usd is None


def test_config_export_and_import_round_trip_both_settings(engine: Engine, box: SecretBox, provider: int) -> None:
    fields = DeploymentFields(model="m", name="gpu-m", gpu_hour_usd=2.25, metrics_url="http://8.8.8.8:9090/metrics")
    create_deployment(engine, provider, fields, actor="op")
    text = export_config(engine)
    [dep] = yaml.safe_load(text)["deployments"]
    assert dep["settings"] == {"gpu_hour_usd": 2.25, "metrics_url": "http://8.8.8.8:9090/metrics"}
    assert not preview_import(engine, box, text).has_changes

    # A whole number is a price too, and YAML reads an unquoted OFF as false: both are taken as meant.
    changed = text.replace("gpu_hour_usd: 2.25", "gpu_hour_usd: 4").replace(
        "metrics_url: http://8.8.8.8:9090/metrics", "metrics_url: OFF"
    )
    assert yaml.safe_load(changed)["deployments"][0]["settings"] == {"gpu_hour_usd": 4, "metrics_url": False}
    assert apply_import(engine, box, changed, actor="op").has_changes
    view = get_deployment(engine, get_deployment_id(engine, "gpu-m"))
    assert (view.gpu_hour_usd, view.metrics_url) == (4.0, "off")
    assert not preview_import(engine, box, export_config(engine)).has_changes


def get_deployment_id(engine: Engine, name: str) -> int:
    with session(engine) as s:
        row = s.exec(select(Deployment).where(Deployment.name == name)).one()
        assert row.id is not None
        return row.id


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"metrics_url": "http://10.9.9.9/metrics"},
            "deployments[0].settings.metrics_url: metrics URL must be on the provider's host '8.8.8.8'",
        ),
        ({"gpu_hour_usd": -1}, "deployments[0].settings.gpu_hour_usd: must be >= 0"),
        ({"gpu_hour_usd": "2"}, "deployments[0].settings.gpu_hour_usd: must be a number, not text"),
        ({"gpu_hour": 2}, "deployments[0].settings.gpu_hour: unknown field (did you mean 'gpu_hour_usd'?)"),
    ],
)
def test_import_applies_the_form_rules(
    engine: Engine, box: SecretBox, provider: int, settings: dict[str, object], message: str
) -> None:
    text = yaml.safe_dump(
        {"version": 1, "deployments": [{"name": "d", "provider": "gpu-1", "model": "m", "settings": settings}]}
    )
    with pytest.raises(ConfigImportError) as err:
        preview_import(engine, box, text)
    assert any(problem.startswith(message) for problem in err.value.problems), err.value.problems


def test_import_checks_the_metrics_host_against_the_provider_in_the_same_document(
    engine: Engine, box: SecretBox
) -> None:
    doc = {
        "version": 1,
        "providers": [{"name": "p", "api_base": "https://8.8.4.4/v1"}],
        "deployments": [
            {"name": "d", "provider": "p", "model": "m", "settings": {"metrics_url": "https://8.8.4.4:9400/metrics"}}
        ],
    }
    assert apply_import(engine, box, yaml.safe_dump(doc), actor="op").has_changes
    doc["deployments"][0]["settings"] = {"metrics_url": "https://8.8.8.8/metrics"}  # type: ignore[index]
    with pytest.raises(ConfigImportError, match=re.escape("must be on the provider's host '8.8.4.4'")):
        preview_import(engine, box, yaml.safe_dump(doc))
