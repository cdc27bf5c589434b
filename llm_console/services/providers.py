"""Providers (upstream accounts): create, edit, enable or disable and delete them, validated and audited.

The API key is write-only: it is encrypted when saved and never returned (views say only whether one is
set); an empty key field on edit keeps the stored key, and only an explicit "clear" removes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, DeploymentHealth, ModelAlias, Provider
from llm_console.services.audit import record
from llm_console.services.deployments import (
    PROVIDER_KINDS,
    ConfigError,
    allow_private_host,
    allowlist,
    check_upstream_url,
    validate_base_url,
)

MAX_NAME = 200
MAX_KEY = 4096
# Which provider setting an "API version" field fills, per kind (OpenAI-compatible servers have none).
VERSION_SETTING = {"azure": "api_version", "anthropic": "anthropic_version"}
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,39}")
PRIVATE_HINT = " If this host is yours, an admin can tick 'This private host is ours' to allow it."


@dataclass(frozen=True, slots=True)
class ProviderView:
    """What the console may show about a provider: never the key, only whether one is set."""

    id: int
    name: str
    kind: str
    api_base: str
    has_key: bool
    enabled: bool
    api_version: str
    deployments: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderImpact:
    """What deleting a provider takes with it: its deployments, and the aliases left with no deployment."""

    deployments: list[str]
    aliases: list[str]
    orphaned_aliases: list[str]


def clean_name(raw: object, what: str = "name", limit: int = MAX_NAME) -> str:
    """A trimmed, printable name of 1-`limit` characters, else a ConfigError naming `what`."""
    name = str(raw or "").strip()
    if not name or len(name) > limit:
        raise ConfigError(f"{what} must be 1-{limit} characters")
    if not name.isprintable():
        raise ConfigError(f"{what} may not contain control characters or line breaks")
    return name


def _kind(raw: object) -> str:
    kind = str(raw or "").strip()
    if kind not in PROVIDER_KINDS:
        raise ConfigError(f"provider kind must be one of: {', '.join(PROVIDER_KINDS)}")
    return kind


def clean_version(raw: object, kind: str) -> str:
    """An API version for `kind` ("" when not given); refused for kinds that have none."""
    version = str(raw or "").strip()
    if not version:
        return ""
    if kind not in VERSION_SETTING:
        raise ConfigError("an API version applies to Azure and Anthropic providers only; leave it empty")
    if not _VERSION.fullmatch(version):
        raise ConfigError("API version must look like 2024-10-21 (letters, digits, '.' and '-', at most 40)")
    return version


def _key(raw: object) -> str:
    key = str(raw or "").strip()
    if len(key) > MAX_KEY:
        raise ConfigError(f"the API key is longer than {MAX_KEY} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ConfigError("the API key contains spaces, line breaks or control characters")
    return key


def _checked_url(
    engine: Engine, raw: object, *, name: str, allow_private: bool, extra_allowlist: Iterable[str], actor: str
) -> str:
    """The normalised base URL once it passed the SSRF guard (allow-listing its host first if asked)."""
    api_base = validate_base_url(str(raw or ""))
    if allow_private:
        allow_private_host(engine, api_base, actor=actor, note=f"provider {name}")
    try:
        return check_upstream_url(api_base, allowlist(engine, extra_allowlist))
    except ConfigError as exc:
        hint = PRIVATE_HINT if "allow-list" in str(exc) and not allow_private else ""
        raise ConfigError(f"{exc}{hint}") from None


def _check_name_free(s: Session, name: str, provider_id: int | None) -> None:
    """Refuse a name another provider has (in any case); `provider_id` is the one being edited, None when new."""
    query = select(Provider.id).where(func.lower(Provider.name) == name.lower())
    if any(pid != provider_id for pid in s.exec(query)):
        raise ConfigError(
            f"a provider named {name!r} already exists"
            if provider_id is None
            else f"another provider is already named {name!r}"
        )


def _audit_fields(p: Provider) -> dict[str, Any]:
    return {
        "name": p.name,
        "kind": p.kind,
        "api_base": p.api_base,
        "settings": dict(p.settings or {}),
        "enabled": p.enabled,
        "api_key": bool(p.api_key_encrypted),
    }


def _view(p: Provider, deployments: int) -> ProviderView:
    assert p.id is not None
    setting = VERSION_SETTING.get(p.kind)
    version = str((p.settings or {}).get(setting, "")) if setting else ""
    return ProviderView(
        p.id, p.name, p.kind, p.api_base, bool(p.api_key_encrypted), p.enabled, version, deployments, p.created_at
    )


def _counts(s: Session) -> dict[int, int]:
    rows = s.exec(select(Deployment.provider_id, func.count()).group_by(col(Deployment.provider_id)))
    return {int(pid): int(n) for pid, n in rows}


def list_providers(engine: Engine) -> list[ProviderView]:
    """Every provider, by name, with its deployment count."""
    with session(engine) as s:
        counts = _counts(s)
        rows = s.exec(select(Provider).order_by(func.lower(Provider.name)))
        return [_view(p, counts.get(p.id or 0, 0)) for p in rows]


def get_provider(engine: Engine, provider_id: int) -> ProviderView:
    with session(engine) as s:
        return _view(_get(s, provider_id), _counts(s).get(provider_id, 0))


def _get(s: Session, provider_id: int) -> Provider:
    row = s.get(Provider, provider_id)
    if row is None:
        raise ConfigError(f"no provider with id {provider_id} (it may have been deleted)")
    return row


def _settings(current: Mapping[str, Any], kind: str, version: str) -> dict[str, Any]:
    """Provider settings with the version setting of `kind` set or removed; other kinds' ones dropped."""
    settings = {k: v for k, v in current.items() if k not in VERSION_SETTING.values()}
    if version:
        settings[VERSION_SETTING[kind]] = version
    return settings


