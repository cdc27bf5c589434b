"""The model catalog: one entry per alias (what clients call) with its deployments, metadata and health.

What an operator set (`ModelAlias.info`) wins over what the deployments' own `/v1/models` said
(`Deployment.discovered`); a type neither gives is guessed from the alias's traffic or name and marked as a
guess. Provider keys are never read here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, DeploymentHealth, ModelAlias, ModelPrice, Provider
from llm_console.db.queries import usage
from llm_console.services.audit import record
from llm_console.services.catalog_info import CAPABILITY_FLAGS, HF_REPO, CatalogError, clean_info, validate_info

SORT_KEYS = ("alias", "type", "provider", "size", "quantization", "context", "availability", "hf")
AVAILABILITY_ORDER = ("available", "loading", "error", "unknown", "disabled", "no deployment")
TRAFFIC_WINDOW = timedelta(days=7)
COMPARE_WINDOW = timedelta(hours=24)
ENDPOINT_TYPES = {"/v1/embeddings": "embedding", "/v1/rerank": "reranker"}  # anything else served is an LLM

__all__ = ["SORT_KEYS", "CatalogError", "Entry", "compare", "get_entry", "list_entries", "update_info"]


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """One deployment behind an alias: where it runs, its last health check and what it reported about itself."""

    id: int
    name: str
    model: str
    provider: str
    provider_kind: str
    api_base: str  # the upstream URL: operators only (the presenter drops it for other roles)
    enabled: bool
    weight: int
    status: str
    checked_at: datetime | None
    last_error: str
    max_model_len: int | None
    owned_by: str
    root: str


@dataclass(frozen=True, slots=True)
class Price:
    model: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float


@dataclass(frozen=True, slots=True)
class Entry:
    """An alias's effective metadata; `*_source` says where a value came from ("set", "discovered", a guess)."""

    alias: str
    info: dict[str, Any]  # what an operator stored, as stored (the edit form starts from it)
    type: str  # llm | embedding | reranker | "" (unknown)
    type_source: str  # set | traffic | name | ""
    description: str
    size: str
    quantization: str
    context_length: int | None
    context_source: str  # set | discovered | ""
    hf_repo: str
    hf_source: str  # set | discovered | ""
    capabilities: dict[str, bool | None]
    embedding_dims: int | None
    version: str
    deprecated: bool
    deprecation_note: str
    sunset_date: date | None
    availability: str
    available_count: int
    enabled_count: int
    deployments: tuple[DeploymentFacts, ...]
    prices: tuple[Price, ...]

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.provider for d in self.deployments))

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.model for d in self.deployments))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def availability(deployments: Iterable[DeploymentFacts]) -> tuple[str, int, int]:
    """(status, available, enabled): available when any enabled deployment is, else its best other state."""
    deps = list(deployments)
    enabled = [d for d in deps if d.enabled]
    if not deps:
        return "no deployment", 0, 0
    if not enabled:
        return "disabled", 0, 0
    seen = Counter(d.status for d in enabled)
    n = seen["available"]
    for status in ("available", "loading", "error"):
        if seen[status]:
            return status, n, len(enabled)
    return "unknown", n, len(enabled)


def guess_type(alias: str, models: Iterable[str], traffic: Counter[str] | None) -> tuple[str, str]:
    """(type, source): from the endpoint most of the alias's recent calls used, else from a telling name."""
    if traffic:
        endpoint, _ = traffic.most_common(1)[0]
        return ENDPOINT_TYPES.get(endpoint, "llm"), "traffic"
    names = " ".join([alias, *models]).lower()
    if "rerank" in names:
        return "reranker", "name"
    if "embed" in names:
        return "embedding", "name"
    return "", ""


