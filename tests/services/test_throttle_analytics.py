"""Rate-limit analytics on seeded rows, SQLite and PostgreSQL: refusals per bucket and limit family, top
consumers with their refused calls, breach episodes (an hour without refusals splits one), a key's spike
flagged by robust z while flat traffic is not, and a burst of refused credentials from one address.

Log records go through the real writer (write_batch), refused credentials through the gateway's
write_auth_failures; every expectation is worked out by hand in the comments.
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine

import llm_console.state.dashboard as dashboard_module
import llm_console.state.throttle_analytics as state_module
from llm_console import routes
from llm_console.db.records import LogRecord
from llm_console.db.rollups import truncate
from llm_console.gateway.authfail import write_auth_failures
from llm_console.services.sessions import SessionUser
from llm_console.services.throttle_abuse import abuse_patterns, auth_bursts, key_spikes
from llm_console.services.throttle_analytics import (
    Throttle,
    auto_grain,
    breach_timeline,
    load_throttle_analytics,
    parse_throttle,
    throttled_over_time,
    top_consumers,
)
from llm_console.settings import Settings
from llm_console.state.throttle_analytics import ThrottleAnalyticsState
from tests.db.seeding import add_rows, at, backends_fixture, db_fixture, directory_rows, rec, write  # noqa: F401

HOUR = timedelta(hours=1)


def refused(
    when: datetime, throttle: str, *, key_id: int = 1, user_id: int | None = 1, team_id: int | None = 1
) -> LogRecord:
    """A call the limiter refused: status 429 and the entity|limit that refused it, no tokens, no cost."""
    r = rec(when, key_id=key_id, user_id=user_id, team_id=team_id, status="error", deployment_id=None)
    return replace(r, status_code=429, error_type="rate_limit_exceeded", throttle=throttle)


def calls(when: datetime, n: int, **kw: object) -> list[LogRecord]:
    """`n` successful calls spread over the minute after `when` (one second apart)."""
    return [rec(when + timedelta(seconds=i % 60), **kw) for i in range(n)]  # type: ignore[arg-type]


def test_parse_throttle_and_auto_grain() -> None:
    assert parse_throttle("key:12|rpm") == Throttle("key", 12, "rpm")
    assert parse_throttle("user:3|daily_usd") == Throttle("user", 3, "daily_usd")
    assert parse_throttle("user:3|daily_usd").family == "budget"  # type: ignore[union-attr]
    assert parse_throttle("team:1|tpd").family == "tokens"  # type: ignore[union-attr]
    for bad in ("", "key:12", "key|rpm", "key:x|rpm", ":1|rpm", "key:1|"):
        assert parse_throttle(bad) is None, bad
    start = at(10)
    assert auto_grain(start, start + HOUR) == "m"  # 60 minutes
    assert auto_grain(start, start + 6 * HOUR) == "m"  # 360 minutes <= 400
    assert auto_grain(start, start + 24 * HOUR) == "h"  # 1440 minutes > 400, 24 hours
    assert auto_grain(start, start + timedelta(days=16)) == "h"  # 384 hours
    assert auto_grain(start, start + timedelta(days=30)) == "d"  # 720 hours > 400


def test_refusals_per_bucket_split_by_family_and_zero_filled(db: Engine) -> None:
    write(
        db,
        *calls(at(10, 1), 10, key_id=1),  # admitted calls: never counted as refusals
        refused(at(10, 1, 10), "key:1|rpm"),
        refused(at(10, 1, 10, 30), "key:1|rpm"),
        refused(at(10, 1, 10, 59), "key:1|rpm"),
        refused(at(10, 1, 50), "key:1|rpd"),
        refused(at(10, 1, 51), "key:1|rpd"),
        refused(at(10, 3, 5), "user:1|tpd"),
        *[refused(at(10, 3, 30), "team:1|daily_usd") for _ in range(4)],
        refused(at(9, 23, 59), "key:1|rpm"),  # before the range
        refused(at(10, 6), "key:1|rpm"),  # the range's end is exclusive
        replace(rec(at(10, 2), key_id=1, status="error"), status_code=429),  # an upstream 429: not the limiter's
    )
    s = throttled_over_time(db, at(10), at(10, 6), grain="h")
    assert s.grain == "h"
    assert [p.bucket for p in s.points] == [at(10, h) for h in range(6)]
    # 01:00 holds 3 RPM + 2 RPD (request limits); 03:00 one TPD (tokens) and four daily budgets.
    assert [(p.requests, p.tokens, p.budget) for p in s.points] == [
        (0, 0, 0), (5, 0, 0), (0, 0, 0), (0, 1, 4), (0, 0, 0), (0, 0, 0),
    ]  # fmt: skip
    assert s.by_limit == {"daily_usd": 4, "rpd": 2, "rpm": 3, "tpd": 1}
    assert s.by_family == {"requests": 5, "tokens": 1, "budget": 4}
    assert s.total == 10  # 5 + 1 + 4

    minutes = throttled_over_time(db, at(10), at(10, 6))  # six hours: per minute automatically
    assert minutes.grain == "m" and len(minutes.points) == 360  # 6 x 60, zero-filled
    by_minute = {p.bucket: p.total for p in minutes.points if p.total}
    assert by_minute == {at(10, 1, 10): 3, at(10, 1, 50): 1, at(10, 1, 51): 1, at(10, 3, 5): 1, at(10, 3, 30): 4}
    assert minutes.total == 10


def test_top_consumers_ranked_with_their_refused_calls(db: Engine) -> None:
    add_rows(db, *directory_rows())  # keys 1 "ci", 2; users 1 alice, 2 bob; team 1 research
    write(
        db,
        # key 1 (alice, research): 30 calls of 10 + 5 tokens and $0.01 each, 5 refused by its own RPM and 1 by
        # the team's TPM -> 36 requests, 450 tokens, $0.30, 6 refused.
        *calls(at(10, 2), 30, key_id=1, user_id=1, team_id=1, prompt=10, completion=5, cost=0.01),
        *[refused(at(10, 2, 30), "key:1|rpm") for _ in range(5)],
        refused(at(10, 2, 31), "team:1|tpm"),
        # key 2 (bob, no team): 20 calls of 100 + 100 tokens and $0.05 each, 3 refused by bob's daily budget
        # -> 23 requests, 4,000 tokens, $1.00, 3 refused.
        *calls(at(10, 5), 20, key_id=2, user_id=2, team_id=None, prompt=100, completion=100, cost=0.05),
        *[refused(at(10, 5, 30), "user:2|daily_usd", key_id=2, user_id=2, team_id=None) for _ in range(3)],
        # a deleted key: 2 calls, no tokens
        *calls(at(10, 7), 2, key_id=9, user_id=None, team_id=None),
        # the day before: 200 calls of key 2, outside the range
        *calls(at(9, 12), 200, key_id=2, user_id=2, team_id=None, prompt=1000, cost=1.0),
    )
    start, end = at(10), at(11)
    top = top_consumers(db, start, end)
    assert [(c.id, c.name, c.requests, c.tokens, c.refused) for c in top.keys] == [
        (1, "ci (sk-abc…)", 36, 450, 6),
        (2, "key (sk-def…)", 23, 4000, 3),
        (9, "#9 (deleted)", 2, 0, 0),
    ]
    assert [c.cost_usd for c in top.keys] == pytest.approx([0.30, 1.00, 0.0])
    assert top.keys[0].refused_share == pytest.approx(6 / 36)
    # users: alice 36 (no refusal named her), bob 23 with his 3 budget refusals; team research 36 with 1.
    assert [(c.name, c.requests, c.refused) for c in top.users] == [
        ("alice@example.com", 36, 0),
        ("bob@example.com", 23, 3),
    ]
    assert [(c.name, c.requests, c.refused) for c in top.teams] == [("research", 36, 1)]

    # One by tokens: key 2 (4,000), joined by the most refused key, key 1 (6 refused), ranked by tokens.
    by_tokens = top_consumers(db, start, end, order="tokens", limit=1)
    assert [(c.id, c.tokens, c.refused) for c in by_tokens.keys] == [(2, 4000, 3), (1, 450, 6)]
    assert [c.id for c in by_tokens.users] == [2]  # bob: most tokens and the only refused user
    assert [(c.id, c.refused) for c in by_tokens.teams] == [(1, 1)]
    # One by requests: key 1 (36) is also the most refused; the deleted key 9 (2 calls) is left out.
    assert [c.id for c in top_consumers(db, start, end, limit=1).keys] == [1]
    by_cost = top_consumers(db, start, end, order="cost_usd")
    assert [c.id for c in by_cost.keys] == [2, 1, 9]  # $1.00, $0.30, $0
    with pytest.raises(ValueError, match="ranked by requests, tokens, cost_usd"):
        top_consumers(db, start, end, order="latency")


def test_breach_episodes_merge_consecutive_hours_and_a_quiet_hour_splits_them(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(
        db,
        *[refused(at(10, 1, m), "key:1|rpm") for m in (0, 59)],  # 01:00 2
        *[refused(at(10, 2, m), "key:1|rpm") for m in (1, 2, 3)],  # 02:00 3 (adjacent: same episode)
        refused(at(10, 4, 15), "key:1|rpm"),  # 03:00 had none: a new episode at 04:00
        *[refused(at(10, 2, 40), "user:2|tpd", key_id=2, user_id=2, team_id=None) for _ in range(4)],
    )
    episodes = breach_timeline(db, at(10), at(10, 12))
    # Newest first by end: key 1 04:00-05:00; then two ending 03:00, the later start (bob's) first.
    assert [(e.throttle.value, e.name, e.start, e.end, e.hours, e.refusals) for e in episodes] == [
        ("key:1|rpm", "ci (sk-abc…)", at(10, 4), at(10, 5), 1, 1),
        ("user:2|tpd", "bob@example.com", at(10, 2), at(10, 3), 1, 4),
        ("key:1|rpm", "ci (sk-abc…)", at(10, 1), at(10, 3), 2, 5),  # 2 + 3
    ]
    assert breach_timeline(db, at(10, 3), at(10, 12)) == episodes[:1]  # only hours in the range
    assert len(breach_timeline(db, at(10), at(10, 12), limit=2)) == 2


def test_a_key_spike_is_flagged_and_flat_traffic_is_not(db: Engine) -> None:
    add_rows(db, *directory_rows())
    checked_from, checked_to = at(10, 10), at(10, 12)  # hours 10:00 and 11:00 are checked
    records: list[LogRecord] = []
    # key 1: a flat 50 calls an hour from 9 March 10:00 to 10 March 11:00 (26 hours).
    for h in range(26):
        records += calls(at(9, 10) + h * HOUR, 50, key_id=1)
    # key 2: 4 and 6 calls in alternate hours from 9 March 11:00 to 10 March 10:00 (24 hours), then 200.
    for h in range(24):
        records += calls(at(9, 11) + h * HOUR, 4 if h % 2 else 6, key_id=2)
    records += calls(at(10, 11), 200, key_id=2)
    records += calls(at(10, 11), 40, key_id=3)  # a new key, but under 50 calls: not even checked
    records += calls(at(10, 11), 60, key_id=4)  # a new key with nothing in the previous 24 hours
    write(db, *records)

    spikes, checked = key_spikes(db, checked_from, checked_to)
    # Checked: key 1 at 10:00 and 11:00 (50 each), key 2 at 11:00 (200), key 4 at 11:00 (60) -> 4.
    assert checked == 4
    # key 4: a window of 24 zeros: median 0, MAD 0, mean deviation 0 -> any rise is +inf.
    # key 2: window twelve 4s and twelve 6s -> median 5, |w - 5| all 1 -> MAD 1;
    #        z = 0.6745 * (200 - 5) / 1 = 131.5275.
    # key 1: window 24 x 50 -> z = 0: not flagged.
    assert [(s.key_id, s.hour, s.calls, s.median, s.mad) for s in spikes] == [
        (4, at(10, 11), 60, 0.0, 0.0),
        (2, at(10, 11), 200, 5.0, 1.0),
    ]
    assert math.isinf(spikes[0].z) and spikes[0].z > 0
    assert spikes[1].z == pytest.approx(131.5275)
    assert spikes[1].name == "key (sk-def…)"
    # A stricter minimum leaves only key 2 (200 calls); a threshold above 131.5 leaves only the infinite one.
    assert [s.key_id for s in key_spikes(db, checked_from, checked_to, min_calls=100)[0]] == [2]
    assert [s.key_id for s in key_spikes(db, checked_from, checked_to, z_threshold=200)[0]] == [4]
    # Key 1 alone over a range of flat hours: nothing flagged.
    assert key_spikes(db, at(10, 9), at(10, 11))[0] == []


def test_a_burst_of_refused_credentials_from_one_address_is_found(db: Engine) -> None:
    write_auth_failures(
        db,
        Counter(
            {
                (at(10, 10, 5), "203.0.113.7"): 25,
                (at(10, 10, 6), "203.0.113.7"): 30,
                (at(10, 10, 7), "203.0.113.7"): 5,  # under 20: not a burst minute, but in the total
                (at(10, 10, 5), "198.51.100.2"): 19,  # one short
                (at(10, 10, 30), "198.51.100.2"): 20,  # exactly the threshold
                (at(10, 9, 59), "203.0.113.7"): 50,  # before the range
                (at(10, 10, 8), "192.0.2.1"): 3,
            }
        ),
    )
    start, end = at(10, 10), at(10, 12)
    bursts = auth_bursts(db, start, end)
    assert [
        (b.address, b.burst_minutes, b.burst_refusals, b.peak, b.peak_at, b.first_at, b.last_at, b.total_refusals)
        for b in bursts
    ] == [
        # 25 + 30 in bursts, peak 30 at 10:06; 25 + 30 + 5 = 60 in the range (the 50 at 09:59 are outside).
        ("203.0.113.7", 2, 55, 30, at(10, 10, 6), at(10, 10, 5), at(10, 10, 6), 60),
        # 20 at 10:30; 19 + 20 = 39 in the range.
        ("198.51.100.2", 1, 20, 20, at(10, 10, 30), at(10, 10, 30), at(10, 10, 30), 39),
    ]
    report = abuse_patterns(db, start, end)
    assert report.bursts == bursts
    assert report.auth_failures == 25 + 30 + 5 + 19 + 20 + 3  # 102
    assert report.spikes == [] and report.key_hours_checked == 0
    assert "at least 20 refused credentials" in report.method and "z ≥ 3.5" in report.method
    assert auth_bursts(db, start, end, min_failures=26) == [
        replace(bursts[0], burst_minutes=1, burst_refusals=30, first_at=at(10, 10, 6))
    ]


def test_one_call_loads_the_whole_page(db: Engine) -> None:
    add_rows(db, *directory_rows())
    write(db, *calls(at(10, 2), 3, key_id=1), refused(at(10, 2, 5), "key:1|rpm"))
    write_auth_failures(db, Counter({(at(10, 2, 6), "127.0.0.1"): 21}))
    data = load_throttle_analytics(db, at(10), at(11), now=at(11))
    assert data.series.grain == "h" and data.series.total == 1
    assert [(c.id, c.requests, c.refused) for c in data.consumers.keys] == [(1, 4, 1)]  # 3 calls + 1 refused
    assert [(e.throttle.value, e.refusals) for e in data.episodes] == [("key:1|rpm", 1)]
    assert [(b.address, b.burst_refusals) for b in data.abuse.bursts] == [("127.0.0.1", 21)]
    assert data.as_of == at(11)


def downloaded(spec: Any) -> str:
    """The text of an rx.download event (its data URL, base64)."""
    url = dict((str(k), v) for k, v in spec.args)["url"]._var_value
    return base64.b64decode(url.split(",", 1)[1]).decode()


def download_name(spec: Any) -> str:
    """The file name an rx.download event offers the browser."""
    return str(dict((str(k), v) for k, v in spec.args)["filename"]._var_value)


class Page:
    """The page's state under a root State, driven as a connected socket would (see test_fleet_state.py)."""

    def __init__(self, root: State) -> None:
        self.root = root
        self.who: SessionUser | None = None

    @property
    def state(self) -> Any:
        return self.root.get_substate(ThrottleAnalyticsState.get_full_name().split(".")[1:])

    def url(self, query: dict[str, str]) -> None:
        path = routes.ANALYTICS_LIMITS
        as_path = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        self.root._update_router_vars({"pathname": path, "query": query, "asPath": as_path}, {})

    async def load(self) -> list[Any]:
        return [spec async for spec in ThrottleAnalyticsState.event_handlers["load"].fn(self.state)]

    async def export(self, fmt: str) -> Any:
        return await ThrottleAnalyticsState.event_handlers["export"].fn(self.state, fmt)


