"""Spend by user: every user's spend today and this month against their budgets, filtered and paginated.

The page's own URL parameters (`status`, `q`, `page`) are validated here, apart from the dashboards'
shared filters, because `status` means a budget state on this page and a request outcome elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy.engine import Engine

from llm_console.db.queries.spend import Spend, share_status
from llm_console.services.effective_budgets import BudgetUse, budget_use
from llm_console.services.scope import Scope, visible_directory

PAGE_SIZE = 50
MAX_SEARCH = 200
MAX_PAGE = 100_000
STATUS_FILTERS = ("warning", "exceeded")
PARAMS = ("status", "q", "page")
STATUS_RANK = {"exceeded": 0, "warning": 1, "ok": 2}


def budget_status(share: float | None) -> str:
    """ "none" without a budget; else OK below 80%, Warning from 80%, Exceeded at 100% and over."""
    return "none" if share is None else share_status(share)


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """The accepted view: a status filter ("" for all), an email search and a 1-based page."""

    status: str = ""
    q: str = ""
    page: int = 1
    errors: list[str] = field(default_factory=list, compare=False)

    def params(self, **changes: str | None) -> dict[str, str]:
        """These parameters with `changes` applied (None or "" removes one); a changed filter resets the page."""
        merged = {"status": self.status, "q": self.q, "page": str(self.page) if self.page > 1 else ""}
        changed = {n: v or "" for n, v in changes.items() if n in PARAMS and (v or "") != merged[n]}
        if any(name != "page" for name in changed):
            merged["page"] = ""
        merged.update(changed)
        if merged["page"] == "1":
            merged["page"] = ""
        return {k: merged[k] for k in PARAMS if merged[k]}

    def query_string(self, **changes: str | None) -> str:
        return urlencode(self.params(**changes))


def parse_spend_query(params: Mapping[str, str]) -> SpendQuery:
    """The page's parameters, each checked; what could not be used is listed in `errors`."""
    errors: list[str] = []
    status = str(params.get("status", "") or "")
    if status and status not in STATUS_FILTERS:
        errors.append(f"Unknown status {status[:20]!r}: use warning or exceeded.")
        status = ""
    q = str(params.get("q", "") or "").strip()
    if len(q) > MAX_SEARCH:
        errors.append(f"The search was cut to its first {MAX_SEARCH} characters.")
        q = q[:MAX_SEARCH]
    page = 1
    raw_page = str(params.get("page", "") or "")
    if raw_page:
        if raw_page.isdigit() and len(raw_page) <= 7 and 1 <= int(raw_page) <= MAX_PAGE:
            page = int(raw_page)
        else:
            errors.append("Ignored page: expected a page number.")
    return SpendQuery(status, q, page, errors)


@dataclass(frozen=True, slots=True)
class UserSpend:
    user_id: int
    email: str
    spend: Spend  # as the budgets count it (effective_budgets): tier budgets, increases, resets applied
    use: BudgetUse | None = None  # what shaped it (None: the user never spent and has no budget)

    @property
    def status(self) -> str:
        return self.spend.status


@dataclass(frozen=True, slots=True)
class SpendPage:
    rows: list[UserSpend]  # this page only
    matched: int  # users matching the filters, over every page
    page: int
    pages: int
    counts: dict[str, int]  # users matching the search, per status ("all", "ok", "warning", "exceeded")
    query: SpendQuery
    as_of: datetime
    timezone: str = "UTC"  # whose days and months the spend is counted in (LLMC_BUDGET_TIMEZONE)


def _sort_key(u: UserSpend) -> tuple[int, float, str]:
    return STATUS_RANK[u.status], -u.spend.month_usd, u.email.lower()


def user_spend(
    engine: Engine, query: SpendQuery, now: datetime, scope: Scope | None = None, tz: str = "UTC"
) -> tuple[list[UserSpend], dict[str, int]]:
    """Every user matching the query, worst status first then highest month spend; and counts per status.

    A team-scoped `scope` (member, viewer) narrows the list to the people in the caller's teams and themself.
    Today and this month are those of the time zone `tz`.
    """
    directory = visible_directory(engine, scope)
    uses = {u.spend.entity_id: u for u in budget_use(engine, "user", now, tz=tz)}
    if scope is not None and not scope.org_wide:
        uses = {uid: row for uid, row in uses.items() if uid in directory.users}
    everyone = [
        UserSpend(
            uid,
            directory.name("user", str(uid)),
            uses[uid].spend if uid in uses else Spend(uid, 0.0, 0.0, None, None),
            uses.get(uid),
        )
        for uid in sorted(set(directory.users) | set(uses))
    ]
    needle = query.q.lower()
    found = [u for u in everyone if needle in u.email.lower()] if needle else everyone
    counts = {"all": len(found), "ok": 0, "warning": 0, "exceeded": 0}
    for u in found:
        counts[u.status] += 1
    chosen = [u for u in found if u.status == query.status] if query.status else found
    return sorted(chosen, key=_sort_key), counts


def load_spend(
    engine: Engine, query: SpendQuery, now: datetime | None = None, scope: Scope | None = None, tz: str = "UTC"
) -> SpendPage:
    """One page of `PAGE_SIZE` users (those `scope` may see); a page past the end shows the last one."""
    now = now or datetime.now(UTC)
    rows, counts = user_spend(engine, query, now, scope, tz)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(query.page, pages)
    start = (page - 1) * PAGE_SIZE
    return SpendPage(rows[start : start + PAGE_SIZE], len(rows), page, pages, counts, query, now, tz)