def _traffic(engine: Engine, now: datetime) -> dict[str, Counter[str]]:
    """Requests per endpoint per alias over the last week (from the rollups, never the request log)."""
    out: dict[str, Counter[str]] = {}
    rows = usage.breakdown(
        engine, now - TRAFFIC_WINDOW, now, "endpoint_alias", order_by="requests", limit=10_000, hist=False
    )
    for value, totals in rows:
        endpoint, _, alias = value.partition("|")
        if totals.requests:
            out.setdefault(alias, Counter())[endpoint] += totals.requests
    return out


def provider_label(name: str, kind: str, api_base: str, *, show_upstream: bool) -> str:
    """A provider's name; for roles below operator, a name that spells out its upstream URL shows as its kind."""
    if show_upstream or not ("://" in name or (api_base and api_base in name)):
        return name
    return kind


def _deployments(s: Any, alias_ids: list[int], show_upstream: bool) -> dict[int, list[DeploymentFacts]]:
    links = s.exec(select(AliasDeployment).where(AliasDeployment.alias_id.in_(alias_ids))).all()  # type: ignore[attr-defined]
    dep_ids = sorted({link.deployment_id for link in links})
    deps = {d.id: d for d in s.exec(select(Deployment).where(Deployment.id.in_(dep_ids)))}  # type: ignore[union-attr]
    # Only the columns the catalog shows: the encrypted provider key is never loaded.
    providers = {
        r[0]: r[1:] for r in s.exec(select(Provider.id, Provider.name, Provider.kind, Provider.api_base)).all()
    }
    checks = select(DeploymentHealth).where(DeploymentHealth.deployment_id.in_(dep_ids))  # type: ignore[attr-defined]
    health = {h.deployment_id: h for h in s.exec(checks)}
    out: dict[int, list[DeploymentFacts]] = {}
    for link in links:
        dep = deps.get(link.deployment_id)
        if dep is None or dep.id is None:
            continue
        name, kind, api_base = providers.get(dep.provider_id, ("?", "?", ""))
        found = dep.discovered if isinstance(dep.discovered, dict) else {}
        h = health.get(dep.id)
        out.setdefault(link.alias_id, []).append(
            DeploymentFacts(
                id=dep.id,
                name=dep.name,
                model=dep.model,
                provider=provider_label(name, kind, api_base, show_upstream=show_upstream),
                provider_kind=kind,
                api_base=api_base if show_upstream else "",
                enabled=dep.enabled,
                weight=link.weight,
                status=h.status if h is not None else "unknown",
                checked_at=h.checked_at if h is not None else None,
                last_error=(h.last_error or "") if h is not None else "",
                max_model_len=_int(found.get("max_model_len")),
                owned_by=str(found.get("owned_by") or "")[:200],
                root=str(found.get("root") or "")[:300],
            )
        )
    for facts in out.values():
        facts.sort(key=lambda d: (-d.weight, d.name))
    return out


def _entry(
    row: ModelAlias, deps: list[DeploymentFacts], prices: dict[str, Price], traffic: Counter[str] | None
) -> Entry:
    info = clean_info(row.info if isinstance(row.info, dict) else {})
    models = [d.model for d in deps]
    kind, kind_source = (info["type"], "set") if info.get("type") else guess_type(row.alias, models, traffic)
    found_len = [d.max_model_len for d in deps if d.max_model_len]
    context, context_source = (info["context_length"], "set") if info.get("context_length") else (None, "")
    if context is None and found_len:
        context, context_source = min(found_len), "discovered"
    hf, hf_source = (info["hf_repo"], "set") if info.get("hf_repo") else ("", "")
    if not hf:
        roots = [d.root for d in deps if HF_REPO.fullmatch(d.root)]
        hf, hf_source = (roots[0], "discovered") if roots else ("", "")
    caps = info.get("capabilities", {})
    status, available, enabled = availability(deps)
    sunset = info.get("sunset_date")
    return Entry(
        alias=row.alias,
        info=dict(row.info or {}),
        type=kind,
        type_source=kind_source,
        description=info.get("description", ""),
        size=info.get("size", ""),
        quantization=info.get("quantization", ""),
        context_length=context,
        context_source=context_source,
        hf_repo=hf,
        hf_source=hf_source,
        capabilities={flag: caps.get(flag) for flag in CAPABILITY_FLAGS},
        embedding_dims=caps.get("embedding_dims"),
        version=info.get("version", ""),
        deprecated=bool(info.get("deprecated")),
        deprecation_note=info.get("deprecation_note", ""),
        sunset_date=date.fromisoformat(sunset) if sunset else None,
        availability=status,
        available_count=available,
        enabled_count=enabled,
        deployments=tuple(deps),
        prices=tuple(prices[m] for m in dict.fromkeys(models) if m in prices),
    )