@pytest.fixture
def page(engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Page:
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="x" * 32)  # type: ignore[call-arg]
    context = SimpleNamespace(engine=engine, settings=settings)
    monkeypatch.setattr(state_module, "get_context", lambda: context)
    p = Page(State(_reflex_internal_init=True))

    async def current_user(state: object) -> SessionUser | None:
        return p.who

    monkeypatch.setattr(dashboard_module, "current_user", current_user)
    return p


async def test_the_page_state_refuses_strangers_and_viewers_and_shows_operators_the_figures(
    page: Page, engine: Engine
) -> None:
    add_rows(engine, *directory_rows())
    now = datetime.now(UTC)
    write(engine, *calls(now - timedelta(minutes=5), 3, key_id=1), refused(now - timedelta(minutes=4), "key:1|rpm"))
    write_auth_failures(engine, Counter({(truncate(now, "m"), "127.0.0.1"): 22}))
    page.url({"range": "1h"})
    for who, where in ((None, routes.LOGIN), (SessionUser(5, "v@example.com", "Vic", "viewer"), routes.LOGS)):
        page.who = who
        specs = await page.load()
        assert len(specs) == 1 and where in repr(specs[0])
        assert page.state.cards == [] and page.state.top_keys == []
        assert await page.export("json") is None

    page.who = SessionUser(6, "o@example.com", "Olga", "operator")
    specs = await page.load()
    assert len(specs) == 1 and "live" in repr(specs[0])  # no redirect: the live loop starts
    s = page.state
    assert s.range_name == "1h" and s.filter_errors == [] and s.grain_word == "minute"
    cards = {c["label"]: c["value"] for c in s.cards}
    assert cards["Refused calls (429)"] == "1" and cards["Request limits (RPM, RPD)"] == "1"
    assert cards["Refused credentials (401)"] == "22"
    assert sum(int(p["requests"]) for p in s.chart) == 1 and len(s.chart) in (60, 61)  # minutes of the hour
    assert [(r["name"], r["requests"], r["refused"], r["refused_share"]) for r in s.top_keys] == [
        ("ci (sk-abc…)", "4", "1", "25.0%")  # 3 calls + 1 refused; 1 / 4
    ]
    assert [(r["throttle"], r["refusals"]) for r in s.episodes] == [("key:1|rpm", "1")]
    assert [(r["address"], r["burst_refusals"]) for r in s.bursts] == [("127.0.0.1", "22")]
    assert "robust z-score" in s.method and s.spikes == [] and "key-hours" in s.spikes_empty
    as_json = await page.export("json")
    exported = json.loads(downloaded(as_json))
    assert exported["episodes"][0]["throttle"] == "key:1|rpm" and exported["top_keys"][0]["refused"] == "1"
    assert set(exported) == set(ThrottleAnalyticsState._export_tables)
    as_csv = await page.export("csv")
    csv_rows = downloaded(as_csv).splitlines()
    assert csv_rows[0] == "t,requests,tokens,budget" and len(csv_rows) == 1 + len(s.chart)
    # the route /analytics/limits names the files without a path separator: "analytics" + "-" + "limits"
    assert download_name(as_json) == "analytics-limits.json"
    assert download_name(as_csv) == "analytics-limits-chart.csv"  # the first export table is "chart"


def test_the_page_builds_from_its_state_vars() -> None:
    from llm_console.pages.throttle_analytics import throttle_analytics

    rendered = str(throttle_analytics().render())
    for element_id in ("chart-throttled", "top-consumers", "breach-timeline", "abuse-patterns", "abuse-method"):
        assert element_id in rendered
