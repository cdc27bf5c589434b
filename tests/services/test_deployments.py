"""Deployments: URLs validated, provider keys encrypted at rest, audit rows masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import (
    AliasDeployment,
    AuditEvent,
    Deployment,
    ModelAlias,
    ModelPrice,
    NetworkAllow,
    Provider,
)
from llm_console.services.deployments import (
    ConfigError,
    add_deployment,
    allow_network,
    set_price,
    set_route_policy,
    validate_base_url,
)

from .conftest import everything_stored

PROVIDER_KEY = "sk-proj-super-secret-provider-key-42"


def all_rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with session(engine) as s:
        return list(s.exec(select(model)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://upstream.test/v1"}, "http(s)"),
        ({"base_url": "file:///etc/passwd"}, "http(s)"),
        ({"base_url": "javascript:alert(1)"}, "http(s)"),
        ({"base_url": "upstream.test:8000"}, "http(s)"),
        ({"base_url": "http://"}, "http(s)"),
        ({"base_url": ""}, "http(s)"),
        ({"base_url": "http://user:pass@upstream.test/v1"}, "credentials"),
        ({"base_url": "https://:sk-secret@upstream.test"}, "credentials"),
        ({"weight": -1}, "weight"),
        ({"kind": "bedrock"}, "kind"),
        ({"alias": ""}, "alias"),
        ({"alias": "   "}, "alias"),
        ({"alias": "a" * 301}, "alias"),
    ],
)
def test_invalid_deployments_are_refused_and_nothing_is_written(
    engine: Engine, box: SecretBox, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"alias": "m", "base_url": "http://upstream.test/v1", "actor": "admin", **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add_deployment(engine, box, **args)  # type: ignore[arg-type]

    for model in (Provider, Deployment, ModelAlias, AliasDeployment, AuditEvent):
        assert all_rows(engine, model) == []


def test_credentials_in_the_url_are_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_base_url("http://user:hunter2@upstream.test")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://upstream.test:abc/v1", "http://upstream.test:99999/v1"])
def test_a_bad_port_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        validate_base_url(url)


def test_base_url_is_normalised() -> None:
    assert validate_base_url("  https://upstream.test/v1/  ") == "https://upstream.test/v1"
    assert validate_base_url("http://10.0.0.5:8000") == "http://10.0.0.5:8000"


def test_add_deployment_creates_provider_deployment_alias_and_link(engine: Engine, box: SecretBox) -> None:
    dep = add_deployment(
        engine, box, alias=" chat ", base_url="http://upstream.test/v1/", model="llama", weight=3, actor="admin"
    )

    (provider,) = all_rows(engine, Provider)
    assert (provider.kind, provider.api_base, provider.api_key_encrypted) == ("openai", "http://upstream.test/v1", None)
    assert (dep.name, dep.model, dep.provider_id, dep.enabled) == ("llama@upstream.test", "llama", provider.id, True)
    (alias,) = all_rows(engine, ModelAlias)
    assert alias.alias == "chat"
    (link,) = all_rows(engine, AliasDeployment)
    assert (link.alias_id, link.deployment_id, link.weight) == (alias.id, dep.id, 3)
    (event,) = all_rows(engine, AuditEvent)
    assert (event.action, event.actor, event.target_id) == ("deployment.add", "admin", str(dep.id))
    assert event.after["api_key"] is False


def test_re_adding_updates_the_weight_and_reuses_rows(engine: Engine, box: SecretBox) -> None:
    add_deployment(engine, box, alias="m", base_url="http://upstream.test", actor="a")
    add_deployment(engine, box, alias="m", base_url="http://upstream.test", weight=7, actor="a")
    add_deployment(engine, box, alias="m2", base_url="http://upstream.test", actor="a")

    assert len(all_rows(engine, Provider)) == 1
    assert len(all_rows(engine, Deployment)) == 2  # model defaults to the alias: "m" and "m2"
    weights = {link.weight for link in all_rows(engine, AliasDeployment)}
    assert weights == {7, 1}


def test_provider_key_is_encrypted_at_rest(engine: Engine, box: SecretBox, db_path: Path) -> None:
    add_deployment(engine, box, alias="m", base_url="https://api.example.com/v1", api_key=PROVIDER_KEY, actor="a")

    (provider,) = all_rows(engine, Provider)
    assert provider.api_key_encrypted
    assert PROVIDER_KEY not in provider.api_key_encrypted
    assert box.decrypt(provider.api_key_encrypted) == PROVIDER_KEY
    assert PROVIDER_KEY.encode() not in everything_stored(engine, db_path)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox("a-different-secret-key-entirely").decrypt(provider.api_key_encrypted)


def test_encryption_is_randomised(box: SecretBox) -> None:
    first, second = box.encrypt(PROVIDER_KEY), box.encrypt(PROVIDER_KEY)
    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == PROVIDER_KEY


def test_audit_row_masks_the_provider_key(engine: Engine, box: SecretBox) -> None:
    add_deployment(engine, box, alias="m", base_url="https://api.example.com", api_key=PROVIDER_KEY, actor="a")

    (event,) = all_rows(engine, AuditEvent)
    assert event.after["api_key"] == "***"
    assert event.after["api_base"] == "https://api.example.com"
    assert PROVIDER_KEY not in repr(event.model_dump())


def test_set_price_upserts_and_audits(engine: Engine) -> None:
    set_price(engine, model="llama", input_per_mtok=1.0, output_per_mtok=2.0, actor="a")
    set_price(engine, model="llama", input_per_mtok=3.0, output_per_mtok=4.0, cached_input_per_mtok=0.5, actor="b")

    (price,) = all_rows(engine, ModelPrice)
    assert (price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok) == (3.0, 4.0, 0.5)
    events = all_rows(engine, AuditEvent)
    assert [e.action for e in events] == ["price.set", "price.set"]
    assert events[1].before == {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "cached_input_per_mtok": 0.0}
    assert events[1].after == {"input_per_mtok": 3.0, "output_per_mtok": 4.0, "cached_input_per_mtok": 0.5}


@pytest.mark.parametrize("field", ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok"])
def test_negative_prices_are_refused(engine: Engine, field: str) -> None:
    prices = {"input_per_mtok": 1.0, "output_per_mtok": 1.0, "cached_input_per_mtok": 0.0, field: -0.01}
    with pytest.raises(ConfigError, match="negative"):
        set_price(engine, model="llama", actor="a", **prices)
    assert all_rows(engine, ModelPrice) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",  # refused by what it resolves to
        "http://10.1.2.3/v1",
        "http://169.254.169.254/latest",
        "http://[::ffff:127.0.0.1]:8000/v1",
        "http://2130706433/v1",
        "http://0x7f.1/v1",
    ],
)
def test_private_upstream_urls_are_refused_without_an_allow_list_entry(
    engine: Engine, box: SecretBox, url: str
) -> None:
    with pytest.raises(ConfigError, match="allow-list"):
        add_deployment(engine, box, alias="m", base_url=url, actor="a")
    assert all_rows(engine, Deployment) == []
    assert all_rows(engine, Provider) == []


def test_allow_private_puts_the_host_on_the_allow_list_with_an_audit_row(engine: Engine, box: SecretBox) -> None:
    dep = add_deployment(engine, box, alias="m", base_url="http://127.0.0.1:8000/v1", actor="ops", allow_private=True)
    assert dep.id is not None
    assert [row.entry for row in all_rows(engine, NetworkAllow)] == ["127.0.0.1/32"]
    assert any(e.action == "allowlist.add" and e.actor == "ops" for e in all_rows(engine, AuditEvent))
    # another deployment on the same host is now accepted without the flag
    add_deployment(engine, box, alias="m2", base_url="http://127.0.0.1:8001/v1", actor="ops")


def test_a_settings_allow_list_entry_admits_a_private_network(engine: Engine, box: SecretBox) -> None:
    add_deployment(engine, box, alias="m", base_url="http://10.1.2.3/v1", actor="a", extra_allowlist=["10.0.0.0/8"])
    with pytest.raises(ConfigError, match="allow-list"):
        add_deployment(
            engine, box, alias="m", base_url="http://192.168.0.2/v1", actor="a", extra_allowlist=["10.0.0.0/8"]
        )


def test_allow_network_refuses_junk_entries(engine: Engine) -> None:
    for junk in ("http://10.0.0.1/", "10.0.0.1/8", "*", "not a host"):
        with pytest.raises(ConfigError):
            allow_network(engine, junk, actor="a")
    assert all_rows(engine, NetworkAllow) == []


def test_azure_and_anthropic_providers_keep_their_settings(engine: Engine, box: SecretBox) -> None:
    add_deployment(
        engine,
        box,
        alias="az",
        base_url="https://example-resource.openai.azure.com",
        model="gpt4o-deployment",
        kind="azure",
        provider_settings={"api_version": "2024-10-21"},
        max_concurrency=8,
        actor="a",
    )
    provider = all_rows(engine, Provider)[0]
    assert (provider.kind, provider.settings) == ("azure", {"api_version": "2024-10-21"})
    assert all_rows(engine, Deployment)[0].max_concurrency == 8


def test_route_policy_changes_only_what_is_given_and_is_audited(engine: Engine, box: SecretBox) -> None:
    add_deployment(engine, box, alias="a", base_url="http://upstream.test/v1", actor="a")
    add_deployment(engine, box, alias="b", base_url="http://upstream.test/v1", actor="a")
    set_route_policy(engine, alias="a", actor="ops", strategy="lowest_latency", fallbacks=["b"], retries=1)
    row = set_route_policy(engine, alias="a", actor="ops", timeouts={"first_byte_s": 30.0})
    assert row.strategy == "lowest_latency"
    assert row.settings == {"fallbacks": ["b"], "retries": 1, "timeouts": {"first_byte_s": 30.0}}
    audits = [e for e in all_rows(engine, AuditEvent) if e.action == "route.update"]
    assert len(audits) == 2 and audits[1].before["strategy"] == "lowest_latency"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alias": "nope"}, "no alias"),
        ({"strategy": "random"}, "strategy"),
        ({"fallbacks": ["zzz"]}, "no alias .zzz. to fall back to"),
        ({"fallbacks": ["a"]}, "itself"),
        ({"retries": 11}, "retries"),
        ({"backoff_ms": -1.0}, "negative"),
        ({"timeouts": {"first_byte_s": 0}}, "timeout"),
        ({"timeouts": {"bogus": 1.0}}, "timeout"),
    ],
)
def test_bad_route_policies_are_refused(engine: Engine, box: SecretBox, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    add_deployment(engine, box, alias="a", base_url="http://upstream.test/v1", actor="a")
    with pytest.raises(ConfigError, match=message):
        set_route_policy(engine, **{"alias": "a", "actor": "ops", **kwargs})
    assert all_rows(engine, ModelAlias)[0].settings == {}


def test_add_deployment_never_allow_lists_the_metadata_range(engine: Engine, box: SecretBox) -> None:
    with pytest.raises(ConfigError, match="link-local"):
        add_deployment(
            engine, box, alias="meta", base_url="http://169.254.169.254/latest", actor="a", allow_private=True
        )
    assert all_rows(engine, NetworkAllow) == []
