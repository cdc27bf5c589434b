"""The Configuration page's handlers called directly, as any connected socket could call them.

Viewers and strangers change nothing whatever they send; operators change providers and deployments but
only admins allow a private host; a provider key never lands in any state var.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine
from sqlmodel import select

import llm_console.state.config as config_module
import llm_console.state.config_forms as forms_module
from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import Deployment, Provider
from llm_console.services.deployment_admin import DeploymentFields, create_deployment
from llm_console.services.providers import create_provider
from llm_console.services.sessions import SessionUser
from llm_console.state.config import ConfigState
from llm_console.state.config_forms import DeleteState, DeploymentFormState, ProviderFormState

KEY = "sk-state-canary-5e4d3c2b1a0f9e8d7c6b"
PUBLIC = "https://8.8.8.8/v1"


@dataclass
class Page:
    engine: Engine
    box: SecretBox
    root: State
    config: ConfigState
    providers: ProviderFormState
    deployments: DeploymentFormState
    delete: DeleteState
    reloads: list[int]
    who: list[SessionUser | None] = field(default_factory=lambda: [None])

    def sign_in(self, role: str | None) -> None:
        self.who[:] = [None if role is None else SessionUser(1, f"{role}@x", role, role)]

    async def call(self, state: Any, handler: str, *args: Any) -> Any:
        return await type(state).event_handlers[handler].fn(state, *args)

    def count(self, table: type[Provider] | type[Deployment]) -> int:
        with session(self.engine) as s:
            return len(list(s.exec(select(table))))


@pytest.fixture
def page(engine: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    reloads: list[int] = []

    async def reload_routes() -> None:
        reloads.append(1)

    context = SimpleNamespace(
        engine=engine,
        settings=SimpleNamespace(upstream_allowlist=[]),
        runtime=SimpleNamespace(box=box, reload_routes=reload_routes),
    )
    monkeypatch.setattr(config_module, "get_context", lambda: context)
    monkeypatch.setattr(forms_module, "get_context", lambda: context)
    root = State(_reflex_internal_init=True)

    def sub(cls: type[Any]) -> Any:
        return root.get_substate(cls.get_full_name().split(".")[1:])

    p = Page(
        engine, box, root, sub(ConfigState), sub(ProviderFormState), sub(DeploymentFormState), sub(DeleteState), reloads
    )

    async def current_user(state: object) -> SessionUser | None:
        return p.who[0]

    monkeypatch.setattr(config_module, "current_user", current_user)
    yield p


def _provider_form(**kw: str) -> dict[str, str]:
    return {"name": "gpu", "kind": "openai", "base_url": PUBLIC, "api_key": KEY, "api_version": "", **kw}


async def test_viewers_see_the_tables_and_nothing_secret(page: Page) -> None:
    pid = create_provider(page.engine, page.box, name="gpu", kind="openai", base_url=PUBLIC, api_key=KEY, actor="a").id
    create_deployment(page.engine, pid, DeploymentFields(model="m", alias="chat"), actor="a")
    page.sign_in("viewer")
    assert await page.call(page.config, "load") is None
    assert not page.config.can_edit and not page.config.can_allow_private
    assert page.config.providers[0]["key"] == "set" and page.config.deployments[0]["aliases"] == "chat"
    assert [r.alias for r in page.config.matrix_rows] == ["chat"]
    assert KEY not in repr(page.root.dict())
    page.sign_in(None)
    assert "/login" in repr(await page.call(page.config, "load"))


@pytest.mark.parametrize("role", [None, "viewer", "member"])
async def test_below_operator_changes_nothing(page: Page, role: str | None) -> None:
    pid = create_provider(page.engine, page.box, name="gpu", kind="openai", base_url=PUBLIC, actor="a").id
    dep = create_deployment(page.engine, pid, DeploymentFields(model="m", alias="chat"), actor="a")
    page.sign_in(role)
    await page.call(page.providers, "new_provider")
    assert not page.providers.provider_open
    page.providers.provider_form = {"id": ""}
    await page.call(page.providers, "save_provider", _provider_form(name="new"))
    await page.call(page.providers, "edit_provider", str(pid))
    assert page.providers.provider_form == {"id": ""}
    await page.call(page.config, "toggle_provider", str(pid), False)
    await page.call(page.config, "toggle_deployment", str(dep.id), False)
    await page.call(page.deployments, "save_deployment", {"provider_id": str(pid), "model": "n"})
    page.delete.confirm = {"type": "provider", "id": str(pid), "name": "gpu"}
    await page.call(page.delete, "confirm_delete")
    page.delete.confirm = {"type": "deployment", "id": str(dep.id), "name": "x"}
    await page.call(page.delete, "confirm_delete")
    assert (page.count(Provider), page.count(Deployment)) == (1, 1)
    with session(page.engine) as s:
        provider, deployment = s.get(Provider, pid), s.get(Deployment, dep.id)
    assert provider is not None and provider.enabled and deployment is not None and deployment.enabled
    assert page.config.error == "Only operators and admins can change the configuration."
    assert page.reloads == []


async def test_operators_add_providers_but_only_admins_allow_private_hosts(page: Page) -> None:
    page.sign_in("operator")
    await page.call(page.config, "load")
    await page.call(page.providers, "new_provider")
    assert page.providers.provider_open
    local = _provider_form(base_url="http://127.0.0.1:8000/v1", allow_private="on")
    await page.call(page.providers, "save_provider", local)
    assert page.providers.provider_error.startswith("Only admins can allow a private host")
    await page.call(page.providers, "save_provider", _provider_form(base_url="http://127.0.0.1:8000/v1"))
    assert "loopback" in page.providers.provider_error and page.providers.provider_open
    await page.call(page.providers, "save_provider", _provider_form())
    assert not page.providers.provider_open and page.config.notice == "Saved provider gpu."
    assert page.config.providers[0]["name"] == "gpu" and page.reloads == [1]
    page.sign_in("admin")
    await page.call(page.config, "load")
    await page.call(page.providers, "new_provider")
    await page.call(page.providers, "save_provider", {**local, "name": "local"})
    assert page.providers.provider_error == "" and len(page.config.providers) == 2
    assert KEY not in repr(page.root.dict())


async def test_editing_never_shows_the_key_and_an_empty_field_keeps_it(page: Page) -> None:
    pid = create_provider(page.engine, page.box, name="gpu", kind="openai", base_url=PUBLIC, api_key=KEY, actor="a").id
    page.sign_in("operator")
    await page.call(page.providers, "edit_provider", str(pid))
    assert page.providers.provider_form["has_key"] == "true" and KEY not in repr(page.providers.provider_form)
    await page.call(page.providers, "save_provider", _provider_form(name="renamed", api_key=""))
    with session(page.engine) as s:
        row = s.get(Provider, pid)
    assert row is not None and row.name == "renamed" and row.api_key_encrypted
    assert page.box.decrypt(row.api_key_encrypted) == KEY
    await page.call(page.providers, "edit_provider", "not-a-number")
    await page.call(page.providers, "edit_provider", "999")
    assert page.config.error.startswith("no provider with id 999")


async def test_deployments_are_created_routed_and_deleted_with_a_warning(page: Page) -> None:
    pid = create_provider(page.engine, page.box, name="gpu", kind="openai", base_url=PUBLIC, actor="a").id
    page.sign_in("operator")
    await page.call(page.config, "load")
    await page.call(page.deployments, "new_deployment")
    assert page.deployments.deployment_open and page.deployments.deployment_form["provider_id"] == str(pid)
    await page.call(page.deployments, "save_deployment", {"provider_id": str(pid), "model": "m", "weight": "x"})
    assert page.deployments.deployment_error == "weight must be a whole number, got 'x'"
    await page.call(page.deployments, "save_deployment", {"provider_id": str(pid), "model": "m", "alias": "chat"})
    assert not page.deployments.deployment_open and page.config.deployments[0]["aliases"] == "chat"
    dep_id = page.config.deployments[0]["id"]
    await page.call(page.deployments, "edit_deployment", dep_id)
    assert page.deployments.deployment_form["routes"] == "chat"
    await page.call(page.delete, "ask_delete_deployment", dep_id)
    assert page.delete.confirm_open and "Left with no deployment" in page.delete.confirm["message"]
    await page.call(page.delete, "confirm_delete")
    assert page.count(Deployment) == 0 and page.config.notice.startswith("Deleted deployment")


async def test_a_provider_delete_confirmed_for_old_deployments_refuses_new_ones(page: Page) -> None:
    pid = create_provider(page.engine, page.box, name="gpu", kind="openai", base_url=PUBLIC, actor="a").id
    create_deployment(page.engine, pid, DeploymentFields(model="a"), actor="a")
    page.sign_in("operator")
    await page.call(page.delete, "ask_delete_provider", str(pid))
    assert "deleted with it: a@8.8.8.8" in page.delete.confirm["message"]
    create_deployment(page.engine, pid, DeploymentFields(model="b"), actor="a")
    await page.call(page.delete, "confirm_delete")
    assert "changed meanwhile" in page.config.error and page.count(Provider) == 1
    await page.call(page.delete, "ask_delete_provider", str(pid))
    await page.call(page.delete, "confirm_delete")
    assert (page.count(Provider), page.count(Deployment)) == (0, 0)
