"""Provider CRUD: validation with readable messages, the SSRF guard, write-only keys, audit, safe deletes."""

from __future__ import annotations

import re
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
    DeploymentHealth,
    NetworkAllow,
    Provider,
    utcnow,
)
from llm_console.gateway.routing import load_route_table
from llm_console.services.deployment_admin import DeploymentFields, create_deployment
from llm_console.services.deployments import ConfigError
from llm_console.services.providers import (
    create_provider,
    delete_provider,
    deletion_impact,
    get_provider,
    list_providers,
    set_provider_enabled,
    update_provider,
)

from .conftest import everything_stored

KEY = "sk-provider-canary-9f8e7d6c5b4a39281706"
PUBLIC = "https://8.8.8.8/v1"  # a literal public address: no DNS needed


def _new(engine: Engine, box: SecretBox, name: str = "vllm-a", **kw: object) -> int:
    args: dict[str, object] = {"kind": "openai", "base_url": PUBLIC, "actor": "op@x", **kw}
    return create_provider(engine, box, name=name, **args).id  # type: ignore[arg-type]


def _audits(engine: Engine, action: str) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


def _stored_key(engine: Engine, box: SecretBox, provider_id: int) -> str | None:
    with session(engine) as s:
        row = s.get(Provider, provider_id)
        assert row is not None
        return box.decrypt(row.api_key_encrypted) if row.api_key_encrypted else None


def test_create_stores_an_encrypted_key_and_audits_without_it(engine: Engine, box: SecretBox, db_path: Path) -> None:
    view = create_provider(
        engine,
        box,
        name=" Azure EU ",
        kind="azure",
        base_url=PUBLIC + "/",
        api_key=KEY,
        api_version="2024-10-21",
        actor="op@x",
    )
    assert (view.name, view.kind, view.api_base, view.has_key, view.api_version) == (
        "Azure EU",
        "azure",
        PUBLIC,
        True,
        "2024-10-21",
    )
    assert not hasattr(view, "api_key") and KEY not in repr(view)
    assert _stored_key(engine, box, view.id) == KEY
    [event] = _audits(engine, "provider.create")
    assert event.actor == "op@x" and event.after is not None
    assert event.after["api_key"] != KEY and event.after["settings"] == {"api_version": "2024-10-21"}
    assert KEY.encode() not in everything_stored(engine, db_path)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": ""}, "provider name must be 1-200 characters"),
        ({"name": "x" * 201}, "provider name must be 1-200 characters"),
        ({"name": "a\nb"}, "control characters"),
        ({"kind": "bedrock"}, "provider kind must be one of: openai, anthropic, azure"),
        ({"base_url": "ftp://h/v1"}, "base URL must be http(s)"),
        ({"base_url": "http://u:p@8.8.8.8/v1"}, "credentials"),
        ({"base_url": "http://8.8.8.8:99999"}, "invalid port"),
        ({"api_version": "2024-10-21"}, "applies to Azure and Anthropic providers only"),
        ({"kind": "azure", "api_version": "2024 10 21"}, "API version must look like"),
        ({"api_key": "sk-a b"}, "API key contains spaces"),
    ],
)
def test_bad_input_gets_a_readable_message(engine: Engine, box: SecretBox, kw: dict[str, str], message: str) -> None:
    args = {"name": "p", "kind": "openai", "base_url": PUBLIC, **kw}
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_provider(engine, box, actor="op", **args)
    assert list_providers(engine) == []


def test_names_are_unique_ignoring_case(engine: Engine, box: SecretBox) -> None:
    _new(engine, box, "Main")
    with pytest.raises(ConfigError, match="a provider named 'main' already exists"):
        _new(engine, box, "main")
    other = _new(engine, box, "Other")
    with pytest.raises(ConfigError, match="another provider is already named 'MAIN'"):
        update_provider(engine, box, other, name="MAIN", kind="openai", base_url=PUBLIC, actor="op")


def test_private_addresses_need_the_private_host_tick(engine: Engine, box: SecretBox) -> None:
    with pytest.raises(ConfigError, match=r"loopback address.*This private host is ours"):
        _new(engine, box, base_url="http://127.0.0.1:8000/v1")
    view = create_provider(
        engine, box, name="local", kind="openai", base_url="http://127.0.0.1:8000/v1", allow_private=True, actor="a"
    )
    assert view.api_base == "http://127.0.0.1:8000/v1"
    with session(engine) as s:
        assert [r.entry for r in s.exec(select(NetworkAllow))] == ["127.0.0.1/32"]
    assert _audits(engine, "allowlist.add")


def test_the_metadata_range_is_never_allow_listed_from_the_form(engine: Engine, box: SecretBox) -> None:
    with pytest.raises(ConfigError, match="link-local"):
        _new(engine, box, base_url="http://169.254.169.254/latest", allow_private=True)
    with session(engine) as s:
        assert list(s.exec(select(NetworkAllow))) == []


def test_a_name_already_taken_is_refused_before_anything_is_allow_listed(engine: Engine, box: SecretBox) -> None:
    _new(engine, box, "taken")
    with pytest.raises(ConfigError, match="already exists"):
        _new(engine, box, "taken", base_url="http://10.1.2.3/v1", allow_private=True)
    with session(engine) as s:
        assert list(s.exec(select(NetworkAllow))) == []


