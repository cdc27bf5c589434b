"""The Limits & budgets page's data: the caller's own usage, and every entity with a limit or a budget.

"My usage" is every signed-in user's self-service view: their own user, the teams they belong to and the
active keys they can see (their own, and their teams' keys, as on the keys page), each with today's and this
month's spend against its budgets and the rate limits that apply. Operators and admins also get the
organization's table of every user, team and key with a rate limit, a budget or a tier, filtered and paginated
here so the browser only ever receives one page. Days and months are those of LLMC_BUDGET_TIMEZONE.

Limits and budgets are the effective ones, as the gateway enforces them (limits/plan.py): own values where
set, else the tier's; budgets include active temporary increases; a budget reset in the current period
counts spend from the reset on (`day_reset_at` / `month_reset_at` say since when).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Budget, Membership, RateLimit, VirtualKey
from llm_console.db.queries.filters import utc
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.spend import Spend, spend_by_entity
from llm_console.db.tier_tables import LimitTier
from llm_console.limits.plan import own_or
from llm_console.services.effective_budgets import Budgets, load_budgets
from llm_console.services.key_list import key_filters
from llm_console.services.limits_admin import DEFAULT_ENTITY, RateLimits
from llm_console.services.scope import ORG_WIDE_ROLE, Scope
from llm_console.services.spend import STATUS_RANK, SpendQuery, budget_status

PAGE_SIZE = 50
ENTITY_TYPES = ("user", "team", "key")
STATUS_ORDER = {**STATUS_RANK, "none": len(STATUS_RANK)}
Entity = tuple[str, int]


@dataclass(frozen=True, slots=True)
class EntityUsage:
    """One user, team or key: its spend this day and month against its budgets, and its rate limits."""

    entity_type: str
    entity_id: int
    name: str
    spend: Spend
    limits: RateLimits
    limits_from_default: bool  # a key without rate limits of its own nor a tier: the global default applies
    tier: str | None = None  # the tier the entity is on; its values fill the limits the entity does not set
    day_increase_usd: float = 0.0  # active temporary increases, included in the spend's budgets
    month_increase_usd: float = 0.0
    day_reset_at: datetime | None = None  # the day's spend counts from this reset on (None: whole day)
    month_reset_at: datetime | None = None

    @property
    def status(self) -> str:
        """ "none" without any budget; else ok / warning (from 80%) / exceeded (from 100%) of the worst budget."""
        s = self.spend
        if s.daily_budget_usd is None and s.monthly_budget_usd is None:
            return "none"
        return budget_status(max(x for x in (s.day_share, s.month_share) if x is not None))

    @property
    def entity(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass(frozen=True, slots=True)
class LimitsPage:
    mine: list[EntityUsage]
    rows: list[EntityUsage]  # this page of the organization's table (empty below operator)
    matched: int  # entities matching the filters, over every page
    page: int
    pages: int
    counts: dict[str, int]  # entities matching the search, per status ("all", "none", "ok", "warning", "exceeded")
    query: SpendQuery
    default: RateLimits  # the global default rate limits (empty: none)
    org_wide: bool  # the caller sees the organization's table
    can_edit: bool  # the caller may change limits and budgets (admins)
    timezone: str
    as_of: datetime


@dataclass(frozen=True, slots=True)
class _World:
    """Everything both sections are built from: spend per entity, rate limits, tiers, resets, names."""

    spend: dict[str, dict[int, Spend]]
    limits: dict[Entity, RateLimits]
    budgeted: set[Entity]
    names: Directory
    budgets: Budgets  # tiers, resets and increases: budget use as the gateway enforces it

    @property
    def tiers(self) -> dict[Entity, LimitTier]:
        return self.budgets.tiers

    @property
    def configured(self) -> set[Entity]:
        """Every user, team and key with a rate-limit row, a budget row or a tier."""
        return {e for e in set(self.limits) | self.budgeted | set(self.tiers) if e[0] in ENTITY_TYPES}

    def usage(self, entity_type: str, entity_id: int) -> EntityUsage:
        entity = (entity_type, entity_id)
        spend = self.spend[entity_type].get(entity_id) or Spend(entity_id, 0.0, 0.0, None, None)
        own, tier = self.limits.get(entity), self.tiers.get(entity)
        from_default = own is None and tier is None and entity_type == "key" and DEFAULT_ENTITY in self.limits
        if from_default:
            limits = self.limits[DEFAULT_ENTITY]
        else:
            mine = (own or RateLimits()).as_dict()
            limits = RateLimits(**{n: own_or(v, getattr(tier, n, None)) for n, v in mine.items()})  # type: ignore[arg-type]
        use = self.budgets.use(entity_type, spend)
        return EntityUsage(
            entity_type,
            entity_id,
            self.names.name(entity_type, str(entity_id)),
            use.spend,
            limits,
            from_default,
            tier=use.tier,
            day_increase_usd=use.day_increase_usd,
            month_increase_usd=use.month_increase_usd,
            day_reset_at=use.day_reset_at,
            month_reset_at=use.month_reset_at,
        )


def _world(engine: Engine, now: datetime, tz: str) -> _World:
    spend = {t: {s.entity_id: s for s in spend_by_entity(engine, t, now, tz=tz)} for t in ENTITY_TYPES}
    with session(engine) as s:
        limits = {(r.entity_type, r.entity_id): RateLimits.of(r) for r in s.exec(select(RateLimit))}
        budgeted = {(t, i) for t, i in s.exec(select(Budget.entity_type, Budget.entity_id))}
    return _World(spend, limits, budgeted, load_directory(engine), load_budgets(engine, now, tz))


def my_entities(engine: Engine, user_id: int, now: datetime) -> list[Entity]:
    """The caller's user, their teams, and the active keys they own or their teams own."""
    with session(engine) as s:
        teams = sorted(s.exec(select(Membership.team_id).where(Membership.user_id == user_id)))
        # The keys page's rule for a team-scoped user, whatever this user's role: "mine" is personal.
        mine = Scope(user_id, "member", frozenset(teams))
        keys = sorted(k for k in s.exec(select(VirtualKey.id).where(*key_filters(mine, "", "active", now))) if k)
    return [("user", user_id), *(("team", t) for t in teams), *(("key", k) for k in keys)]


