"""The import plan: a validated document compared with the database, object by object.

Objects are matched by name. On update only the fields the document sets are compared and written (a field
left out keeps its stored value); a given field replaces the stored value whole. References (deployment ->
provider, alias -> deployments and fallbacks, budget -> team) must resolve in the state the import leaves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select

from llm_console.crypto import SecretBox
from llm_console.db.models import (
    AliasDeployment,
    Budget,
    Deployment,
    ModelAlias,
    ModelPrice,
    NetworkAllow,
    Provider,
    RateLimit,
    Team,
)
from llm_console.gateway.ssrf import AllowList, SSRFError, check_url_syntax
from llm_console.services.config_schema import ENV_PREFIX, KEYS, ConfigDocument, ConfigImportError
from llm_console.services.deployment_admin import clean_metrics_url
from llm_console.services.deployments import ConfigError, check_upstream_url, host_entry, never_allowlistable_host

SECTIONS = {
    "network_allowlist": "network_allow",
    "teams": "team",
    "providers": "provider",
    "deployments": "deployment",
    "aliases": "alias",
    "prices": "price",
    "budgets": "budget",
    "rate_limits": "rate_limit",
}
Stored = dict[str, dict[str, tuple[Any, dict[str, Any]]]]
# Every address passes: used to read a URL's normalised form before the real SSRF check.
ALLOW_ALL = AllowList(networks=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))


@dataclass
class Op:
    """One object's change. `values` are the fields to write; `before` their stored values (same keys)."""

    kind: str
    name: str
    action: str
    values: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    row: Any = None


def plan_document(
    s: Session,
    box: SecretBox,
    doc: ConfigDocument,
    *,
    allow_private: bool = False,
    extra_allowlist: Iterable[str] = (),
    env: Mapping[str, str],
) -> tuple[list[Op], list[str]]:
    """Every object's create/update/unchanged/delete, or ConfigImportError listing every problem found."""
    stored = read_stored(s)
    problems: list[str] = []
    warnings: list[str] = []
    ops: list[Op] = []
    for section, kind in SECTIONS.items():
        for i, item in enumerate(getattr(doc, section) or []):
            path = f"{section}[{i}]"
            name = getattr(item, KEYS[section])
            full = _desired(kind, item, env, problems, path)
            ops.append(_diff(box, kind, name, stored[kind].get(name), full, set(item.model_fields_set)))
            if kind == "provider":
                _key_warning(item, ops[-1], path, warnings)
    auto_allow = _check_urls(doc, ops, stored, allow_private, extra_allowlist, problems)
    ops += auto_allow
    ops += _prunes(doc, stored, keep={o.name for o in auto_allow})
    _check_references(doc, ops, stored, problems)
    if problems:
        raise ConfigImportError(problems)
    return ops, warnings


def read_stored(s: Session) -> Stored:
    """The database's objects by kind and name, as (row, comparable values)."""
    providers = list(s.exec(select(Provider)))
    p_names = {p.id: p.name for p in providers}
    deployments = list(s.exec(select(Deployment)))
    d_names = {d.id: d.name for d in deployments}
    targets: dict[int, list[dict[str, Any]]] = {}
    for link in s.exec(select(AliasDeployment)):
        if link.deployment_id in d_names:
            targets.setdefault(link.alias_id, []).append(
                {"deployment": d_names[link.deployment_id], "weight": link.weight}
            )
    teams = list(s.exec(select(Team)))
    t_names = {t.id: t.name for t in teams}
    stored: Stored = {
        "provider": {p.name: (p, {"kind": p.kind, "api_base": p.api_base, "enabled": p.enabled,
                                  "settings": p.settings or {}, "api_key": p.api_key_encrypted}) for p in providers},
        "deployment": {d.name: (d, {"provider": p_names.get(d.provider_id, ""), "model": d.model,
                                    "enabled": d.enabled, "max_concurrency": d.max_concurrency,
                                    "settings": d.settings or {}}) for d in deployments},
        "alias": {a.alias: (a, {"strategy": a.strategy, "policy": a.settings or {}, "info": a.info or {},
                                "deployments": _by_name(targets.get(a.id or -1, []))})
                  for a in s.exec(select(ModelAlias))},
        "price": {p.model: (p, {"input_per_mtok": p.input_per_mtok, "output_per_mtok": p.output_per_mtok,
                                "cached_input_per_mtok": p.cached_input_per_mtok}) for p in s.exec(select(ModelPrice))},
        "team": {t.name: (t, {"description": t.description}) for t in teams},
        "budget": {t_names[b.entity_id]: (b, {"daily_usd": b.daily_usd, "monthly_usd": b.monthly_usd})
                   for b in s.exec(select(Budget).where(Budget.entity_type == "team")) if b.entity_id in t_names},
        "rate_limit": {t_names[r.entity_id]: (r, {"rpm": r.rpm, "tpm": r.tpm, "rpd": r.rpd, "tpd": r.tpd})
                       for r in s.exec(select(RateLimit).where(RateLimit.entity_type == "team"))
                       if r.entity_id in t_names},
        "network_allow": {a.entry: (a, {"note": a.note}) for a in s.exec(select(NetworkAllow))},
    }  # fmt: skip
    return stored


