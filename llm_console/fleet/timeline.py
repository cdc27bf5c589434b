"""The model-loading timeline of a deployment's containers, from their Docker events and the collector's
"ready" events (the engine's first good scrape after a start)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llm_console.db.queries.filters import utc


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    container_id: str
    container_name: str
    action: str  # the event's action; "loading": a load under way; "answered": one whose end was not recorded
    text: str
    severity: str  # ok | info | warning | error
    duration_s: float | None = None


def _describe(action: str, detail: str, prior: str) -> tuple[str, str]:
    """The timeline's words and severity for one event (`prior`: the container's previous action)."""
    if action == "die":
        deliberate = prior in ("kill", "stop")
        text = ("Exited" if deliberate else "Crashed") + (f" ({detail})" if detail else "")
        return text, "info" if deliberate else "error"
    if action == "health_status":
        return f"Health: {detail or 'unknown'}", "ok" if detail == "healthy" else "warning"
    words = {
        "create": ("Created", "info"),
        "start": ("Started, loading the model", "info"),
        "restart": ("Restarted", "warning"),
        "stop": ("Stopped", "info"),
        "kill": ("Killed", "warning"),
        "oom": ("Out of memory", "error"),
        "remove": ("Removed", "info"),
        "ready": ("Model ready", "ok"),
    }
    text, severity = words.get(action, (action.replace("_", " ").capitalize(), "info"))
    return (f"{text} ({detail})" if detail and action not in ("start", "ready") else text), severity


ENDS_LOADING = ("ready", "die", "oom", "kill", "stop")


def pending_starts(events: Sequence[Any]) -> dict[str, datetime]:
    """Per container, its last start with no ready (nor death or stop) after it; `events` oldest first."""
    pending: dict[str, datetime] = {}
    for e in events:
        if e.action == "start":
            pending[e.container_id] = utc(e.at)
        elif e.action in ENDS_LOADING:
            pending.pop(e.container_id, None)
    return pending


def loading_timeline(
    events: Sequence[Any],
    running: Mapping[str, bool],
    now: datetime,
    since: datetime,
    answered: Mapping[str, datetime] | None = None,
) -> tuple[TimelineEntry, ...]:
    """Events (oldest first: `container_id`, `container_name`, `at`, `action`, `detail`) as a timeline: each
    start followed by ready becomes "Model loaded in N s", a death before ready "Crashed while loading", and a
    running container whose last start has no ready yet "Loading the model (N s so far)", unless its engine
    answered a scrape after that start (`answered`, by container): that is said instead, with the time it
    took. Only entries at or after `since` are kept; earlier events only pair with later ones."""
    pending: dict[str, datetime] = {}
    prior: dict[str, str] = {}
    names: dict[str, str] = {}
    out: list[TimelineEntry] = []
    for e in events:
        at, cid = utc(e.at), e.container_id
        names[cid] = e.container_name or names.get(cid, "") or cid[:12]
        text, severity = _describe(e.action, e.detail or "", prior.get(cid, ""))
        took: float | None = None
        started = pending.get(cid)
        if e.action == "start":
            pending[cid] = at
        elif e.action == "ready" and started is not None:
            took = (at - started).total_seconds()
            text = f"Model loaded in {took:.0f} s"
            del pending[cid]
        elif e.action in ENDS_LOADING and started is not None:
            took = (at - started).total_seconds()
            if severity == "error":
                what = "Out of memory" if e.action == "oom" else "Crashed"
                text = f"{what} while loading, after {took:.0f} s" + (f" ({e.detail})" if e.detail else "")
            del pending[cid]
        prior[cid] = e.action
        if at >= since:
            out.append(TimelineEntry(at, cid, names[cid], e.action, text, severity, took))
    for cid, started in pending.items():
        if not running.get(cid):
            continue
        first = (answered or {}).get(cid)
        if first is not None and first > started:
            took = (first - started).total_seconds()
            text = f"Engine answered {took:.0f} s after this start (no ready event was recorded)"
            out.append(TimelineEntry(first, cid, names[cid], "answered", text, "ok", took))
            continue
        took = max(0.0, (now - started).total_seconds())
        text = f"Loading the model ({took:.0f} s so far)"
        out.append(TimelineEntry(now, cid, names[cid], "loading", text, "warning", took))
    return tuple(sorted(out, key=lambda t: t.at))