def _sort_key(u: EntityUsage) -> tuple[int, float, int, str]:
    return STATUS_ORDER[u.status], -u.spend.month_usd, ENTITY_TYPES.index(u.entity_type), u.name.lower()


def organization_rows(world: _World, query: SpendQuery) -> tuple[list[EntityUsage], dict[str, int]]:
    """Every entity with a rate limit or a budget matching the query, worst first; and counts per status."""
    everyone = [world.usage(t, i) for t, i in world.configured]
    needle = query.q.lower()
    found = [u for u in everyone if needle in u.name.lower()] if needle else everyone
    counts = dict.fromkeys(("all", "none", "ok", "warning", "exceeded"), 0)
    counts["all"] = len(found)
    for u in found:
        counts[u.status] += 1
    chosen = [u for u in found if u.status == query.status] if query.status else found
    return sorted(chosen, key=_sort_key), counts


def load_limits_page(
    engine: Engine, *, user_id: int, role: str, query: SpendQuery, now: datetime | None = None, tz: str = "UTC"
) -> LimitsPage:
    """The page for one signed-in user: their own usage, and for operators and admins one page of the
    organization's table (a page past the end shows the last one)."""
    now = utc(now or datetime.now(UTC))
    world = _world(engine, now, tz)
    mine = [world.usage(t, i) for t, i in my_entities(engine, user_id, now)]
    org_wide = has_role_name(role, ORG_WIDE_ROLE)
    rows: list[EntityUsage] = []
    counts = dict.fromkeys(("all", "none", "ok", "warning", "exceeded"), 0)
    if org_wide:
        rows, counts = organization_rows(world, query)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(query.page, pages)
    start = (page - 1) * PAGE_SIZE
    return LimitsPage(
        mine=mine,
        rows=rows[start : start + PAGE_SIZE],
        matched=len(rows),
        page=page,
        pages=pages,
        counts=counts,
        query=query,
        default=world.limits.get(DEFAULT_ENTITY, RateLimits()),
        org_wide=org_wide,
        can_edit=has_role_name(role, "admin"),
        timezone=tz,
        as_of=now,
    )