def create_provider(
    engine: Engine,
    box: SecretBox,
    *,
    name: str,
    kind: str,
    base_url: str,
    api_key: str = "",
    api_version: str = "",
    enabled: bool = True,
    allow_private: bool = False,
    extra_allowlist: Iterable[str] = (),
    actor: str,
) -> ProviderView:
    """Add a provider; `allow_private` is an admin saying "this private host is ours" (allow-listed, audited)."""
    name, kind = clean_name(name, "provider name"), _kind(kind)
    version, key = clean_version(api_version, kind), _key(api_key)
    with session(engine) as s:
        _check_name_free(s, name, None)
    api_base = _checked_url(
        engine, base_url, name=name, allow_private=allow_private, extra_allowlist=extra_allowlist, actor=actor
    )
    with session(engine) as s:
        _check_name_free(s, name, None)
        row = Provider(name=name, kind=kind, api_base=api_base, settings=_settings({}, kind, version), enabled=enabled)
        row.api_key_encrypted = box.encrypt(key) if key else None
        s.add(row)
        s.flush()
        record(
            s,
            actor=actor,
            action="provider.create",
            target_type="provider",
            target_id=str(row.id),
            after=_audit_fields(row),
        )
        s.commit()
        return _view(row, 0)


def update_provider(
    engine: Engine,
    box: SecretBox,
    provider_id: int,
    *,
    name: str,
    kind: str,
    base_url: str,
    api_key: str = "",
    clear_api_key: bool = False,
    api_version: str = "",
    allow_private: bool = False,
    extra_allowlist: Iterable[str] = (),
    actor: str,
) -> ProviderView:
    """Save the edit form: an empty `api_key` keeps the stored key, `clear_api_key` removes it."""
    name, kind = clean_name(name, "provider name"), _kind(kind)
    version, key = clean_version(api_version, kind), _key(api_key)
    if key and clear_api_key:
        raise ConfigError("either enter a new API key or clear the stored one, not both")
    with session(engine) as s:
        _get(s, provider_id)
        _check_name_free(s, name, provider_id)
    api_base = _checked_url(
        engine, base_url, name=name, allow_private=allow_private, extra_allowlist=extra_allowlist, actor=actor
    )
    with session(engine) as s:
        row = _get(s, provider_id)
        before = _audit_fields(row)
        row.name, row.kind, row.api_base = name, kind, api_base
        row.settings = _settings(row.settings or {}, kind, version)
        if key:
            row.api_key_encrypted = box.encrypt(key)
        elif clear_api_key:
            row.api_key_encrypted = None
        s.add(row)
        after = _audit_fields(row)
        after["key_replaced"] = bool(key) or (clear_api_key and before["api_key"])
        record(
            s,
            actor=actor,
            action="provider.update",
            target_type="provider",
            target_id=str(provider_id),
            before=before,
            after=after,
        )
        s.commit()
        return _view(row, _counts(s).get(provider_id, 0))


