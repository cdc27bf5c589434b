"""JSON shapes of the analytics API, built from the query modules' dataclasses (one place, documented once)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from llm_console.db.queries.filters import utc
from llm_console.db.queries.logs import LIST_COLUMNS, RequestDetail, RequestRow
from llm_console.db.queries.names import Directory
from llm_console.db.queries.spend import Spend
from llm_console.db.queries.usage import Totals
from llm_console.fleet.serving import ServedBy
from llm_console.services.feedback import ScoreView

PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
NAME_FIELDS = (("deployment_name", "deployment"), ("key_name", "key"), ("user_name", "user"), ("team_name", "team"))
ROW_FIELDS: tuple[str, ...] = (*LIST_COLUMNS, "total_tokens", *(name for name, _ in NAME_FIELDS))

# Bodies are redacted by the gateway already; these catch a virtual key or bearer token a client pasted in.
_SECRET_TEXT = re.compile(r"sk-llmc-[A-Za-z0-9_\-]{4,}|(?i:bearer)\s+(?=\S*\d)[A-Za-z0-9._~+/\-]{16,}=*")
_SECRET_NAMES = re.compile(r"authorization|api[-_]?key|cookie|secret|password|token$", re.IGNORECASE)


def iso(value: datetime) -> str:
    return utc(value).isoformat().replace("+00:00", "Z")


def totals_json(t: Totals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "errors": t.errors,
        "error_rate": t.error_rate,
        "stream_requests": t.stream_requests,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "cached_tokens": t.cached_tokens,
        "total_tokens": t.tokens,
        "cost_usd": t.cost_usd,
        "cost_per_request_usd": t.cost_per_request,
        "latency_ms": {"avg": t.avg_latency_ms, **{name: t.latency_p(q) for name, q in PERCENTILES}},
        "ttfb_ms": {"avg": t.avg_ttfb_ms, **{name: t.ttfb_p(q) for name, q in PERCENTILES}},
    }


def row_json(r: RequestRow, names: Directory) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(r, name) for name in LIST_COLUMNS}
    out["created_at"] = iso(r.created_at)
    out["total_tokens"] = r.tokens
    for field, dim in NAME_FIELDS:
        ident = getattr(r, f"{dim}_id")
        out[field] = None if ident is None else names.name(dim, str(ident))
    return out


def scrub_text(text: str | None) -> str | None:
    if not text:
        return text
    return _SECRET_TEXT.sub(lambda m: "sk-llmc-***" if m.group(0).startswith("sk-") else "Bearer ***", text)


def scrub(value: Any) -> Any:
    """Span attributes with secrets masked: values under credential-like names, and key-like strings."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET_NAMES.search(str(k)) and v else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def detail_json(
    d: RequestDetail, names: Directory, served: ServedBy | None = None, scores: Sequence[ScoreView] = ()
) -> dict[str, Any]:
    """The request with bodies and spans, the container and GPUs that served its deployment (or null), and the
    feedback given to it or its session."""
    return {
        "request": row_json(d.row, names),
        "request_body": scrub_text(d.request_body),
        "response_body": scrub_text(d.response_body),
        "error_message": scrub_text(d.error_message),
        "client_ip": d.client_ip,
        "embedding_dims": d.embedding_dims,
        "spans": [
            {
                "name": s.name,
                "start_ms": s.start_ms,
                "duration_ms": s.duration_ms,
                "status": s.status,
                "attributes": scrub(s.attributes),
            }
            for s in d.spans
        ],
        "served_by": (
            {
                "container_id": served.container_id,
                "container_name": served.container_name,
                "image": served.image,
                "host": served.host,
                "gpus": list(served.gpus),
            }
            if served
            else None
        ),
        "feedback": [s.to_api() for s in scores],
    }


def spend_json(s: Spend, names: Directory) -> dict[str, Any]:
    return {
        "user_id": s.entity_id,
        "user": names.name("user", str(s.entity_id)),
        "day_usd": s.day_usd,
        "month_usd": s.month_usd,
        "daily_budget_usd": s.daily_budget_usd,
        "monthly_budget_usd": s.monthly_budget_usd,
        "day_share": s.day_share,
        "month_share": s.month_share,
        "status": s.status,
    }
