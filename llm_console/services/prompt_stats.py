"""Per-version figures of prompts, and what the Prompts pages load in one call each.

Calls, errors, latency (mean and percentiles from the histograms), tokens and cost come from the usage rollups
(dimension "prompt", value the version id, hour and day rows); feedback from `feedback_scores` by
`prompt_version_id`. Never a scan of the request log. Both read the same whole hours, so a version's calls
and its scores cover the same window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore
from llm_console.db.prompt_tables import PromptVersion
from llm_console.db.queries import usage
from llm_console.db.queries.usage import Totals
from llm_console.services.prompts import (
    PromptAdminError,
    PromptSummary,
    VersionView,
    get_prompt,
    list_prompts,
)

PROMPT_DIM = "prompt"
GRAIN = "h"  # prompt rows exist per hour and per day only
LIST_WINDOW = timedelta(days=7)  # the list's "calls in the last 7 days"
PAGE_SIZE = 25
F = FeedbackScore.__table__  # type: ignore[attr-defined]
V = PromptVersion.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ScoreStat:
    """One score name given to a version's calls: how often, how often numeric, and the numeric mean."""

    name: str
    count: int
    numeric: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class VersionStats:
    """A version's figures over a range: the rollup totals and its feedback."""

    version_id: int
    totals: Totals = field(default_factory=Totals)
    feedback: int = 0
    scores: tuple[ScoreStat, ...] = ()  # most numeric scores first, then by name

    @property
    def main_score(self) -> ScoreStat | None:
        """The numeric score given most often: the one a table compares versions on."""
        return next((s for s in self.scores if s.numeric), None)


def window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole hours: what the rollups (and so every figure here) cover."""
    return usage.aligned(start, end, GRAIN)


def _feedback(engine: Engine, ids: Sequence[int], lo: datetime, hi: datetime) -> dict[int, list[ScoreStat]]:
    value = F.c.value
    stmt = (
        select(F.c.prompt_version_id, F.c.name, func.count(), func.count(value), func.sum(value))
        .where(F.c.prompt_version_id.in_(list(ids)), F.c.created_at >= lo, F.c.created_at < hi)
        .group_by(F.c.prompt_version_id, F.c.name)
    )
    out: dict[int, list[ScoreStat]] = {}
    with engine.connect() as conn:
        for vid, name, n, k, total in conn.execute(stmt):
            mean = float(total) / k if k and total is not None and math.isfinite(float(total)) else None
            out.setdefault(int(vid), []).append(ScoreStat(str(name), int(n), int(k), mean))
    return out


def version_stats(
    engine: Engine, version_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, VersionStats]:
    """Figures of each version in `version_ids` over [start, end) (whole hours); versions without calls or
    scores get zeros, never a missing entry."""
    ids = sorted(set(version_ids))
    if not ids:
        return {}
    lo, hi = window(start, end)
    rows = usage.breakdown(
        engine, lo, hi, PROMPT_DIM, grain=GRAIN, values=[str(i) for i in ids], limit=len(ids), hist=True
    )
    totals = {int(value): t for value, t in rows if value.isdigit()}
    scores = _feedback(engine, ids, lo, hi)
    out: dict[int, VersionStats] = {}
    for vid in ids:
        given = sorted(scores.get(vid, []), key=lambda s: (-s.numeric, s.name))
        out[vid] = VersionStats(vid, totals.get(vid, Totals()), sum(s.count for s in given), tuple(given))
    return out


def calls_by_prompt(engine: Engine, prompt_ids: Sequence[int], start: datetime, end: datetime) -> dict[int, int]:
    """Calls per prompt (all its versions together) over [start, end) (whole hours)."""
    ids = sorted(set(prompt_ids))
    if not ids:
        return {}
    with engine.connect() as conn:
        owner = {int(v): int(p) for v, p in conn.execute(select(V.c.id, V.c.prompt_id).where(V.c.prompt_id.in_(ids)))}
    out = dict.fromkeys(ids, 0)
    if not owner:
        return out
    lo, hi = window(start, end)
    values = [str(v) for v in owner]
    for value, t in usage.breakdown(
        engine, lo, hi, PROMPT_DIM, grain=GRAIN, values=values, limit=len(values), hist=False
    ):
        if value.isdigit() and int(value) in owner:
            out[owner[int(value)]] += t.requests
    return out


@dataclass(frozen=True, slots=True)
class PromptListPage:
    """One page of the prompt list, with each prompt's calls over the last 7 days."""

    rows: list[PromptSummary]
    total: int
    page: int
    pages: int
    calls_7d: dict[int, int]
    as_of: datetime


def load_prompt_list(
    engine: Engine, *, search: str = "", page: int = 1, page_size: int = PAGE_SIZE, now: datetime | None = None
) -> PromptListPage:
    """The list page's data: the matching prompts (one page of them) and their recent calls."""
    now = now or datetime.now(UTC)
    rows, total = list_prompts(engine, search=search, page=max(1, page), page_size=page_size)
    pages = max(1, math.ceil(total / page_size))
    if page > pages:  # a page past the end (a stale link): show the last one
        page = pages
        rows, total = list_prompts(engine, search=search, page=page, page_size=page_size)
    calls = calls_by_prompt(engine, [r.id for r in rows], now - LIST_WINDOW, now)
    return PromptListPage(rows, total, max(1, page), pages, calls, now)


@dataclass(frozen=True, slots=True)
class PromptPage:
    """The detail page's data: the prompt, its versions newest first and their figures, or why there is none."""

    name: str
    start: datetime
    end: datetime
    as_of: datetime
    summary: PromptSummary | None = None
    versions: list[VersionView] = field(default_factory=list)
    stats: dict[int, VersionStats] = field(default_factory=dict)
    error: str = ""


def load_prompt_page(
    engine: Engine, name: str, start: datetime, end: datetime, now: datetime | None = None
) -> PromptPage:
    """One prompt with its versions and each version's figures over [start, end)."""
    now = now or datetime.now(UTC)
    lo, hi = window(start, end)
    if not name.strip():
        return PromptPage(name, lo, hi, now, error="No prompt chosen: open one from the Prompts list.")
    try:
        summary, versions = get_prompt(engine, name)
    except PromptAdminError as exc:
        return PromptPage(name, lo, hi, now, error=exc.message)
    stats = version_stats(engine, [v.id for v in versions], start, end)
    return PromptPage(name, lo, hi, now, summary, versions, stats)
