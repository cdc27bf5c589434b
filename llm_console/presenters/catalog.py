"""Catalog entries as display strings for the Model catalog page, and its edit form back into metadata changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from llm_console import routes
from llm_console.presenters.common import count, ms
from llm_console.services.catalog import Entry, Figures
from llm_console.services.catalog_info import CAPABILITY_FLAGS, clean_info, hf_url
from llm_console.services.snippets import endpoint_url, snippets

NONE = "—"
SOURCE_NOTES = {"traffic": "guessed from its traffic", "name": "guessed from its name", "discovered": "discovered"}
TRI = {True: "yes", False: "no", None: "unknown"}


def detail_href(alias: str) -> str:
    return f"{routes.CATALOG}?alias={quote(alias, safe='')}"


def compare_href(aliases: list[str]) -> str:
    return f"{routes.CATALOG}?compare={quote(','.join(aliases), safe=',')}"


def list_href(search: str, sort: str, descending: bool) -> str:
    params = {k: v for k, v in (("q", search), ("sort", "" if sort == "alias" else sort)) if v}
    if descending:
        params["dir"] = "desc"
    return f"{routes.CATALOG}?{urlencode(params)}" if params else routes.CATALOG


def sort_links(search: str, sort: str, descending: bool, keys: tuple[str, ...]) -> dict[str, str]:
    """Each column header's link: the same search, sorted by that column (the current one flips direction)."""
    return {k: list_href(search, k, k == sort and not descending) for k in keys}


def sort_marks(sort: str, descending: bool, keys: tuple[str, ...]) -> dict[str, str]:
    """`aria-sort` per column."""
    return {k: ("descending" if descending else "ascending") if k == sort else "none" for k in keys}


def _noted(value: str, source: str) -> str:
    note = SOURCE_NOTES.get(source)
    return f"{value} ({note})" if value and note else value or NONE


def _context(e: Entry) -> str:
    return f"{e.context_length:,}" if e.context_length else NONE


def _price(e: Entry) -> str:
    seen = dict.fromkeys(f"${p.input_per_mtok:g} in / ${p.output_per_mtok:g} out" for p in e.prices)
    return "; ".join(seen) + " per 1M tokens" if seen else "no price set"


def _sunset(value: date | None, today: date) -> str:
    if value is None:
        return ""
    return f"{value.isoformat()} (passed)" if value < today else value.isoformat()


def _availability_hint(e: Entry) -> str:
    return f"{e.available_count}/{e.enabled_count} deployments available" if e.enabled_count else e.availability


def row(e: Entry) -> dict[str, str]:
    return {
        "alias": e.alias,
        "href": detail_href(e.alias),
        "type": _noted(e.type, e.type_source) if e.type_source in ("traffic", "name") else e.type or NONE,
        "guessed": "yes" if e.type_source in ("traffic", "name") else "",
        "provider": ", ".join(e.providers) or NONE,
        "models": ", ".join(e.models) or NONE,
        "size": e.size or NONE,
        "quantization": e.quantization or NONE,
        "context": _context(e),
        "hf": e.hf_repo or NONE,
        "hf_url": hf_url(e.hf_repo),
        "availability": e.availability,
        "availability_hint": _availability_hint(e),
        "deprecated": "yes" if e.deprecated else "",
        "version": e.version,
    }


def capability_row(e: Entry) -> dict[str, str]:
    out = {"alias": e.alias, "href": detail_href(e.alias)}
    out |= {flag: TRI[e.capabilities.get(flag)] for flag in CAPABILITY_FLAGS}
    out["embedding_dims"] = str(e.embedding_dims) if e.embedding_dims else NONE
    return out


def notices(entries: list[Entry], today: date | None = None) -> list[dict[str, str]]:
    """One line per deprecated model: its note and sunset date."""
    today = today or datetime.now(UTC).date()
    out = []
    for e in entries:
        if not e.deprecated:
            continue
        parts = [f"{e.alias} is deprecated"]
        if e.sunset_date:
            parts.append(f"sunset {_sunset(e.sunset_date, today)}")
        if e.deprecation_note:
            parts.append(e.deprecation_note)
        out.append({"alias": e.alias, "href": detail_href(e.alias), "text": " · ".join(parts)})
    return out


def detail(e: Entry, root: str, today: date | None = None) -> dict[str, str]:
    today = today or datetime.now(UTC).date()
    return {
        "alias": e.alias,
        "type": _noted(e.type, e.type_source),
        "description": e.description,
        "size": e.size or NONE,
        "quantization": e.quantization or NONE,
        "context": _noted(_context(e) if e.context_length else "", e.context_source),
        "hf_repo": _noted(e.hf_repo, e.hf_source),
        "hf_url": hf_url(e.hf_repo),
        "version": e.version or NONE,
        "deprecated": "yes" if e.deprecated else "",
        "deprecation_note": e.deprecation_note,
        "sunset": _sunset(e.sunset_date, today),
        "availability": e.availability,
        "availability_hint": _availability_hint(e),
        "providers": ", ".join(e.providers) or NONE,
        "price": _price(e),
        "base_url": f"{root}/v1",
        "endpoint": endpoint_url(root, e.type),
        "embedding_dims": str(e.embedding_dims) if e.embedding_dims else NONE,
    }


