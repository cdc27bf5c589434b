"""Providers, deployments, aliases and prices: created here, audited, secrets encrypted."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, NetworkAllow, Provider, utcnow
from llm_console.gateway.ssrf import AllowList, SSRFError, check_ip, check_url_syntax, never_allowlistable
from llm_console.services.audit import record

PROVIDER_KINDS = ("openai", "anthropic", "azure")


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


def allowlist(engine: Engine, extra: Iterable[str] = ()) -> AllowList:
    """The SSRF allow-list in force: the stored entries plus `LLMC_UPSTREAM_ALLOWLIST`."""
    with session(engine) as s:
        stored = [row.entry for row in s.exec(select(NetworkAllow))]
    return AllowList.parse([*extra, *stored])


def check_upstream_url(url: str, allow: AllowList) -> str:
    """Refuse URLs that reach loopback, private, link-local or metadata addresses unless allow-listed.

    Names that resolve now are checked against every address they resolve to; names that do not resolve
    yet are accepted here, and the gateway's resolver checks them again on every connection.
    """
    try:
        url = check_url_syntax(url, allow)
    except SSRFError as exc:
        raise ConfigError(str(exc)) from None
    host = urlsplit(url).hostname or ""
    if allow.allows_host(host):
        return url
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return url
    for info in infos:
        try:
            check_ip(ipaddress.ip_address(str(info[4][0]).split("%")[0]), allow, host=host)
        except SSRFError as exc:
            raise ConfigError(str(exc)) from None
    return url


def never_allowlistable_host(host: str) -> str | None:
    """Why a host may not be allow-listed by "this private host is ours": it is, or resolves to, an address
    no form or import may admit (link-local metadata, multicast, reserved); None when it may."""
    for ip in host_addresses(host):
        why = never_allowlistable(ip)
        if why is not None:
            return why
    return None


def allow_private_host(engine: Engine, api_base: str, *, actor: str, note: str) -> None:
    """The admin's "this private host is ours": put `api_base`'s host on the allow-list (audited), unless it
    is one no one may admit that way."""
    why = never_allowlistable_host(urlsplit(api_base).hostname or "")
    if why is not None:
        raise ConfigError(f"{why}; it cannot be allow-listed from the console or the CLI")
    allow_network(engine, host_entry(api_base), actor=actor, note=note)


def allow_network(engine: Engine, entry: str, *, actor: str, note: str = "") -> NetworkAllow:
    """Add a CIDR, address or host name (`*.suffix` too) to the SSRF allow-list (audited)."""
    entry = entry.strip()
    try:
        AllowList.parse([entry])
    except SSRFError as exc:
        raise ConfigError(str(exc)) from None
    with session(engine) as s:
        row = s.exec(select(NetworkAllow).where(NetworkAllow.entry == entry)).first()
        if row is not None:
            return row
        row = NetworkAllow(entry=entry, note=note[:500], created_by=actor)
        s.add(row)
        s.flush()
        record(
            s, actor=actor, action="allowlist.add", target_type="network_allow", target_id=entry, after={"note": note}
        )
        s.commit()
        s.refresh(row)
        return row


def host_addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host itself when it is an IP literal, else every address it resolves to now (none when it does not)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return []
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def host_entry(api_base: str) -> str:
    """The allow-list entry that admits exactly this URL's host."""
    host = urlsplit(api_base).hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    return f"{ip}/{ip.max_prefixlen}"


MAX_BASE_NAME = 190  # room for " #N" within the 200-character name


def deployment_base_name(model: str, api_base: str, kind: str) -> str:
    """The default name of a deployment: `model@host:port`, with the provider kind unless it is openai."""
    base = f"{model}@{urlsplit(api_base).netloc}" + ("" if kind == "openai" else f" ({kind})")
    return base[:MAX_BASE_NAME]


def unique_deployment_name(s: Session, base: str) -> str:
    """`base`, or `base #2`, `#3`, ... : the first no deployment uses yet (names compare ignoring case)."""
    name, n = base, 1
    while s.exec(select(Deployment.id).where(func.lower(Deployment.name) == name.lower())).first() is not None:
        n += 1
        name = f"{base} #{n}"
    return name