def set_provider_enabled(engine: Engine, provider_id: int, enabled: bool, *, actor: str) -> ProviderView:
    """A disabled provider's deployments leave the route table (they keep their configuration)."""
    with session(engine) as s:
        row = _get(s, provider_id)
        switch_enabled(s, row, "provider", enabled, actor=actor)
        return _view(row, _counts(s).get(provider_id, 0))


def switch_enabled(s: Session, row: Provider | Deployment, kind: str, enabled: bool, *, actor: str) -> None:
    """Enable or disable a provider or deployment with its audit event (nothing when it already is)."""
    if row.enabled == enabled:
        return
    row.enabled = enabled
    s.add(row)
    record(
        s,
        actor=actor,
        action=f"{kind}.enable" if enabled else f"{kind}.disable",
        target_type=kind,
        target_id=str(row.id),
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    s.commit()


def delete_deployment_rows(s: Session, ids: list[int]) -> None:
    """Delete these deployments with their routes and health rows (what refers to them without a cascade)."""
    s.exec(delete(AliasDeployment).where(col(AliasDeployment.deployment_id).in_(ids)))
    s.exec(delete(DeploymentHealth).where(col(DeploymentHealth.deployment_id).in_(ids)))
    s.exec(delete(Deployment).where(col(Deployment.id).in_(ids)))


def routed_aliases(s: Session, deployment_ids: list[int]) -> tuple[list[str], list[str]]:
    """Aliases routed to any of `deployment_ids`, and those of them left with no other deployment."""
    links = list(s.exec(select(AliasDeployment)))
    names = {a.id: a.alias for a in s.exec(select(ModelAlias))}
    hit = {link.alias_id for link in links if link.deployment_id in deployment_ids}
    kept = {link.alias_id for link in links if link.deployment_id not in deployment_ids and link.weight > 0}
    return sorted(names[a] for a in hit), sorted(names[a] for a in hit - kept)


def deletion_impact(engine: Engine, provider_id: int) -> ProviderImpact:
    """For the confirmation dialog: which deployments go, which aliases lose a (their last) deployment."""
    with session(engine) as s:
        _get(s, provider_id)
        deps = list(s.exec(select(Deployment).where(Deployment.provider_id == provider_id).order_by(Deployment.name)))
        aliases, orphaned = routed_aliases(s, [d.id for d in deps if d.id is not None])
        return ProviderImpact([d.name for d in deps], aliases, orphaned)


def delete_provider(engine: Engine, provider_id: int, *, force: bool = False, actor: str) -> ProviderImpact:
    """Delete a provider; one that still has deployments is refused unless `force` (they go with it)."""
    with session(engine) as s:
        row = _get(s, provider_id)
        deps = list(s.exec(select(Deployment).where(Deployment.provider_id == provider_id).order_by(Deployment.name)))
        ids = [d.id for d in deps if d.id is not None]
        aliases, orphaned = routed_aliases(s, ids)
        if deps and not force:
            raise ConfigError(
                f"provider {row.name!r} still has {len(deps)} deployment(s): {', '.join(d.name for d in deps[:5])}"
                f"{'…' if len(deps) > 5 else ''}. Delete them first, or confirm deleting them with the provider."
            )
        before = {**_audit_fields(row), "deployments": [d.name for d in deps], "aliases": aliases}
        if ids:
            delete_deployment_rows(s, ids)
        s.delete(row)
        record(
            s, actor=actor, action="provider.delete", target_type="provider", target_id=str(provider_id), before=before
        )
        s.commit()
        return ProviderImpact([d.name for d in deps], aliases, orphaned)