def _load(engine: Engine, aliases: list[str] | None, now: datetime | None, show_upstream: bool) -> list[Entry]:
    """Entries for `aliases` (all when None); upstream URLs only with `show_upstream` (operators and admins)."""
    with session(engine) as s:
        stmt = select(ModelAlias).order_by(ModelAlias.alias)
        if aliases is not None:
            stmt = stmt.where(ModelAlias.alias.in_(aliases))  # type: ignore[attr-defined]
        rows = list(s.exec(stmt))
        deps = _deployments(s, [r.id for r in rows if r.id is not None], show_upstream)
        prices = {
            p.model: Price(p.model, p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
            for p in s.exec(select(ModelPrice))
        }
    untyped = any(not (isinstance(r.info, dict) and r.info.get("type")) for r in rows)
    traffic = _traffic(engine, now or datetime.now(UTC)) if untyped else {}
    return [_entry(r, deps.get(r.id or 0, []), prices, traffic.get(r.alias)) for r in rows]


def _haystack(e: Entry) -> str:
    parts = [e.alias, e.description, e.type, e.quantization, e.size, e.hf_repo, *e.models, *e.providers]
    return "\n".join(parts).casefold()


SORTERS: dict[str, Callable[[Entry], Any]] = {
    "alias": lambda e: e.alias.casefold(),
    "type": lambda e: e.type or None,
    "provider": lambda e: ", ".join(e.providers).casefold() or None,
    "size": lambda e: size_value(e.size),
    "quantization": lambda e: e.quantization.casefold() or None,
    "context": lambda e: e.context_length,
    "availability": lambda e: AVAILABILITY_ORDER.index(e.availability),
    "hf": lambda e: e.hf_repo.casefold() or None,
}


def size_value(size: str) -> float | None:
    """Parameters in billions from a size label ("8B", "1.5b", "350M", "8x7B"), for sorting; None if unreadable."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*([kmbt])\s*", size.lower())
    if not m:
        return None
    scale = {"k": 1e-6, "m": 1e-3, "b": 1.0, "t": 1e3}[m.group(3)]
    return int(m.group(1) or 1) * float(m.group(2)) * scale


def list_entries(
    engine: Engine,
    *,
    search: str = "",
    sort: str = "alias",
    descending: bool = False,
    show_upstream: bool = False,
    now: datetime | None = None,
) -> list[Entry]:
    """Every alias matching `search` (a plain substring of its name, description, models or providers), sorted.

    Entries without a value in the sort column come last in either direction.
    """
    if sort not in SORTERS:
        raise CatalogError(f"cannot sort by {sort!r}; use one of: {', '.join(SORT_KEYS)}")
    needle = search.strip().casefold()[:200]
    entries = [e for e in _load(engine, None, now, show_upstream) if needle in _haystack(e)]
    key = SORTERS[sort]
    known = sorted((e for e in entries if key(e) is not None), key=lambda e: (key(e), e.alias), reverse=descending)
    return known + [e for e in entries if key(e) is None]


def get_entry(engine: Engine, alias: str, *, show_upstream: bool = False, now: datetime | None = None) -> Entry | None:
    found = _load(engine, [alias], now, show_upstream)
    return found[0] if found else None


def update_info(engine: Engine, alias: str, changes: dict[str, Any], *, actor: str) -> Entry:
    """Apply validated metadata `changes` (None or "" clears a field) to an alias; audited with before and after."""
    clean = validate_info(changes)
    with session(engine) as s:
        row = s.exec(select(ModelAlias).where(ModelAlias.alias == alias)).first()
        if row is None:
            raise CatalogError(f"no model {alias!r} in the catalog")
        before = dict(row.info or {})
        after = dict(before)
        for name, value in clean.items():
            if value is None:
                after.pop(name, None)
            else:
                after[name] = value
        if after != before:
            row.info = after
            s.add(row)
            record(
                s,
                actor=actor,
                action="catalog.update",
                target_type="model_alias",
                target_id=alias[:100],
                before=before,
                after=after,
            )
            s.commit()
    entry = get_entry(engine, alias, show_upstream=True)
    assert entry is not None
    return entry


@dataclass(frozen=True, slots=True)
class Figures:
    """An alias's traffic over the compare window, from the rollups."""

    requests: int
    error_rate: float
    p50_ms: float
    p99_ms: float
    ttfb_p50_ms: float
    requests_per_min: float
    output_tokens_per_s: float  # over the whole window
    decode_tokens_per_s: float  # output tokens per second of request time, a per-request speed


def compare(
    engine: Engine, aliases: list[str], *, show_upstream: bool = False, now: datetime | None = None
) -> list[tuple[Entry, Figures]]:
    """2-4 aliases side by side with their figures over the last 24 hours (in the order asked)."""
    wanted = list(dict.fromkeys(a.strip() for a in aliases if a.strip()))
    if not 2 <= len(wanted) <= 4:
        raise CatalogError("pick 2 to 4 different models to compare")
    now = now or datetime.now(UTC)
    entries = {e.alias: e for e in _load(engine, wanted, now, show_upstream)}
    missing = [a for a in wanted if a not in entries]
    if missing:
        raise CatalogError(f"not in the catalog: {', '.join(missing)}")
    start = now - COMPARE_WINDOW
    by_alias = dict(usage.breakdown(engine, start, now, "alias", order_by="requests", limit=len(wanted), values=wanted))
    seconds = COMPARE_WINDOW.total_seconds()
    out = []
    for alias in wanted:
        t = by_alias.get(alias, usage.Totals())
        busy_s = t.latency_ms_sum / 1000
        figures = Figures(
            requests=t.requests,
            error_rate=t.error_rate,
            p50_ms=t.latency_p(0.5),
            p99_ms=t.latency_p(0.99),
            ttfb_p50_ms=t.ttfb_p(0.5),
            requests_per_min=t.requests / (seconds / 60),
            output_tokens_per_s=t.completion_tokens / seconds,
            decode_tokens_per_s=t.completion_tokens / busy_s if busy_s > 0 else 0.0,
        )
        out.append((entries[alias], figures))
    return out


async def refresh_metadata(engine: Engine, box: SecretBox, alias: str, *, extra_allowlist: Iterable[str] = ()) -> str:
    """Ask every deployment of `alias` for its `/v1/models` again; a sentence saying how it went.

    `extra_allowlist` is `LLMC_UPSTREAM_ALLOWLIST`, as for every other probe.
    """
    from llm_console.services.probe import probe_deployment

    entry = get_entry(engine, alias)
    if entry is None:
        raise CatalogError(f"no model {alias!r} in the catalog")
    if not entry.deployments:
        raise CatalogError(f"{alias} has no deployments to ask")
    failed: list[str] = []
    for dep in entry.deployments:
        try:
            result = await probe_deployment(engine, box, dep.id, extra_allowlist=extra_allowlist)
        except Exception as exc:  # one unreachable deployment must not hide the others' results
            failed.append(f"{dep.name}: {str(exc)[:200] or type(exc).__name__}")
            continue
        if result.status == "error":
            failed.append(f"{dep.name}: {(result.error or 'error')[:200]}")
    n = len(entry.deployments)
    if failed:
        return f"Asked {n} deployment(s); {len(failed)} failed: " + "; ".join(failed)
    return f"Asked {n} deployment(s) for their metadata."
