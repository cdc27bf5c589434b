"""Logs & traces page values: table rows, filter options, the detail drawer, retention."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from llm_console.db.queries.names import Directory
from llm_console.presenters.common import count, money, ms, request_rows
from llm_console.services.logs_page import LogsData
from llm_console.services.request_detail import conversation, pretty, waterfall
from llm_console.settings import Settings


@dataclass(slots=True)
class LogsView:
    rows: list[dict[str, str]] = field(default_factory=list)
    next_cursor: str = ""
    options: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    spans: list[dict[str, str]] = field(default_factory=list)
    request_body: str = ""
    response_body: str = ""
    detail_error: str = ""
    scores: list[dict[str, str]] = field(default_factory=list)
    retention: dict[str, str] = field(default_factory=dict)
    as_of: str = ""


def options(directory: Directory) -> dict[str, list[dict[str, str]]]:
    def items(table: dict[int, str]) -> list[dict[str, str]]:
        return [{"value": str(k), "label": v} for k, v in sorted(table.items(), key=lambda kv: kv[1].lower())]

    return {
        "model": [{"value": a, "label": a} for a in directory.aliases],
        "deployment": items(directory.deployments),
        "key": items(directory.keys),
        "user": items(directory.users),
        "team": items(directory.teams),
    }


def _name(directory: Directory, dim: str, value: int | None) -> str:
    return directory.name(dim, "" if value is None else str(value))


BODIES_HIDDEN = "Request and response bodies are shown to members, operators and admins."


def logs_view(data: LogsData, settings: Settings, *, show_bodies: bool = True) -> LogsView:
    view = LogsView(
        rows=request_rows(data.page.rows, data.directory),
        next_cursor=data.page.next_cursor or "",
        options=options(data.directory),
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )
    if data.detail_missing:
        view.detail_error = "That request is not in the log (it may have been removed by retention)."
    if data.detail is not None:
        d, r, dirc = data.detail, data.detail.row, data.directory
        view.detail = {
            "id": r.id,
            "time": r.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
            "endpoint": r.endpoint,
            "model": r.alias or "—",
            "upstream_model": r.model or "—",
            "deployment": _name(dirc, "deployment", r.deployment_id),
            "key": _name(dirc, "key", r.key_id),
            "user": _name(dirc, "user", r.user_id),
            "team": _name(dirc, "team", r.team_id),
            "status": r.status,
            "code": str(r.status_code),
            "error": r.error_type or "",
            "error_message": (d.error_message or "")[:2000],
            "mode": "streaming" if r.stream else "single response",
            "tokens": (
                f"{count(r.prompt_tokens)} in / {count(r.completion_tokens)} out / {count(r.cached_tokens)} cached"
            ),
            "cost": money(r.cost_usd),
            "latency": ms(r.latency_ms),
            "ttfb": ms(r.ttfb_ms) if r.ttfb_ms is not None else "—",
            "attempts": str(r.attempts),
            "client_ip": d.client_ip or "—",
            "dims": str(d.embedding_dims) if d.embedding_dims else "",
            "container": (
                f"{data.served_by.container_name} ({data.served_by.container_id[:12]})"
                if data.served_by
                else "— (no container tracked)"
            ),
            "gpu": ", ".join(data.served_by.gpus) if data.served_by and data.served_by.gpus else "—",
            "end_user": r.end_user or "—",
            "session": r.session_id or "",
            "tags": ", ".join(r.tags.split(",")) if r.tags else "—",
            "prompt": f"{d.prompt[0]} v{d.prompt[1]}" if d.prompt else "",
            "prompt_filter": f"{d.prompt[0]}@{d.prompt[1]}" if d.prompt else "",
        }
        view.scores = [
            {
                "name": s.name,
                "value": s.shown,
                "kind": "numeric" if s.value is not None else "category",
                "scope": "this request" if s.request_id == r.id else "its session",
                "comment": s.comment or "",
                "source": "API" if s.source == "api" else "console",
                "time": s.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            }
            for s in data.scores
        ]
        if not show_bodies:
            d = replace(d, request_body=None, response_body=None)
        view.messages = [{"role": m.role, "content": m.content} for m in conversation(d)]
        view.spans = [
            {
                "label": b.label,
                "offset": f"{b.offset_pct}%",
                "width": f"{b.width_pct}%",
                "timing": f"{b.start_ms:.1f} ms +{b.duration_ms:.1f} ms",
                "status": b.status,
            }
            for b in waterfall(d)
        ]
        view.request_body = pretty(d.request_body) or ("(not stored)" if show_bodies else BODIES_HIDDEN)
        view.response_body = pretty(d.response_body) or ("(not stored)" if show_bodies else BODIES_HIDDEN)
    last = data.retention[0] if data.retention else None
    view.retention = {
        "policy": (
            f"Rows kept {settings.retention_request_days:g} days, bodies {settings.retention_body_days:g} days, "
            f"minute rollups {settings.retention_minute_rollup_days:g} days, hourly and daily rollups "
            f"{settings.retention_rollup_days:g} days, feedback scores {settings.retention_feedback_days:g} days."
        ),
        "last": (
            f"Last cleanup {last.started_at:%Y-%m-%d %H:%M} UTC ({last.status}, {last.duration_ms:.0f} ms): removed "
            f"{last.requests:,} requests, {last.spans:,} spans, {last.rollups:,} rollup rows, {last.feedback:,} "
            f"feedback scores; cleared {last.bodies:,} "
            "bodies." + (f" Error: {last.error}" if last.error else "")
            if last
            else "No cleanup has run yet."
        ),
    }
    return view
