"""Config as code: the whole configuration exported as YAML, and a document (or a LiteLLM config) imported as a
plan of per-object changes. A dry run shows the plan; apply re-plans and writes it in one audited transaction.

Import never deletes unless the document says `prune: true`, and then only in the sections it contains.
Secrets never leave: export writes `has_api_key`, diffs say "(set)"/"(changed)", audit rows hold booleans.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from llm_console.auth.roles import has_role_name
from llm_console.crypto import SecretBox
from llm_console.db.engine import session
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
    utcnow,
)
from llm_console.services.audit import record
from llm_console.services.catalog_info import clean_info
from llm_console.services.config_plan import Op, plan_document
from llm_console.services.config_schema import ConfigDocument, ConfigImportError, load_yaml, parse_document
from llm_console.services.litellm_import import convert_litellm

# Organization objects and exceptions to the SSRF guard (typed, or planned by "allow private hosts") are an admin's.
ADMIN_KINDS = frozenset({"team", "budget", "rate_limit", "network_allow"})
HEADER = "# LLM Console configuration (config as code). Secrets are never exported: see docs/config-as-code.md.\n"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class ObjectChange:
    kind: str  # provider | deployment | alias | price | team | budget | rate_limit | network_allow
    name: str
    action: str  # create | update | delete | unchanged
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What an import does (or did), object by object; no secret values anywhere in it."""

    changes: tuple[ObjectChange, ...]
    warnings: tuple[str, ...] = ()
    source: str = "yaml"
    prune: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def rows(self) -> list[dict[str, str]]:
        """The changed objects as display rows: kind, name, action and one "field: before → after" line each."""
        return [
            {
                "kind": KIND_LABELS.get(c.kind, c.kind),
                "name": c.name,
                "action": c.action,
                "changes": "\n".join(
                    f"{f.field}: {f.after}" if c.action == "create" else f"{f.field}: {f.before} → {f.after}"
                    for f in c.fields
                ),
            }
            for c in self.changes
            if c.action != "unchanged"
        ]

    def summary(self) -> str:
        parts = [f"{self.counts.get(a, 0)} {label}" for a, label in _LABELS]
        return ", ".join(parts) if self.has_changes else f"no changes ({self.counts.get('unchanged', 0)} unchanged)"


KIND_LABELS = {"rate_limit": "rate limit", "network_allow": "allow-list entry"}
_LABELS = (("create", "to create"), ("update", "to update"), ("delete", "to delete"), ("unchanged", "unchanged"))


def read_document(text: str, *, litellm: bool = False) -> tuple[ConfigDocument, list[str]]:
    """Parse YAML text as our document, or as a LiteLLM proxy config converted to one (with warnings)."""
    data = load_yaml(text)
    if not litellm:
        return parse_document(data), []
    converted, warnings = convert_litellm(data)
    return parse_document(converted), warnings


