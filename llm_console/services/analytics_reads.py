"""The reads several Analytics panels share: totals per model, endpoint and deployment from the rollups, the
range's feedback in one grouped scan, and the names the panels label deployments with.

`load_analytics` (in `analytics`) makes each of these reads once per refresh and hands the result to every
panel that needs it: the tables there, the A/B choices (`analytics_ab`) and the recommendations
(`analytics_signals`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Engine

from llm_console.db.models import Deployment, FeedbackScore, ModelAlias, Provider
from llm_console.db.queries import usage
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory
from llm_console.db.queries.usage import Totals
from llm_console.services.analytics_types import ScorePoint

F = FeedbackScore.__table__  # type: ignore[attr-defined]
D = Deployment.__table__  # type: ignore[attr-defined]
P = Provider.__table__  # type: ignore[attr-defined]
A = ModelAlias.__table__  # type: ignore[attr-defined]
MAX_MODELS = 200  # aliases (or deployments, tags) one panel lists; far more than any gateway serves


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when there is nothing to divide by (the types' convention for every ratio)."""
    return num / den if den else None


def by_alias(engine: Engine, start: datetime, end: datetime, *, hist: bool = True) -> list[tuple[str, Totals]]:
    """Totals per model, most spend first; `hist` adds the latency histograms (for percentiles)."""
    return usage.breakdown(engine, start, end, "alias", order_by="cost_usd", limit=MAX_MODELS, hist=hist)


@dataclass(slots=True)
class Score:
    """Scores of one (alias, name): all of them, and the numeric ones' count, sum and sum of squares."""

    n: int = 0
    k: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        return ratio(self.total, self.k)


@dataclass(slots=True)
class Feedback:
    """The range's feedback, read once: per (alias, name), each numeric name's observed low and high, per day."""

    scores: dict[tuple[str, str], Score] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    daily: list[ScorePoint] = field(default_factory=list)

    def main_name(self) -> str | None:
        """The numeric score given most often (ties: by name), the one tables compare models on."""
        given: dict[str, int] = defaultdict(int)
        for (_, name), s in self.scores.items():
            given[name] += s.k
        ranked = sorted((k for k in given.items() if k[1] > 0), key=lambda kv: (-kv[1], kv[0]))
        return ranked[0][0] if ranked else None


def _day_expr(engine: Engine) -> ColumnElement[Any]:
    """The UTC day of `created_at` as 'YYYY-MM-DD' (SQLite stores UTC text; PostgreSQL converts explicitly)."""
    if engine.dialect.name == "sqlite":
        return func.substr(F.c.created_at, 1, 10)
    return func.to_char(func.timezone("UTC", F.c.created_at), "YYYY-MM-DD")


def read_feedback(engine: Engine, start: datetime, end: datetime, alias: str | None = None) -> Feedback:
    """One grouped scan of the range's scores, by (alias, name, category, day): a few hundred rows that every
    feedback figure (per model, per category, per day) is summed from here."""
    where = [F.c.created_at >= utc(start), F.c.created_at < utc(end)]
    if alias:
        where.append(F.c.alias == alias)
    value, day = F.c.value, _day_expr(engine)
    keys = (F.c.alias, F.c.name, F.c.category, day)
    sums = (func.count(), func.count(value), func.sum(value), func.sum(value * value), func.min(value), func.max(value))
    out = Feedback()
    daily: dict[tuple[str, str], list[float]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(*keys, *sums).where(*where).group_by(*keys)).all()
    for a, name, category, d, n, k, total, total_sq, low, high in rows:
        s = out.scores.get((a, name))
        if s is None:
            s = out.scores[(a, name)] = Score()
        s.n, s.k, s.total, s.total_sq = s.n + n, s.k + k, s.total + (total or 0), s.total_sq + (total_sq or 0)
        if category is not None:
            s.categories[category] = s.categories.get(category, 0) + n
        if k:
            lo, hi = out.bounds.get(name, (low, high))
            out.bounds[name] = (min(lo, low), max(hi, high))
        per_day = daily.setdefault((d, name), [0, 0, 0.0])
        per_day[0] += n
        per_day[1] += k
        per_day[2] += total or 0
    out.daily = [
        ScorePoint(date.fromisoformat(d), name, int(n), total / k if k else None)
        for (d, name), (n, k, total) in sorted(daily.items())
    ]
    return out


def page_directory(engine: Engine) -> Directory:
    """Deployment and provider names and the configured aliases: the part of `load_directory` this page needs
    (it skips the key and user tables, thousands of rows on a busy install, which no panel here names)."""
    with engine.connect() as conn:
        providers: dict[int, str] = {r.id: r.name for r in conn.execute(select(P.c.id, P.c.name))}
        deps = conn.execute(select(D.c.id, D.c.name, D.c.provider_id)).all()
        aliases = conn.execute(select(A.c.alias).order_by(A.c.alias)).scalars().all()
    return Directory(
        deployments={d.id: d.name for d in deps},
        deployment_provider={d.id: providers.get(d.provider_id, "?") for d in deps},
        aliases=tuple(aliases),
    )


def deployment_label(directory: Directory, dep_id: int) -> str:
    """ "provider / name", or "#id (deleted)" for calls of a deployment removed since."""
    name = directory.deployments.get(dep_id)
    if name is None:
        return f"#{dep_id} (deleted)"
    return f"{directory.deployment_provider.get(dep_id, '?')} / {name}"


def split_endpoint(
    rows: Sequence[tuple[str, Totals]],
) -> tuple[dict[str, list[tuple[str, Totals]]], list[tuple[str, Totals]]]:
    """`endpoint_alias` rows ("<endpoint>|<alias>") as models per endpoint, and summed per alias."""
    per_endpoint: dict[str, list[tuple[str, Totals]]] = defaultdict(list)
    per_alias: dict[str, Totals] = {}
    for value, t in rows:
        endpoint, _, alias = value.partition("|")
        per_endpoint[endpoint].append((alias, t))
        per_alias[alias] = per_alias[alias] + t if alias in per_alias else t
    return per_endpoint, list(per_alias.items())


def by_endpoint(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, Totals]]:
    """Totals per (endpoint, model), with histograms: the finest split the panels need, summed per model by
    `split_endpoint` so that one read serves both."""
    return usage.breakdown(engine, start, end, "endpoint_alias", order_by="cost_usd", limit=5 * MAX_MODELS)


def by_deployment(engine: Engine, start: datetime, end: datetime) -> list[tuple[str, Totals]]:
    """Totals per deployment id (as text), busiest first."""
    return usage.breakdown(engine, start, end, "deployment", order_by="requests", limit=MAX_MODELS, hist=False)