def test_the_key_is_write_only_on_edit(engine: Engine, box: SecretBox, db_path: Path) -> None:
    pid = _new(engine, box, api_key=KEY)
    common = {"name": "vllm-a", "kind": "openai", "base_url": PUBLIC, "actor": "op"}
    assert update_provider(engine, box, pid, api_key="", **common).has_key  # empty field: keep
    assert _stored_key(engine, box, pid) == KEY
    update_provider(engine, box, pid, api_key="sk-new-key", **common)
    assert _stored_key(engine, box, pid) == "sk-new-key"
    with pytest.raises(ConfigError, match="not both"):
        update_provider(engine, box, pid, api_key="sk-other", clear_api_key=True, **common)
    assert not update_provider(engine, box, pid, clear_api_key=True, **common).has_key
    assert _stored_key(engine, box, pid) is None
    events = _audits(engine, "provider.update")
    assert [bool(e.after and e.after["key_replaced"]) for e in events] == [False, True, True]
    assert KEY.encode() not in everything_stored(engine, db_path)
    assert b"sk-new-key" not in everything_stored(engine, db_path)


def test_edit_changes_name_url_kind_and_version(engine: Engine, box: SecretBox) -> None:
    pid = _new(engine, box, kind="azure", api_version="2024-10-21")
    view = update_provider(
        engine,
        box,
        pid,
        name="claude",
        kind="anthropic",
        base_url="https://1.1.1.1",
        api_version="2023-06-01",
        actor="op",
    )
    assert (view.name, view.kind, view.api_base, view.api_version) == (
        "claude",
        "anthropic",
        "https://1.1.1.1",
        "2023-06-01",
    )
    with session(engine) as s:
        row = s.get(Provider, pid)
        assert row is not None and row.settings == {"anthropic_version": "2023-06-01"}
    [event] = _audits(engine, "provider.update")
    assert event.before is not None and event.before["kind"] == "azure"
    assert event.after is not None and event.after["kind"] == "anthropic"


def test_a_disabled_provider_leaves_the_route_table(engine: Engine, box: SecretBox) -> None:
    pid = _new(engine, box)
    create_deployment(engine, pid, DeploymentFields(model="m1", alias="chat"), actor="op")
    assert load_route_table(engine, box).get("chat") is not None
    assert not set_provider_enabled(engine, pid, False, actor="op").enabled
    assert load_route_table(engine, box).get("chat") is None
    set_provider_enabled(engine, pid, False, actor="op")  # no change: no second event
    assert len(_audits(engine, "provider.disable")) == 1
    set_provider_enabled(engine, pid, True, actor="op")
    assert load_route_table(engine, box).get("chat") is not None
    assert get_provider(engine, pid).deployments == 1


def test_delete_with_deployments_is_refused_unless_forced(engine: Engine, box: SecretBox) -> None:
    pid = _new(engine, box)
    other = _new(engine, box, "other", base_url="https://1.1.1.1/v1")
    d1 = create_deployment(engine, pid, DeploymentFields(model="m1", alias="solo"), actor="op")
    create_deployment(engine, pid, DeploymentFields(model="m2", alias="shared"), actor="op")
    create_deployment(engine, other, DeploymentFields(model="m2", alias="shared"), actor="op")
    with session(engine) as s:
        s.add(DeploymentHealth(deployment_id=d1.id, status="available", checked_at=utcnow()))
        s.commit()
    impact = deletion_impact(engine, pid)
    assert impact.aliases == ["shared", "solo"] and impact.orphaned_aliases == ["solo"]
    with pytest.raises(ConfigError, match="still has 2 deployment"):
        delete_provider(engine, pid, actor="op")
    assert get_provider(engine, pid).deployments == 2
    delete_provider(engine, pid, force=True, actor="op")
    with session(engine) as s:
        assert s.get(Provider, pid) is None
        assert [d.provider_id for d in s.exec(select(Deployment))] == [other]
        assert len(list(s.exec(select(AliasDeployment)))) == 1
        assert list(s.exec(select(DeploymentHealth))) == []
    [event] = _audits(engine, "provider.delete")
    assert event.before is not None and event.before["aliases"] == ["shared", "solo"]
    assert load_route_table(engine, box).get("solo") is None
    assert load_route_table(engine, box).get("shared") is not None


def test_an_empty_provider_deletes_and_a_missing_one_is_a_readable_error(engine: Engine, box: SecretBox) -> None:
    pid = _new(engine, box)
    delete_provider(engine, pid, actor="op")
    with pytest.raises(ConfigError, match=f"no provider with id {pid}"):
        delete_provider(engine, pid, actor="op")
    with pytest.raises(ConfigError, match="no provider"):
        set_provider_enabled(engine, pid, True, actor="op")


@pytest.mark.parametrize(
    "base_url",
    ["http://[64:ff9b::a9fe:a9fe]/latest", "http://[::ffff:169.254.169.254]/latest", "http://[2002:a9fe:a9fe::1]/x"],
)
def test_metadata_addresses_hidden_in_ipv6_are_never_allow_listed(
    engine: Engine, box: SecretBox, base_url: str
) -> None:
    with pytest.raises(ConfigError, match=r"169\.254\.169\.254 is a link-local"):
        _new(engine, box, base_url=base_url, allow_private=True)
    with session(engine) as s:
        assert list(s.exec(select(NetworkAllow))) == []