def capabilities(e: Entry) -> list[dict[str, str]]:
    labels = {"streaming": "Streaming", "tools": "Tool calls", "vision": "Vision", "json_mode": "JSON mode"}
    return [{"name": labels[f], "value": TRI[e.capabilities.get(f)]} for f in CAPABILITY_FLAGS]


def deployment_rows(e: Entry, *, show_upstream: bool) -> list[dict[str, str]]:
    """Deployments behind the alias; the upstream URL only for operators and admins."""
    return [
        {
            "name": d.name,
            "model": d.model,
            "provider": d.provider if d.provider == d.provider_kind else f"{d.provider} ({d.provider_kind})",
            "status": d.status if d.enabled else "disabled",
            "checked": d.checked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if d.checked_at else "never",
            "max_model_len": f"{d.max_model_len:,}" if d.max_model_len else NONE,
            "owned_by": d.owned_by or NONE,
            "weight": str(d.weight),
            "last_error": d.last_error[:300],
            "upstream": d.api_base if show_upstream else "",
        }
        for d in e.deployments
    ]


def snippet_rows(e: Entry, root: str) -> list[dict[str, str]]:
    return [
        {"id": s.id, "title": s.title, "language": s.language, "code": s.code} for s in snippets(e.alias, root, e.type)
    ]


def edit_defaults(e: Entry) -> dict[str, str]:
    """The edit form's starting values: what an operator stored (not what was discovered or guessed)."""
    info = clean_info(e.info)
    caps = info.get("capabilities", {})
    out = {k: str(info.get(k) or "") for k in ("type", "description", "size", "quantization", "hf_repo", "version")}
    out |= {k: str(info.get(k) or "") for k in ("context_length", "deprecation_note", "sunset_date")}
    out |= {flag: TRI[caps.get(flag)] for flag in CAPABILITY_FLAGS}
    out["embedding_dims"] = str(caps.get("embedding_dims") or "")
    out["deprecated"] = "yes" if info.get("deprecated") else "no"
    out["type"] = out["type"] or "unknown"
    return out


def changes_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The edit form's fields as metadata changes (empty clears a field; "unknown" clears a flag)."""
    text = {k: str(form.get(k, "") or "")[:3000] for k in form}
    flags = {"yes": True, "no": False}
    changes: dict[str, Any] = {
        k: text.get(k, "")
        for k in ("description", "size", "quantization", "hf_repo", "version", "deprecation_note", "sunset_date")
    }
    changes["type"] = "" if text.get("type", "unknown") == "unknown" else text["type"]
    changes["context_length"] = text.get("context_length", "")
    changes["deprecated"] = text.get("deprecated") == "yes"
    caps: dict[str, Any] = {flag: flags.get(text.get(flag, "")) for flag in CAPABILITY_FLAGS}
    caps["embedding_dims"] = text.get("embedding_dims", "") or None
    changes["capabilities"] = caps
    return changes


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def compare_rows(pairs: list[tuple[Entry, Figures]]) -> list[list[str]]:
    """One row per attribute: its label, then the value for each model in the order asked."""
    entries = [e for e, _ in pairs]
    figures = [f for _, f in pairs]
    rows: list[tuple[str, list[str]]] = [
        ("Type", [_noted(e.type, e.type_source) for e in entries]),
        ("Provider", [", ".join(e.providers) or NONE for e in entries]),
        ("Size", [e.size or NONE for e in entries]),
        ("Quantization", [e.quantization or NONE for e in entries]),
        ("Context length", [_context(e) for e in entries]),
        ("Availability", [_availability_hint(e) for e in entries]),
        ("Price", [_price(e) for e in entries]),
        ("Requests (24 h)", [count(f.requests) for f in figures]),
        ("Error rate", [_pct(f.error_rate) if f.requests else NONE for f in figures]),
        ("Latency P50", [ms(f.p50_ms) if f.requests else NONE for f in figures]),
        ("Latency P99", [ms(f.p99_ms) if f.requests else NONE for f in figures]),
        ("Time to first token P50", [ms(f.ttfb_p50_ms) if f.ttfb_p50_ms else NONE for f in figures]),
        ("Requests per minute", [f"{f.requests_per_min:.2f}" for f in figures]),
        ("Output tokens/s (24 h average)", [f"{f.output_tokens_per_s:.2f}" for f in figures]),
        ("Output tokens/s per request", [f"{f.decode_tokens_per_s:.1f}" if f.requests else NONE for f in figures]),
        ("Deprecated", ["yes" if e.deprecated else "no" for e in entries]),
    ]
    return [[label, *values] for label, values in rows]