def preview_import(
    engine: Engine,
    box: SecretBox,
    text: str,
    *,
    litellm: bool = False,
    allow_private: bool = False,
    role: str = "admin",
    extra_allowlist: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> ImportPlan:
    """The dry run: validate and diff against the database, change nothing."""
    doc, warnings = read_document(text, litellm=litellm)
    with session(engine) as s:
        ops, more = plan_document(
            s, box, doc, allow_private=allow_private, extra_allowlist=extra_allowlist, env=_env(env)
        )
        s.rollback()
    warnings += more
    if refused := _refused_kinds(ops, role):
        warnings.append(f"only an admin can change {refused} objects: applying will be refused")
    return _public(ops, warnings, "litellm" if litellm else "yaml", doc.prune)


def apply_import(
    engine: Engine,
    box: SecretBox,
    text: str,
    *,
    actor: str,
    litellm: bool = False,
    allow_private: bool = False,
    role: str = "admin",
    extra_allowlist: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> ImportPlan:
    """Re-validate, re-plan and write every change in one transaction (all or nothing), audited per object."""
    doc, warnings = read_document(text, litellm=litellm)
    source = "litellm" if litellm else "yaml"
    with session(engine) as s:
        ops, more = plan_document(
            s, box, doc, allow_private=allow_private, extra_allowlist=extra_allowlist, env=_env(env)
        )
        changed = [o for o in ops if o.action != "unchanged"]
        if refused := _refused_kinds(changed, role):
            raise ConfigImportError([f"only an admin can change {refused} objects; nothing was written"])
        plan = _public(ops, warnings + more, source, doc.prune)
        if not changed:
            return plan
        try:
            for op in sorted(changed, key=_write_order):
                if op.action == "delete":
                    s.delete(op.row)
                else:
                    _WRITERS[op.kind](s, op, box, actor)
                s.flush()
                _audit(s, op, actor)
            record(
                s,
                actor=actor,
                action="config.import",
                target_type="config",
                target_id=source,
                after={**{a: plan.counts.get(a, 0) for a, _ in _LABELS}, "prune": doc.prune, "source": source},
            )
            s.commit()
        except SQLAlchemyError as exc:
            s.rollback()
            reason = type(getattr(exc, "orig", None) or exc).__name__
            raise ConfigImportError([f"the database refused the import ({reason}); nothing was written"]) from None
    return plan


def _refused_kinds(ops: list[Op], role: str) -> str:
    """The admin-only kinds of object `ops` change, named, when `role` is not an admin's; else ""."""
    kinds = {o.kind for o in ops if o.kind in ADMIN_KINDS and o.action != "unchanged"}
    return "" if has_role_name(role, "admin") else ", ".join(sorted(KIND_LABELS.get(k, k) for k in kinds))


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


_KIND_ORDER = ("network_allow", "team", "provider", "deployment", "alias", "price", "budget", "rate_limit")


def _write_order(op: Op) -> tuple[int, int]:
    """Creates and updates parents first; deletes last, children first."""
    rank = _KIND_ORDER.index(op.kind)
    return (1, -rank) if op.action == "delete" else (0, rank)


def _public(ops: list[Op], warnings: list[str], source: str, prune: bool) -> ImportPlan:
    counts = {a: 0 for a, _ in _LABELS}
    changes = []
    for op in sorted(ops, key=lambda o: (_KIND_ORDER.index(o.kind), o.name)):
        counts[op.action] += 1
        fields = tuple(
            FieldChange(name, *_shown(name, op.before.get(name), value, op.action))
            for name, value in op.values.items()
            if op.action in ("create", "update")
        )
        changes.append(ObjectChange(op.kind, op.name, op.action, fields))
    return ImportPlan(tuple(changes), tuple(dict.fromkeys(warnings)), source, prune, counts)


def _shown(name: str, before: Any, after: Any, action: str) -> tuple[str, str]:
    if name == "api_key":
        return ("" if action == "create" else "(set)" if before else "(none)"), ("(changed)" if before else "(set)")
    return ("" if action == "create" else _text(before)), _text(after)


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    text = str(value)
    return text if len(text) <= 300 else text[:299] + "…"


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (bool(v) if k == "api_key" else v) for k, v in values.items()}


def _audit(s: Session, op: Op, actor: str) -> None:
    before = None if op.action == "create" else _masked(op.before)
    after = None if op.action == "delete" else _masked(op.values)
    record(s, actor=actor, action=f"{op.kind}.{op.action}", target_type=op.kind, target_id=op.name[:100],
           before=before, after=after)  # fmt: skip


def _id(s: Session, model: Any, column: Any, name: str) -> int:
    row = s.exec(select(model).where(column == name)).one()
    return int(row.id)


def _set(row: Any, values: dict[str, Any], renames: Mapping[str, str] = {}) -> None:
    for key, value in values.items():
        setattr(row, renames.get(key, key), value)


def _write_provider(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or Provider(name=op.name, api_base="")
    values = dict(op.values)
    if "api_key" in values:
        row.api_key_encrypted = box.encrypt(values.pop("api_key"))
    _set(row, values)
    s.add(row)


def _write_deployment(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or Deployment(name=op.name, provider_id=0, model="")
    values = dict(op.values)
    if "provider" in values:
        row.provider_id = _id(s, Provider, Provider.name, values.pop("provider"))
    _set(row, values)
    s.add(row)


def _write_alias(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or ModelAlias(alias=op.name)
    values = dict(op.values)
    targets = values.pop("deployments", None)
    _set(row, values, {"policy": "settings"})
    s.add(row)
    s.flush()
    if targets is None:
        return
    links = {
        link.deployment_id: link for link in s.exec(select(AliasDeployment).where(AliasDeployment.alias_id == row.id))
    }
    wanted = {_id(s, Deployment, Deployment.name, t["deployment"]): t["weight"] for t in targets}
    for dep_id, link in links.items():
        if dep_id not in wanted:
            s.delete(link)
    for dep_id, weight in wanted.items():
        link = links.get(dep_id) or AliasDeployment(alias_id=row.id, deployment_id=dep_id)  # type: ignore[arg-type]
        link.weight = weight
        s.add(link)


def _write_price(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or ModelPrice(model=op.name)
    _set(row, op.values)
    row.updated_at = utcnow()
    s.add(row)


def _write_team(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or Team(name=op.name)
    _set(row, op.values)
    s.add(row)


def _team_limit(model: type[Budget] | type[RateLimit]) -> Any:
    def write(s: Session, op: Op, box: SecretBox, actor: str) -> None:
        row = op.row or model(entity_type="team", entity_id=_id(s, Team, Team.name, op.name))
        _set(row, op.values)
        row.updated_at = utcnow()
        s.add(row)

    return write


def _write_allow(s: Session, op: Op, box: SecretBox, actor: str) -> None:
    row = op.row or NetworkAllow(entry=op.name, created_by=actor)
    _set(row, op.values)
    s.add(row)


# How a create or update of each kind is written (a delete is the same for all: apply_import does it).
_WRITERS = {
    "provider": _write_provider,
    "deployment": _write_deployment,
    "alias": _write_alias,
    "price": _write_price,
    "team": _write_team,
    "budget": _team_limit(Budget),
    "rate_limit": _team_limit(RateLimit),
    "network_allow": _write_allow,
}


def export_document(engine: Engine) -> dict[str, Any]:
    """Everything the document manages, names instead of ids, sorted, with no secret value."""
    with session(engine) as s:
        providers = sorted(s.exec(select(Provider)), key=lambda r: r.name)
        names = {p.id: p.name for p in providers}
        deployments = sorted(s.exec(select(Deployment)), key=lambda r: r.name)
        dep_names = {d.id: d.name for d in deployments}
        aliases = sorted(s.exec(select(ModelAlias)), key=lambda r: r.alias)
        links: dict[int, list[AliasDeployment]] = {}
        for link in s.exec(select(AliasDeployment)):
            links.setdefault(link.alias_id, []).append(link)
        teams = sorted(s.exec(select(Team)), key=lambda r: r.name)
        team_names = {t.id: t.name for t in teams}
        budgets = [b for b in s.exec(select(Budget).where(Budget.entity_type == "team")) if b.entity_id in team_names]
        limits = [
            r for r in s.exec(select(RateLimit).where(RateLimit.entity_type == "team")) if r.entity_id in team_names
        ]
        prices = sorted(s.exec(select(ModelPrice)), key=lambda r: r.model)
        allows = sorted(s.exec(select(NetworkAllow)), key=lambda r: r.entry)
    by_team = lambda row: team_names[row.entity_id]  # noqa: E731
    return {
        "version": 1,
        "prune": False,
        "providers": [
            {"name": p.name, "kind": p.kind, "api_base": p.api_base, "enabled": p.enabled,
             "settings": _sorted(p.settings), "has_api_key": bool(p.api_key_encrypted)}
            for p in providers
        ],
        "deployments": [
            {"name": d.name, "provider": names[d.provider_id], "model": d.model, "enabled": d.enabled,
             "max_concurrency": d.max_concurrency, "settings": _sorted(d.settings)}
            for d in deployments
        ],
        "aliases": [
            {"alias": a.alias, "strategy": a.strategy, "policy": _sorted(a.settings),
             "deployments": sorted(({"deployment": dep_names[x.deployment_id], "weight": x.weight}
                                    for x in links.get(a.id or -1, [])), key=lambda t: str(t["deployment"])),
             "info": _sorted(clean_info(a.info or {}))}
            for a in aliases
        ],
        "prices": [
            {"model": p.model, "input_per_mtok": p.input_per_mtok, "output_per_mtok": p.output_per_mtok,
             "cached_input_per_mtok": p.cached_input_per_mtok}
            for p in prices
        ],
        "teams": [{"name": t.name, "description": t.description} for t in teams],
        "budgets": sorted(({"team": by_team(b), "daily_usd": b.daily_usd, "monthly_usd": b.monthly_usd}
                           for b in budgets), key=lambda r: str(r["team"])),
        "rate_limits": sorted(({"team": by_team(r), "rpm": r.rpm, "tpm": r.tpm, "rpd": r.rpd, "tpd": r.tpd}
                               for r in limits), key=lambda r: str(r["team"])),
        "network_allowlist": [{"entry": a.entry, "note": a.note} for a in allows],
    }  # fmt: skip


def export_config(engine: Engine) -> str:
    """The configuration as YAML text: stable order, so two exports of one database are identical."""
    body = yaml.safe_dump(export_document(engine), sort_keys=False, allow_unicode=True, width=120)
    return HEADER + body


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
