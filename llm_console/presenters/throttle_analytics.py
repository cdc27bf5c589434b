"""Rate-limit analytics page values: summary cards, the refusals chart's rows, and the consumer, episode, spike and
burst tables as strings (dates in UTC, counts with thousands separators, an infinite z as "∞")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from llm_console.limits.limiter import NAMES
from llm_console.presenters.common import count, money
from llm_console.presenters.usage import bucket_label
from llm_console.services.throttle_analytics import FAMILY_LABELS, Consumer, ThrottleAnalytics

GRAIN_WORDS = {"m": "minute", "h": "hour", "d": "day"}


def limit_label(limit: str) -> str:
    """A limit's readable name ("requests per minute (RPM)"), or the stored name when unknown."""
    return NAMES.get(limit, limit)


def _when(at: datetime, grain: str = "m") -> str:
    return at.strftime("%Y-%m-%d %H:%M" if grain != "d" else "%Y-%m-%d")


def _z(z: float) -> str:
    return "∞" if math.isinf(z) else f"{z:.1f}"


def _consumers(rows: list[Consumer]) -> list[dict[str, str]]:
    return [
        {
            "id": str(c.id),
            "name": c.name,
            "requests": f"{c.requests:,}",
            "tokens": count(c.tokens),
            "cost": money(c.cost_usd),
            "refused": f"{c.refused:,}",
            "refused_share": f"{c.refused_share * 100:.1f}%" if c.refused_share is not None else "—",
        }
        for c in rows
    ]


@dataclass(slots=True)
class ThrottleView:
    cards: list[dict[str, str]] = field(default_factory=list)
    chart: list[dict[str, int | str]] = field(default_factory=list)
    grain_word: str = "hour"
    refused_total: int = 0
    top_keys: list[dict[str, str]] = field(default_factory=list)
    top_users: list[dict[str, str]] = field(default_factory=list)
    top_teams: list[dict[str, str]] = field(default_factory=list)
    episodes: list[dict[str, str]] = field(default_factory=list)
    spikes: list[dict[str, str]] = field(default_factory=list)
    bursts: list[dict[str, str]] = field(default_factory=list)
    method: str = ""
    spikes_empty: str = ""
    bursts_empty: str = ""
    as_of: str = ""


def throttle_view(data: ThrottleAnalytics) -> ThrottleView:
    """The service's dataclasses as the strings and chart rows the page's state vars hold."""
    s, abuse = data.series, data.abuse
    cards = [{"label": "Refused calls (429)", "value": f"{s.total:,}", "hint": "by a rate limit or budget"}]
    cards += [{"label": label, "value": f"{s.by_family[f]:,}", "hint": "refused"} for f, label in FAMILY_LABELS.items()]
    cards.append({"label": "Refused credentials (401)", "value": f"{abuse.auth_failures:,}", "hint": "every address"})
    episodes = [
        {
            "throttle": e.throttle.value,
            "entity": f"{e.throttle.entity} · {e.name}",
            "limit": limit_label(e.throttle.limit),
            "start": _when(e.start),
            "end": _when(e.end),
            "hours": f"{e.hours:,}",
            "refusals": f"{e.refusals:,}",
        }
        for e in data.episodes
    ]
    spikes = [
        {
            "id": str(k.key_id),
            "name": k.name,
            "hour": _when(k.hour),
            "calls": f"{k.calls:,}",
            "median": f"{k.median:g}",
            "mad": f"{k.mad:g}",
            "z": _z(k.z),
        }
        for k in abuse.spikes
    ]
    bursts = [
        {
            "address": b.address,
            "minutes": f"{b.burst_minutes:,}",
            "burst_refusals": f"{b.burst_refusals:,}",
            "peak": f"{b.peak:,} at {_when(b.peak_at)}",
            "first": _when(b.first_at),
            "last": _when(b.last_at),
            "total": f"{b.total_refusals:,}",
        }
        for b in abuse.bursts
    ]
    return ThrottleView(
        cards=cards,
        chart=[
            {"t": bucket_label(p.bucket, s.grain), "requests": p.requests, "tokens": p.tokens, "budget": p.budget}
            for p in s.points
        ],
        grain_word=GRAIN_WORDS[s.grain],
        refused_total=s.total,
        top_keys=_consumers(data.consumers.keys),
        top_users=_consumers(data.consumers.users),
        top_teams=_consumers(data.consumers.teams),
        episodes=episodes,
        spikes=spikes,
        bursts=bursts,
        method=abuse.method,
        spikes_empty=f"No key spiked in this range ({abuse.key_hours_checked:,} key-hours with at least "
        f"{abuse.thresholds.get('min_calls', 0):g} calls were checked).",
        bursts_empty=f"No address sent {abuse.thresholds.get('min_failures', 0):g} or more refused credentials "
        "(HTTP 401) within one minute in this range.",
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
    )
