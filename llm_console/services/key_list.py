"""The keys page's data: one page of keys in the viewer's scope, with owners, limits, budgets and 7-day usage.

A fixed number of queries per page whatever its size: the keys, a count, their owners, limits and budgets,
and one rollup read (dim "key", one row per key and day) for every sparkline on the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import col
from sqlmodel import select as select_model

from llm_console.db.engine import session
from llm_console.db.models import Budget, ModelAlias, RateLimit, Team, User, VirtualKey, utcnow
from llm_console.db.queries.filters import utc
from llm_console.db.rollups import truncate, usage_rollups
from llm_console.services.key_admin import KeyBudget, KeyLimits
from llm_console.services.keys import can_manage_key
from llm_console.services.scope import Scope

STATUSES = ("all", "active", "revoked", "expired")
PAGE_SIZE = 25
SPARK_DAYS = 7
MAX_SEARCH = 200


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    user_id: int | None
    team_id: int | None
    owner_type: str  # user | team | service | "" (an organization key, e.g. from the CLI)
    owner: str
    allowed_aliases: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    created_by: str
    status: str  # active | revoked | expired
    limits: KeyLimits
    budget: KeyBudget
    daily_requests: tuple[int, ...]  # the last SPARK_DAYS UTC days, oldest first
    can_manage: bool


@dataclass(frozen=True, slots=True)
class KeyPage:
    rows: list[KeyRow]
    total: int
    page: int
    pages: int
    days: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    label: str


@dataclass(frozen=True, slots=True)
class KeyChoices:
    """Who the signed-in user may give a key to, and the models a key may be limited to."""

    users: list[Choice]
    teams: list[Choice]
    services: list[Choice]
    aliases: list[str]
    organization: bool  # may leave a key without an owner (operators and admins)


def status_of(row: VirtualKey, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and utc(row.expires_at) <= now:
        return "expired"
    return "active"


def key_filters(scope: Scope, search: str, status: str, now: datetime) -> list[Any]:
    """WHERE clauses for the keys `scope` sees (a team-scoped user: their teams' and their own), matching
    `search` (name or prefix) and `status` (active | revoked | expired | "" for all)."""
    where: list[Any] = []
    if scope.team_ids is not None:
        where.append(or_(col(VirtualKey.team_id).in_(sorted(scope.team_ids)), col(VirtualKey.user_id) == scope.user_id))
    if search:
        where.append(
            or_(
                func.lower(VirtualKey.name).contains(search.lower(), autoescape=True),
                col(VirtualKey.prefix).startswith(search, autoescape=True),
            )
        )
    revoked, expires = col(VirtualKey.revoked_at), col(VirtualKey.expires_at)
    if status == "active":
        where += [revoked.is_(None), or_(expires.is_(None), expires > now)]
    elif status == "revoked":
        where.append(revoked.is_not(None))
    elif status == "expired":
        where += [revoked.is_(None), expires.is_not(None), expires <= now]
    return where


def spark_days(now: datetime) -> tuple[datetime, ...]:
    today = truncate(now, "d")
    return tuple(today - timedelta(days=n) for n in range(SPARK_DAYS - 1, -1, -1))


def daily_requests(engine: Engine, key_ids: list[int], days: tuple[datetime, ...]) -> dict[int, tuple[int, ...]]:
    """Requests per key per day from the daily rollups: one query for every key asked for."""
    out = {k: [0] * len(days) for k in key_ids}
    if not key_ids:
        return {}
    t = usage_rollups
    stmt = select(t.c.bucket, t.c.value, t.c.requests).where(
        t.c.grain == "d",
        t.c.dim == "key",
        t.c.bucket >= days[0],
        t.c.bucket < days[-1] + timedelta(days=1),
        t.c.value.in_([str(k) for k in key_ids]),
    )
    index = {d: i for i, d in enumerate(days)}
    with engine.connect() as conn:
        for bucket, value, requests in conn.execute(stmt):
            slot = index.get(utc(bucket))
            if slot is not None and value.isdigit() and int(value) in out:
                out[int(value)][slot] += int(requests)
    return {k: tuple(v) for k, v in out.items()}


def _owner(row: VirtualKey, users: dict[int, User], teams: dict[int, str]) -> tuple[str, str]:
    """(owner type, label) of a key; a key owned by a user and a team names both."""
    parts: list[str] = []
    kind = ""
    user = users.get(row.user_id) if row.user_id is not None else None
    if user is not None:
        kind = "service" if user.kind == "service" else "user"
        parts.append(user.name or user.email)
    if row.team_id is not None and row.team_id in teams:
        kind = kind or "team"
        parts.append(teams[row.team_id])
    return kind, " · ".join(parts)


def _rows(
    engine: Engine, scope: Scope, keys: list[VirtualKey], now: datetime
) -> tuple[list[KeyRow], tuple[datetime, ...]]:
    """Display rows for `keys`: owners, limits and budgets in one query each, usage in one rollup read."""
    ids = [k.id for k in keys if k.id is not None]
    user_ids = sorted({k.user_id for k in keys if k.user_id is not None})
    team_ids = sorted({k.team_id for k in keys if k.team_id is not None})
    with session(engine) as s:
        users = {u.id or 0: u for u in s.exec(select_model(User).where(col(User.id).in_(user_ids)))}
        teams = {t.id or 0: t.name for t in s.exec(select_model(Team).where(col(Team.id).in_(team_ids)))}
        limit_rows = s.exec(
            select_model(RateLimit).where(RateLimit.entity_type == "key", col(RateLimit.entity_id).in_(ids))
        )
        limits = {r.entity_id: KeyLimits(r.rpm, r.tpm, r.rpd, r.tpd) for r in limit_rows}
        budget_rows = s.exec(select_model(Budget).where(Budget.entity_type == "key", col(Budget.entity_id).in_(ids)))
        budgets = {b.entity_id: KeyBudget(b.daily_usd, b.monthly_usd) for b in budget_rows}
    days = spark_days(now)
    usage = daily_requests(engine, ids, days)
    rows = []
    for k in keys:
        assert k.id is not None
        kind, label = _owner(k, users, teams)
        rows.append(
            KeyRow(
                id=k.id,
                name=k.name,
                prefix=k.prefix,
                user_id=k.user_id,
                team_id=k.team_id,
                owner_type=kind,
                owner=label,
                allowed_aliases=tuple(k.allowed_aliases),
                expires_at=utc(k.expires_at) if k.expires_at else None,
                revoked_at=utc(k.revoked_at) if k.revoked_at else None,
                created_at=utc(k.created_at),
                created_by=k.created_by,
                status=status_of(k, now),
                limits=limits.get(k.id, KeyLimits()),
                budget=budgets.get(k.id, KeyBudget()),
                daily_requests=usage.get(k.id, (0,) * SPARK_DAYS),
                can_manage=can_manage_key(scope, k),
            )
        )
    return rows, days


def list_keys(
    engine: Engine,
    scope: Scope,
    *,
    search: str = "",
    status: str = "all",
    page: int = 1,
    page_size: int = PAGE_SIZE,
    now: datetime | None = None,
) -> KeyPage:
    """One page of the keys `scope` may see, newest first, filtered by name or prefix and by status."""
    now = utc(now or utcnow())
    status = status if status in STATUSES else "all"
    where = key_filters(scope, search.strip()[:MAX_SEARCH], status, now)
    with session(engine) as s:
        total = s.exec(select_model(func.count()).select_from(VirtualKey).where(*where)).one()
        pages = max(1, math.ceil(total / page_size))
        page = min(max(1, page), pages)
        order = (col(VirtualKey.created_at).desc(), col(VirtualKey.id).desc())
        stmt = select_model(VirtualKey).where(*where).order_by(*order).offset((page - 1) * page_size).limit(page_size)
        keys = list(s.exec(stmt))
    rows, days = _rows(engine, scope, keys, now)
    return KeyPage(rows, total, page, pages, days)


def get_key(engine: Engine, scope: Scope, key_id: int, now: datetime | None = None) -> KeyRow | None:
    """One key `scope` may see, as the page shows it (for the edit form), else None."""
    with session(engine) as s:
        row = s.get(VirtualKey, key_id)
    if row is None or not scope.sees(team_id=row.team_id, user_id=row.user_id):
        return None
    return _rows(engine, scope, [row], utc(now or utcnow()))[0][0]


def key_choices(engine: Engine, scope: Scope) -> KeyChoices:
    """Owners a key may be given to by this user (members: themselves and their teams) and every model alias."""
    with session(engine) as s:
        aliases = list(s.exec(select_model(ModelAlias.alias).order_by(ModelAlias.alias)))
        people = select_model(User).where(col(User.is_active).is_(True), User.kind == "person")
        if scope.team_ids is not None:
            people = people.where(User.id == scope.user_id)
        users = [Choice(u.id or 0, u.name or u.email) for u in s.exec(people.order_by(User.email))]
        teams_stmt = select_model(Team).order_by(Team.name)
        if scope.team_ids is not None:  # members: the teams they may act for
            acting_for = [t for t in sorted(scope.team_ids) if scope.manages_team(t)]
            teams_stmt = teams_stmt.where(col(Team.id).in_(acting_for))
        teams = [Choice(t.id or 0, t.name) for t in s.exec(teams_stmt)]
        services: list[Choice] = []
        if scope.team_ids is None:
            svc = select_model(User).where(col(User.is_active).is_(True), User.kind == "service")
            services = [Choice(u.id or 0, u.name or u.email) for u in s.exec(svc.order_by(User.name))]
    return KeyChoices(users, teams, services, aliases, scope.org_wide)
