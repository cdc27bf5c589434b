"""Providers, deployments, aliases and prices: created here, audited, secrets encrypted."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, Provider, utcnow
from llm_console.services.audit import record

PROVIDER_KINDS = ("openai",)


class ConfigError(ValueError):
    """A readable reason a configuration change was refused."""


def validate_base_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL must be http(s)://host[:port][/path], got {url!r}")
    try:
        parts.port  # noqa: B018  (raises on a non-numeric or out-of-range port)
    except ValueError:
        raise ConfigError(f"base URL has an invalid port: {url!r}") from None
    if parts.username or parts.password:
        raise ConfigError("put credentials in the API key, not in the base URL")
    return url.strip().rstrip("/")


def add_deployment(
    engine: Engine,
    box: SecretBox,
    *,
    alias: str,
    base_url: str,
    model: str | None = None,
    kind: str = "openai",
    api_key: str | None = None,
    weight: int = 1,
    actor: str,
) -> Deployment:
    """Create a provider + deployment for `base_url` and route `alias` to it."""
    alias = alias.strip()
    if not alias or len(alias) > 300:
        raise ConfigError("alias must be 1-300 characters")
    if kind not in PROVIDER_KINDS:
        raise ConfigError(f"provider kind must be one of: {', '.join(PROVIDER_KINDS)}")
    if weight < 0:
        raise ConfigError("weight must be >= 0")
    api_base = validate_base_url(base_url)
    upstream_model = (model or alias).strip()
    with session(engine) as s:
        provider = s.exec(select(Provider).where(Provider.api_base == api_base, Provider.kind == kind)).first()
        if provider is None:
            provider = Provider(name=f"{kind}:{api_base}", kind=kind, api_base=api_base)
        if api_key:
            provider.api_key_encrypted = box.encrypt(api_key)
        s.add(provider)
        s.flush()
        name = f"{upstream_model}@{urlsplit(api_base).netloc}"
        dep = s.exec(select(Deployment).where(Deployment.name == name)).first()
        if dep is None:
            dep = Deployment(name=name, provider_id=provider.id, model=upstream_model)  # type: ignore[arg-type]
            s.add(dep)
            s.flush()
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first()
        if row is None:
            row = ModelAlias(alias=alias)
            s.add(row)
            s.flush()
        link = s.get(AliasDeployment, (row.id, dep.id))
        if link is None:
            s.add(AliasDeployment(alias_id=row.id, deployment_id=dep.id, weight=weight))  # type: ignore[arg-type]
        else:
            link.weight = weight
            s.add(link)
        record(
            s,
            actor=actor,
            action="deployment.add",
            target_type="deployment",
            target_id=str(dep.id),
            after={
                "alias": alias,
                "api_base": api_base,
                "model": upstream_model,
                "kind": kind,
                "api_key": bool(api_key),
                "weight": weight,
            },
        )
        s.commit()
        return dep


def set_price(
    engine: Engine,
    *,
    model: str,
    input_per_mtok: float,
    output_per_mtok: float,
    cached_input_per_mtok: float = 0.0,
    actor: str,
) -> None:
    if min(input_per_mtok, output_per_mtok, cached_input_per_mtok) < 0:
        raise ConfigError("prices cannot be negative")
    with session(engine) as s:
        row = s.get(ModelPrice, model) or ModelPrice(model=model)
        before = row.model_dump(include={"input_per_mtok", "output_per_mtok", "cached_input_per_mtok"})
        row.input_per_mtok, row.output_per_mtok = input_per_mtok, output_per_mtok
        row.cached_input_per_mtok, row.updated_at = cached_input_per_mtok, utcnow()
        s.add(row)
        record(
            s,
            actor=actor,
            action="price.set",
            target_type="model_price",
            target_id=model,
            before=before,
            after={
                "input_per_mtok": input_per_mtok,
                "output_per_mtok": output_per_mtok,
                "cached_input_per_mtok": cached_input_per_mtok,
            },
        )
        s.commit()
