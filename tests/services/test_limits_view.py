"""The Limits & budgets page's data: what each role sees (own usage; the organization's table from operator up;
editing for admins), statuses against budgets, the global default on keys, filters and pages, the budget time
zone in every spend reader (this page, Spend by user, the analytics API), and the page's display values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy.engine import Engine
from starlette.requests import Request

from llm_console.api import analytics
from llm_console.api.auth import Principal
from llm_console.api.handler import Api
from llm_console.db.engine import session
from llm_console.db.logstore import write_batch
from llm_console.db.models import Budget, Membership, RateLimit, Team, User
from llm_console.db.records import LogRecord
from llm_console.presenters.limits import form_values, limits_view
from llm_console.services import limits_view as view
from llm_console.services.keys import create_key, revoke_key
from llm_console.services.limits_admin import BudgetLimits, RateLimits, current_limits
from llm_console.services.limits_view import load_limits_page
from llm_console.services.spend import load_spend, parse_spend_query

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
ALL = parse_spend_query({})


@dataclass
class World:
    engine: Engine
    ids: dict[str, int]


def spend(at: datetime, cost: float, *, key: int | None = None, user: int | None = None, team: int | None = None):
    return LogRecord(
        id=str(uuid.uuid4()),
        created_at=at,
        endpoint="/v1/chat/completions",
        key_id=key,
        user_id=user,
        team_id=team,
        cost_usd=cost,
    )


@pytest.fixture
def world(engine: Engine) -> World:
    """Ana (member) and Vic (viewer) in Research, Bo (member) in Sales; an operator and an admin; keys for each
    team and person; budgets and limits on some; a global default of 100 RPM; spend today and this month."""
    ids: dict[str, int] = {}
    with session(engine) as s:
        for name, role in [
            ("admin", "admin"),
            ("op", "operator"),
            ("ana", "member"),
            ("vic", "viewer"),
            ("bo", "member"),
        ]:
            user = User(email=f"{name}@example.com", role=role)
            s.add(user)
            s.flush()
            ids[name] = user.id or 0
        for team in ("Research", "Sales"):
            row = Team(name=team)
            s.add(row)
            s.flush()
            ids[team] = row.id or 0
        for user, team in [("ana", "Research"), ("vic", "Research"), ("bo", "Sales")]:
            s.add(Membership(user_id=ids[user], team_id=ids[team], role="viewer" if user == "vic" else "member"))
        s.commit()
    for name, owner in [("ana-key", {"user_id": ids["ana"]}), ("research-key", {"team_id": ids["Research"]})]:
        ids[name] = create_key(engine, name=name, actor="t", **owner).id
    for name, owner in [("bo-key", {"user_id": ids["bo"]}), ("sales-key", {"team_id": ids["Sales"]})]:
        ids[name] = create_key(engine, name=name, actor="t", **owner).id
    ids["old-key"] = create_key(engine, name="old-key", actor="t", user_id=ids["ana"]).id
    revoke_key(engine, ids["old-key"], actor="t")
    with session(engine) as s:
        s.add(Budget(entity_type="user", entity_id=ids["ana"], daily_usd=10.0, monthly_usd=100.0))
        s.add(Budget(entity_type="team", entity_id=ids["Research"], monthly_usd=50.0))
        s.add(Budget(entity_type="key", entity_id=ids["ana-key"], daily_usd=4.0))
        s.add(Budget(entity_type="team", entity_id=ids["Sales"], daily_usd=1.0))
        s.add(RateLimit(entity_type="key", entity_id=ids["ana-key"], rpm=5))
        s.add(RateLimit(entity_type="user", entity_id=ids["bo"], tpm=1000))
        s.add(RateLimit(entity_type="default", entity_id=0, rpm=100))
        s.commit()
    write_batch(
        engine,
        [
            spend(NOW - timedelta(hours=1), 3.5, key=ids["ana-key"], user=ids["ana"]),  # key: 3.5 of 4 today
            spend(NOW - timedelta(days=3), 42.0, key=ids["research-key"], team=ids["Research"]),  # 84% of the month
            spend(NOW - timedelta(hours=2), 2.0, key=ids["sales-key"], team=ids["Sales"]),  # 200% of its day
        ],
    )
    return World(engine, ids)


def by_entity(rows: list[view.EntityUsage]) -> dict[tuple[str, str], view.EntityUsage]:
    return {(u.entity_type, u.name.split(" (")[0]): u for u in rows}


def test_my_usage_is_my_user_my_teams_and_the_keys_i_can_see(world: World) -> None:
    ana = load_limits_page(world.engine, user_id=world.ids["ana"], role="member", query=ALL, now=NOW)
    mine = by_entity(ana.mine)
    assert set(mine) == {
        ("user", "ana@example.com"),
        ("team", "Research"),
        ("key", "ana-key"),
        ("key", "research-key"),
    }  # not Sales, not Bo's key, not the revoked key
    assert (mine[("user", "ana@example.com")].status, mine[("user", "ana@example.com")].spend.day_usd) == ("ok", 3.5)
    assert mine[("key", "ana-key")].status == "warning"  # 3.5 of 4.0 today
    assert mine[("team", "Research")].status == "warning"  # 42 of 50 this month
    assert mine[("key", "research-key")].status == "none"  # spent, but no budget of its own
    own = mine[("key", "ana-key")]
    assert (own.limits, own.limits_from_default) == (RateLimits(rpm=5), False)
    fallback = mine[("key", "research-key")]
    assert (fallback.limits, fallback.limits_from_default) == (RateLimits(rpm=100), True)
    team = mine[("team", "Research")]
    assert (team.limits, team.limits_from_default) == (RateLimits(), False)  # the default is for keys only
    assert (ana.rows, ana.org_wide, ana.can_edit) == ([], False, False)

    vic = load_limits_page(world.engine, user_id=world.ids["vic"], role="viewer", query=ALL, now=NOW)
    assert set(by_entity(vic.mine)) == {("user", "vic@example.com"), ("team", "Research"), ("key", "research-key")}
    assert (vic.rows, vic.can_edit) == ([], False)


def test_operators_see_every_limit_and_budget_worst_first_and_only_admins_edit(world: World) -> None:
    op = load_limits_page(world.engine, user_id=world.ids["op"], role="operator", query=ALL, now=NOW)
    assert (op.org_wide, op.can_edit) == (True, False)
    assert [(u.entity_type, u.name.split(" (")[0], u.status) for u in op.rows] == [
        ("team", "Sales", "exceeded"),
        ("team", "Research", "warning"),
        ("key", "ana-key", "warning"),
        ("user", "ana@example.com", "ok"),
        ("user", "bo@example.com", "none"),  # a rate limit, no budget
    ]
    assert op.counts == {"all": 5, "none": 1, "ok": 1, "warning": 2, "exceeded": 1}
    assert op.default == RateLimits(rpm=100)
    assert [u.entity_type for u in op.mine] == ["user"]  # the operator's own: no teams, no keys
    admin = load_limits_page(world.engine, user_id=world.ids["admin"], role="admin", query=ALL, now=NOW)
    assert admin.can_edit and admin.rows == op.rows


def test_status_filter_search_and_pages(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def rows(**params: str) -> list[str]:
        page = load_limits_page(
            world.engine, user_id=world.ids["op"], role="operator", query=parse_spend_query(params), now=NOW
        )
        return [u.name.split(" (")[0] for u in page.rows]

    assert rows(status="warning") == ["Research", "ana-key"]
    assert rows(status="exceeded") == ["Sales"]
    assert rows(q="ANA") == ["ana-key", "ana@example.com"]
    assert rows(q="%") == []  # a plain substring, no wildcard
    monkeypatch.setattr(view, "PAGE_SIZE", 2)
    assert rows(page="2") == ["ana-key", "ana@example.com"]
    last = load_limits_page(
        world.engine, user_id=world.ids["op"], role="operator", query=parse_spend_query({"page": "9"}), now=NOW
    )
    assert (last.page, last.pages, last.matched, [u.name for u in last.rows]) == (3, 3, 5, ["bo@example.com"])


def test_days_and_months_are_those_of_the_budget_time_zone(world: World) -> None:
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # already April 1st in Berlin (UTC+2 since March 29)
    write_batch(world.engine, [spend(late, 1.0, key=world.ids["bo-key"], user=world.ids["bo"])])
    after = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)

    def bo(tz: str) -> tuple[float, float]:
        page = load_limits_page(world.engine, user_id=world.ids["bo"], role="member", query=ALL, now=after, tz=tz)
        user = by_entity(page.mine)[("user", "bo@example.com")]
        return user.spend.day_usd, user.spend.month_usd

    assert bo("UTC") == (0.0, 0.0)  # March 31st in UTC: neither today nor this month
    assert bo("Europe/Berlin") == (1.0, 1.0)
    spend_page = load_spend(world.engine, parse_spend_query({"q": "bo@"}), after, tz="Europe/Berlin")
    assert spend_page.timezone == "Europe/Berlin" and spend_page.rows[0].spend.day_usd == 1.0
    assert load_spend(world.engine, parse_spend_query({"q": "bo@"}), after).rows[0].spend.day_usd == 0.0


async def test_the_analytics_api_counts_and_names_the_budget_time_zone(world: World) -> None:
    api = Api(lambda: world.engine, None, lambda: datetime(2026, 4, 1, 8, 0, tzinfo=UTC), lambda: "Europe/Berlin")  # type: ignore[arg-type]
    write_batch(world.engine, [spend(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), 1.0, user=world.ids["bo"])])
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []})
    response = await analytics.user_spend(api, request, Principal("key", "test", "admin"))
    body = orjson.loads(response.body)
    assert (body["timezone"], body["day_start"], body["month_start"]) == (
        "Europe/Berlin",
        "2026-03-31T22:00:00Z",
        "2026-03-31T22:00:00Z",
    )
    assert {r["user"]: r["day_usd"] for r in body["data"]}["bo@example.com"] == 1.0


def test_display_values_name_the_zone_and_the_default(world: World) -> None:
    page = load_limits_page(world.engine, user_id=world.ids["ana"], role="member", query=ALL, now=NOW, tz="Asia/Tokyo")
    shown = limits_view(page)
    assert (shown.day_label, shown.month_label) == ("Today (Asia/Tokyo)", "This month (Asia/Tokyo)")
    rows = {r["name"].split(" (")[0]: r for r in shown.mine}  # type: ignore[union-attr]
    key = rows["research-key"]
    assert (key["limits"], key["limits_source"], key["status_label"]) == ("100 RPM", "global default", "No budget")
    assert (key["day_aria"], key["month_text"]) == ("Today (Asia/Tokyo): $0.00, no limit", "$42.00 · no limit")
    own = rows["ana-key"]
    assert (own["limits"], own["limits_source"], own["budget"], own["status"]) == ("5 RPM", "", "$4/day", "warning")
    assert own["day_text"] == "$3.50 of $4.00 (88%)" and own["day_pct"] == 88
    assert shown.default_text == "100 RPM" and not shown.can_edit
    ref, limits, budget = current_limits(world.engine, "key", world.ids["research-key"])
    assert form_values(ref, limits, budget)["rpm"] == ""  # its own limits: none (the default is not copied in)
    ref, limits, budget = current_limits(world.engine, "user", world.ids["ana"])
    values = form_values(ref, RateLimits(tpd=1_000_000), budget)
    assert (values["name"], values["tpd"], values["daily_usd"], values["monthly_usd"]) == (
        "ana@example.com",
        "1000000",
        "10",
        "100",
    )
    assert form_values(None, RateLimits(), BudgetLimits())["entity_type"] == "user"