def _by_name(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(targets, key=lambda t: str(t["deployment"]))


def _desired(kind: str, item: Any, env: Mapping[str, str], problems: list[str], path: str) -> dict[str, Any]:
    """Every field of a document object as the database stores it (names stand in for ids)."""
    data = item.model_dump(exclude_none=False)
    for key in ("settings", "policy"):
        if key in data:
            data[key] = getattr(item, key).model_dump(exclude_none=True)
    data.pop(KEYS[next(sec for sec, k in SECTIONS.items() if k == kind)], None)
    if kind == "provider":
        data.pop("has_api_key", None)
        key = data.pop("api_key", None)
        if key is not None:
            data["api_key"] = _resolve(key, env, problems, path)
    if kind == "alias":
        data["deployments"] = _by_name(data["deployments"])
    return data


def _resolve(value: str, env: Mapping[str, str], problems: list[str], path: str) -> str:
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    resolved = env.get(name, "")
    if not resolved.strip():
        problems.append(f"{path}.api_key: the environment variable {name} is not set where the import runs")
    elif any(c.isspace() or not c.isprintable() for c in resolved.strip()):
        problems.append(f"{path}.api_key: the environment variable {name} holds spaces or control characters")
    return resolved.strip()


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _diff(
    box: SecretBox,
    kind: str,
    name: str,
    stored: tuple[Any, dict[str, Any]] | None,
    full: dict[str, Any],
    given: set[str],
) -> Op:
    if stored is None:
        return Op(kind, name, "create", full)
    row, current = stored
    changed: dict[str, Any] = {}
    for key, value in full.items():
        if key not in given:
            continue
        if key == "api_key":
            if not _same_secret(box, current.get("api_key"), value):
                changed[key] = value
        elif _normal(current.get(key)) != _normal(value):
            changed[key] = value
    before = {k: current.get(k) for k in changed}
    return Op(kind, name, "update" if changed else "unchanged", changed, before, row)


def _same_secret(box: SecretBox, token: str | None, plain: str) -> bool:
    if not token:
        return False
    try:
        return box.decrypt(token) == plain
    except ValueError:
        return False


def _key_warning(item: Any, op: Op, path: str, warnings: list[str]) -> None:
    has_stored = bool(op.row is not None and op.row.api_key_encrypted)
    if item.has_api_key and item.api_key is None and not has_stored:
        warnings.append(f"{path} ({item.name[:80]}): has_api_key is true but no key is stored and none is given; "
                        "add api_key: os.environ/NAME")  # fmt: skip


def _check_urls(
    doc: ConfigDocument,
    ops: list[Op],
    stored: Stored,
    allow_private: bool,
    extra: Iterable[str],
    problems: list[str],
) -> list[Op]:
    """SSRF guard for new or changed base URLs, which are stored normalised (as add_deployment stores them);
    `allow_private` allow-lists refused private and loopback hosts (planned and audited like any change)."""
    entries = [*extra, *stored["network_allow"], *(a.entry for a in doc.network_allowlist or [])]
    added: list[Op] = []
    for i, op in enumerate(o for o in ops if o.kind == "provider"):
        url = op.values.get("api_base")
        if op.action not in ("create", "update") or url is None:
            continue
        try:
            url = check_url_syntax(url, ALLOW_ALL)
            normalised = check_upstream_url(url, AllowList.parse(entries))
        except SSRFError as exc:
            problems.append(f"providers[{i}].api_base: {exc}")
            continue
        except ConfigError as exc:
            normalised, reason = "", str(exc)
            host = urlsplit(url).hostname or ""
            never = never_allowlistable_host(host) if allow_private else None
            if allow_private and never is None:
                entries.append(host_entry(url))
                note = f"config import: provider {op.name}"[:500]
                added.append(Op("network_allow", host_entry(url), "create", {"note": note}))
                try:
                    normalised = check_upstream_url(url, AllowList.parse(entries))
                except ConfigError as again:
                    reason = str(again)
            if not normalised:
                hint = (
                    f" ({never})"
                    if never
                    else ""
                    if allow_private
                    else " (if this network is yours, an admin can import with 'allow private hosts')"
                )
                problems.append(f"providers[{i}].api_base: {reason}{hint}")
                continue
        _set_url(op, normalised)
    return list({o.name: o for o in added}.values())


def _set_url(op: Op, url: str) -> None:
    """Store the normalised URL; a URL that only differed in spelling from the stored one is no change."""
    if op.action == "update" and url == op.before.get("api_base"):
        op.values.pop("api_base")
        op.before.pop("api_base")
        if not op.values:
            op.action = "unchanged"
    else:
        op.values["api_base"] = url


def _prunes(doc: ConfigDocument, stored: Stored, keep: set[str]) -> list[Op]:
    """With `prune: true`, stored objects missing from a section the document contains; plus what goes with them."""
    if not doc.prune:
        return []
    ops: list[Op] = []
    gone: dict[str, set[str]] = {kind: set() for kind in SECTIONS.values()}
    for section, kind in SECTIONS.items():
        items = getattr(doc, section)
        if items is None:
            continue
        named = {getattr(item, KEYS[section]) for item in items} | (keep if kind == "network_allow" else set())
        gone[kind] = set(stored[kind]) - named
    in_doc = {k: {getattr(i, KEYS[sec]) for i in getattr(doc, sec) or []} for sec, k in SECTIONS.items()}
    # Deleting a provider deletes its deployments, and a team its budget and limits (no foreign key there).
    for name, (_, values) in stored["deployment"].items():
        if values["provider"] in gone["provider"] and name not in in_doc["deployment"]:
            gone["deployment"].add(name)
    for kind in ("budget", "rate_limit"):
        gone[kind] |= {n for n in stored[kind] if n in gone["team"] and n not in in_doc[kind]}
    for kind, names in gone.items():
        for name in sorted(names):
            row, values = stored[kind][name]
            ops.append(Op(kind, name, "delete", {}, dict(values), row))
    return ops


def _check_references(doc: ConfigDocument, ops: list[Op], stored: Stored, problems: list[str]) -> None:
    deleted = {(o.kind, o.name) for o in ops if o.action == "delete"}

    def final(kind: str, section: str) -> set[str]:
        named = {getattr(i, KEYS[section]) for i in getattr(doc, section) or []}
        return named | {n for n in stored[kind] if (kind, n) not in deleted}

    providers, deployments = final("provider", "providers"), final("deployment", "deployments")
    aliases, teams = final("alias", "aliases"), final("team", "teams")
    bases = {name: values["api_base"] for name, (_, values) in stored["provider"].items()}
    bases |= {p.name: p.api_base for p in doc.providers or []}
    for i, dep in enumerate(doc.deployments or []):
        if dep.provider not in providers:
            problems.append(f"deployments[{i}].provider: no provider {dep.provider[:80]!r} in the document or database")
        elif dep.settings.metrics_url and dep.provider in bases:
            try:  # the same rule as the deployment form: never a scrape of another host
                clean_metrics_url(dep.settings.metrics_url, bases[dep.provider])
            except ConfigError as exc:
                problems.append(f"deployments[{i}].settings.metrics_url: {exc}")
    for i, alias in enumerate(doc.aliases or []):
        for j, target in enumerate(alias.deployments):
            if target.deployment not in deployments:
                problems.append(f"aliases[{i}].deployments[{j}].deployment: no deployment {target.deployment[:80]!r} "
                                "in the document or database")  # fmt: skip
        for j, fallback in enumerate(alias.policy.fallbacks or []):
            if fallback == alias.alias:
                problems.append(f"aliases[{i}].policy.fallbacks[{j}]: an alias cannot fall back to itself")
            elif fallback not in aliases:
                problems.append(f"aliases[{i}].policy.fallbacks[{j}]: no alias {fallback[:80]!r}")
    in_doc = {a.alias: i for i, a in enumerate(doc.aliases or []) if "policy" in a.model_fields_set}
    for name, (_, values) in stored["alias"].items():
        if name in in_doc or ("alias", name) in deleted:
            continue
        gone = [f for f in values["policy"].get("fallbacks") or [] if isinstance(f, str) and f not in aliases]
        if gone:
            problems.append(f"alias {name[:80]!r} falls back to {gone[0][:80]!r}, which this import removes; "
                            "give that alias a policy without it")  # fmt: skip
    for section in ("budgets", "rate_limits"):
        for i, item in enumerate(getattr(doc, section) or []):
            if item.team not in teams:
                problems.append(f"{section}[{i}].team: no team {item.team[:80]!r} in the document or database")