def route_alias(s: Session, alias: str, deployment_id: int, weight: int) -> None:
    """Route `alias` (created if missing) to the deployment with `weight`, in the caller's transaction."""
    row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first()
    if row is None:
        row = ModelAlias(alias=alias)
        s.add(row)
        s.flush()
    assert row.id is not None
    link = s.get(AliasDeployment, (row.id, deployment_id))
    if link is None:
        s.add(AliasDeployment(alias_id=row.id, deployment_id=deployment_id, weight=weight))
    else:
        link.weight = weight
        s.add(link)


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
    allow_private: bool = False,
    extra_allowlist: Iterable[str] = (),
    provider_settings: dict[str, str] | None = None,
    max_concurrency: int | None = None,
) -> Deployment:
    """Create a provider + deployment for `base_url` and route `alias` to it.

    The URL passes the SSRF guard first; `allow_private=True` is the admin saying "this private host is
    ours": its host goes on the allow-list (audited) before the check.
    """
    alias = alias.strip()
    if not alias or len(alias) > 300:
        raise ConfigError("alias must be 1-300 characters")
    if kind not in PROVIDER_KINDS:
        raise ConfigError(f"provider kind must be one of: {', '.join(PROVIDER_KINDS)}")
    if weight < 0:
        raise ConfigError("weight must be >= 0")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigError("max concurrency must be >= 1")
    api_base = validate_base_url(base_url)
    if allow_private:
        allow_private_host(engine, api_base, actor=actor, note=f"deployment {alias}")
    api_base = check_upstream_url(api_base, allowlist(engine, extra_allowlist))
    upstream_model = (model or alias).strip()
    with session(engine) as s:
        provider = s.exec(select(Provider).where(Provider.api_base == api_base, Provider.kind == kind)).first()
        if provider is None:
            provider = Provider(name=f"{kind}:{api_base}", kind=kind, api_base=api_base)
        if api_key:
            provider.api_key_encrypted = box.encrypt(api_key)
        if provider_settings:
            provider.settings = {**(provider.settings or {}), **provider_settings}
        s.add(provider)
        s.flush()
        # One deployment per (provider, model): the same model on the same host under another provider kind
        # or base path is a different deployment, with a name kept unique.
        dep = s.exec(
            select(Deployment).where(Deployment.provider_id == provider.id, Deployment.model == upstream_model)
        ).first()
        if dep is None:
            name = unique_deployment_name(s, deployment_base_name(upstream_model, api_base, kind))
            dep = Deployment(name=name, provider_id=provider.id, model=upstream_model)  # type: ignore[arg-type]
        if max_concurrency is not None:
            dep.max_concurrency = max_concurrency
        s.add(dep)
        s.flush()
        assert dep.id is not None
        route_alias(s, alias, dep.id, weight)
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


TIMEOUT_FIELDS = ("connect_s", "first_byte_s", "idle_s", "total_s")


def set_route_policy(
    engine: Engine,
    *,
    alias: str,
    actor: str,
    strategy: str | None = None,
    fallbacks: list[str] | None = None,
    retries: int | None = None,
    backoff_ms: float | None = None,
    retry_after_cap_s: float | None = None,
    timeouts: dict[str, float] | None = None,
) -> ModelAlias:
    """Change an alias's routing policy; only the arguments given change (audited, before and after)."""
    from llm_console.gateway.routing import STRATEGIES

    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of: {', '.join(STRATEGIES)}")
    if retries is not None and not 0 <= retries <= 10:
        raise ConfigError("retries must be between 0 and 10")
    for name, value in (("backoff_ms", backoff_ms), ("retry_after_cap_s", retry_after_cap_s)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} cannot be negative")
    for name, value in (timeouts or {}).items():
        if name not in TIMEOUT_FIELDS or not value > 0:
            raise ConfigError(f"timeout {name} must be one of {', '.join(TIMEOUT_FIELDS)} and positive")
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first()
        if row is None:
            raise ConfigError(f"no alias {alias!r}; create it with add-deployment first")
        if fallbacks is not None:
            from llm_console.gateway.routing import Policy
            from llm_console.services.routing_rules import check_fallbacks

            graph = {a.alias: Policy.from_settings(a.settings).fallbacks for a in s.exec(select(ModelAlias))}
            fallbacks = list(check_fallbacks(alias, fallbacks, graph))
        before = {"strategy": row.strategy, **row.settings}
        policy = dict(row.settings or {})
        changes: dict[str, object] = {
            "fallbacks": fallbacks,
            "retries": retries,
            "backoff_ms": backoff_ms,
            "retry_after_cap_s": retry_after_cap_s,
        }
        policy.update({name: value for name, value in changes.items() if value is not None})
        if timeouts:
            policy["timeouts"] = {**policy.get("timeouts", {}), **timeouts}
        row.settings = policy
        if strategy is not None:
            row.strategy = strategy
        s.add(row)
        record(
            s,
            actor=actor,
            action="route.update",
            target_type="model_alias",
            target_id=alias[:100],
            before=before,
            after={"strategy": row.strategy, **policy},
        )
        s.commit()
        s.refresh(row)
        return row
