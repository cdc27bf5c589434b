"""GPU-hour cost: hours up from the collector's hourly counts (partial hours, the time since the last round,
replicas and hosts counted once, retention) or assumed always on, allocation by tokens or busy time from the
per-deployment key and team rollups, idle capacity, the cost page's section; every figure below is worked out
by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine

from llm_console.db.fleet_tables import FleetUptime
from llm_console.db.models import Deployment, Provider, Team, VirtualKey
from llm_console.db.rollups import usage_rollups
from llm_console.fleet.store import downsample, save_containers
from llm_console.fleet.types import ContainerInfo
from llm_console.presenters.costs import costs_view, gpu_deployment_rows
from llm_console.services.costs import load_costs
from llm_console.services.filters import parse_filters
from llm_console.services.gpu_cost import (
    ASSUMED,
    SAMPLED,
    GpuCostOptions,
    UpHour,
    counted_up_hours,
    gpu_cost,
    since_last_round,
)
from llm_console.services.gpu_usage import UsageCache
from llm_console.settings import Settings
from tests.db.seeding import add_rows, at, backends_fixture, db_fixture, rec, scalar, write  # noqa: F401

START, END, NOW = at(10, 10), at(10, 14), at(10, 15)
TOKENS = GpuCostOptions(allocation="tokens", interval_s=60.0)
BUSY = GpuCostOptions(allocation="busy_time", interval_s=60.0)
T0 = at(10, 10)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hours_of(seconds: float) -> float:
    return seconds / 3600


# The pure calculation of hours up.


def test_whole_hours_count_as_counted_and_partial_ones_in_proportion() -> None:
    now = at(10, 12, 20)
    hours = [UpHour(at(10, 10), 3600), UpHour(at(10, 11), 1800), UpHour(at(10, 12), 600)]
    # From 10:30: half of hour 10 (1800 s of its 3600), all of 11 (1800), and of 12 the 20 minutes past (600).
    assert counted_up_hours(hours, at(10, 10, 30), now, now) == pytest.approx(hours_of(4200))
    # Until 12:10: 10 of hour 12's 20 minutes past, so half of its 600 s.
    assert counted_up_hours(hours, at(10, 10), at(10, 12, 10), now) == pytest.approx(hours_of(3600 + 1800 + 300))
    assert counted_up_hours(hours, at(10, 13), at(10, 14), now) == 0.0


def test_the_time_since_the_last_round_counts_up_to_twice_the_interval() -> None:
    now = at(10, 12, 20, 5)
    counted = [UpHour(at(10, 12), 1195, up_to_s=1195)]  # counted until 12:19:55, the last round
    last = at(10, 12, 19, 55)
    assert since_last_round(counted, last, at(10, 12), now, 10.0) == pytest.approx(hours_of(10))  # to now
    assert since_last_round(counted, last, at(10, 12), at(10, 13), 10.0) == pytest.approx(hours_of(20))  # capped
    assert since_last_round(counted, None, at(10, 12), now, 10.0) == 0.0  # nothing was running
    # Another host's round already counted until 12:20:00: only what comes after.
    ahead = [UpHour(at(10, 12), 1200, up_to_s=1200)]
    assert since_last_round(ahead, last, at(10, 12), now, 10.0) == pytest.approx(hours_of(5))


# The report, on seeded rollups and hourly counts.


def seed_config(db: Engine) -> None:
    created = at(1)
    add_rows(
        db,
        Provider(id=1, name="gpu-box", api_base="http://8.8.8.8:8000/v1"),
        Deployment(id=1, name="vllm-a", provider_id=1, model="a", settings={"gpu_hour_usd": 4.0}, created_at=created),
        Deployment(id=2, name="vllm-b", provider_id=1, model="b", settings={"gpu_hour_usd": 2}, created_at=at(10, 11)),
        Deployment(
            id=3, name="vllm-idle", provider_id=1, model="c", settings={"gpu_hour_usd": 1.0}, created_at=created
        ),
        Deployment(id=4, name="hosted", provider_id=1, model="d", created_at=created),
        Team(id=1, name="research"),
        Team(id=2, name="apps"),
        VirtualKey(id=11, key_hash="a" * 64, prefix="sk-a", name="alpha", team_id=1),
        VirtualKey(id=12, key_hash="b" * 64, prefix="sk-b", name="beta", team_id=2),
    )


def counts(db: Engine, dep: int, hours: list[tuple[datetime, float]]) -> None:
    """Hourly counts as the collector leaves them: seconds up, counted to the end of the hour when up."""
    rows = [{"deployment_id": dep, "hour": h, "up_s": up, "up_to_s": up} for h, up in hours]
    with db.begin() as conn:
        conn.execute(insert(FleetUptime), rows)


@pytest.fixture
def seeded(db: Engine) -> Engine:
    """vllm-a ($4/h) watched by the collector, up 10:00-12:00 and down 12:00-14:00; vllm-b ($2/h), created at
    11:00, never seen; vllm-idle ($1/h) never called; "hosted" has no price."""
    seed_config(db)
    counts(db, 1, [(at(10, 10), 3600), (at(10, 11), 3600), (at(10, 12), 0), (at(10, 13), 0)])
    write(
        db,
        rec(at(10, 10, 30), deployment_id=1, key_id=11, team_id=1, prompt=300, completion=100, latency=1000),
        rec(at(10, 12, 15), deployment_id=1, key_id=12, team_id=2, prompt=60, completion=40, latency=3000),
        rec(at(10, 11, 20), deployment_id=2, key_id=12, team_id=2, prompt=100, completion=50, latency=500),
        rec(at(10, 13, 40), deployment_id=2, prompt=50, latency=500),  # no key, no team
        rec(at(10, 11), deployment_id=4, key_id=11, team_id=1, prompt=1000, cost=0.5),  # token-priced
        # Outside the period's hours: 09:10 and 14:05 are in the 09:00 and 14:00 buckets.
        rec(at(10, 9, 10), deployment_id=1, key_id=12, team_id=2, prompt=10**6, latency=10**6),
        rec(at(10, 14, 5), deployment_id=1, key_id=12, team_id=2, prompt=10**6, latency=10**6),
    )
    return db


def cost_rows(report: Any) -> dict[str, tuple[float, float, str, bool, float]]:
    return {d.name: (d.up_hours, d.cost_usd, d.basis, d.idle, d.allocated_usd) for d in report.deployments}


def shares(rows: Any) -> list[tuple[str, str, float, float]]:
    return [(a.deployment, a.name, round(a.share, 6), round(a.allocated_usd, 6)) for a in rows]


def test_costs_and_allocation_by_tokens(seeded: Engine) -> None:
    report = gpu_cost(seeded, START, END, options=TOKENS, now=NOW)
    assert cost_rows(report) == {
        "vllm-a": (pytest.approx(2.0), pytest.approx(8.0), SAMPLED, False, pytest.approx(8.0)),  # half of 4 h up
        "vllm-b": (pytest.approx(3.0), pytest.approx(6.0), ASSUMED, False, pytest.approx(6.0)),  # 11:00-14:00
        "vllm-idle": (pytest.approx(4.0), pytest.approx(4.0), ASSUMED, True, 0.0),
    }
    assert [d.name for d in report.deployments] == ["vllm-a", "vllm-b", "vllm-idle"]  # by cost
    # vllm-a: alpha 400 of 500 tokens, beta 100; vllm-b: beta 150 of 200, no key 50.
    assert shares(report.keys) == [
        ("vllm-a", "alpha (sk-a…)", 0.8, 6.4),
        ("vllm-b", "beta (sk-b…)", 0.75, 4.5),
        ("vllm-a", "beta (sk-b…)", 0.2, 1.6),
        ("vllm-b", "(no key)", 0.25, 1.5),
    ]
    assert shares(report.teams) == [
        ("vllm-a", "research", 0.8, 6.4),
        ("vllm-b", "apps", 0.75, 4.5),
        ("vllm-a", "apps", 0.2, 1.6),
        ("vllm-b", "(no team)", 0.25, 1.5),
    ]
    assert (report.total_usd, report.allocated_usd, report.idle_usd) == pytest.approx((18.0, 14.0, 4.0))
    assert report.unallocated_usd == pytest.approx(4.0) and report.end == END
    top = gpu_cost(seeded, START, END, options=TOKENS, now=NOW, limit=2)  # what the page shows: the largest
    assert shares(top.keys) == shares(report.keys)[:2] and shares(top.teams) == shares(report.teams)[:2]
    assert top.deployments == report.deployments


def test_allocation_by_busy_time(seeded: Engine) -> None:
    report = gpu_cost(seeded, START, END, options=BUSY, now=NOW)
    # vllm-a: alpha 1000 of 4000 busy ms, beta 3000; vllm-b: 500 and 500.
    assert shares(report.keys) == [
        ("vllm-a", "beta (sk-b…)", 0.75, 6.0),
        ("vllm-b", "(no key)", 0.5, 3.0),
        ("vllm-b", "beta (sk-b…)", 0.5, 3.0),
        ("vllm-a", "alpha (sk-a…)", 0.25, 2.0),
    ]
    assert report.allocated_usd == pytest.approx(14.0)


def test_the_period_is_clipped_to_now_and_traffic_to_whole_hours(seeded: Engine) -> None:
    # Until 12:30 (now): vllm-a was up 10:00-12:00 (its 12:00 hour counted nothing in the 30 minutes past) -> $8;
    # vllm-b 11:00-12:30 -> $3; vllm-idle 2.5 h -> $2.50.
    report = gpu_cost(seeded, START, END, options=TOKENS, now=at(10, 12, 30))
    assert {d.name: round(d.cost_usd, 6) for d in report.deployments} == {
        "vllm-a": 8.0,
        "vllm-b": 3.0,
        "vllm-idle": 2.5,
    }
    assert report.end == at(10, 12, 30)
    # From 10:45: the 10:30 call still counts in the shares (its hour, 10:00, overlaps the period).
    late = gpu_cost(seeded, at(10, 10, 45), END, options=TOKENS, now=NOW)
    # vllm-a is up 10:45-12:00 ($5: a quarter of its 10:00 hour, then 11:00), 80% of it alpha's.
    assert ("vllm-a", "alpha (sk-a…)", 0.8, 4.0) in shares(late.keys)


def test_traffic_logged_before_the_per_deployment_rollups_stays_unallocated(seeded: Engine) -> None:
    write(seeded, rec(at(10, 11, 5), deployment_id=1, key_id=11, team_id=1, prompt=500))
    t = usage_rollups
    with seeded.begin() as conn:  # as if logged by an older version: no key or team rows for its hour
        conn.execute(
            delete(t).where(
                t.c.grain == "h",
                t.c.bucket == at(10, 11),
                t.c.dim.in_(("deployment_key", "deployment_team")),
                t.c.value.in_(("1|11", "1|1")),
            )
        )
    report = gpu_cost(seeded, START, END, options=TOKENS, now=NOW)
    a = report.deployments[0]
    # 1000 tokens on vllm-a, 500 of them without key rows: half its $8 is allocated (alpha's 10:30 call:
    # 400 of 1000; beta: 100 of 1000).
    assert (a.name, round(a.untracked_share, 6), round(a.allocated_usd, 6), round(a.unallocated_usd, 6)) == (
        "vllm-a",
        0.5,
        4.0,
        4.0,
    )
    assert shares([k for k in report.keys if k.deployment == "vllm-a"]) == [
        ("vllm-a", "alpha (sk-a…)", 0.4, 3.2),
        ("vllm-a", "beta (sk-b…)", 0.1, 0.8),
    ]
    assert gpu_deployment_rows(report)[0]["note"] == "50.0% of its traffic predates per-key rollups (unallocated)"


def test_hours_older_than_the_retention_are_assumed_always_on(db: Engine) -> None:
    seed_config(db)
    # 20 days, counts kept 14: 1-7 March (144 h since vllm-a was created) assumed, 7-21 March counted.
    counts(db, 1, [(at(7) + timedelta(hours=i), 3600) for i in range(14 * 24)])
    options = GpuCostOptions(retention_days=14.0)
    report = gpu_cost(db, at(1), at(21), options=options, now=at(21))
    a = next(d for d in report.deployments if d.name == "vllm-a")
    assert (a.basis, a.up_hours, a.assumed_hours, a.cost_usd) == (SAMPLED, 480.0, 144.0, 1920.0)
    assert a.idle
    [row] = [r for r in gpu_deployment_rows(report) if r["name"] == "vllm-a"]
    assert row["basis"] == "container samples; 144.0 h before the hours-up records kept assumed always on"


def test_long_periods_read_whole_days_from_the_day_rollups(db: Engine) -> None:
    seed_config(db)
    write(
        db,
        rec(at(7, 11), deployment_id=3, key_id=11, prompt=999),  # before the period
        rec(at(7, 12, 30), deployment_id=3, key_id=11, prompt=100),  # an hour row
        rec(at(8, 5), deployment_id=3, key_id=12, prompt=200),  # inside a whole day
        rec(at(10, 11, 59), deployment_id=3, key_id=11, prompt=100),  # an hour row
        rec(at(10, 12), deployment_id=3, key_id=12, prompt=999),  # after the period
    )
    report = gpu_cost(db, at(7, 12), at(10, 12), options=TOKENS, now=NOW)
    idle = next(d for d in report.deployments if d.name == "vllm-idle")
    assert (idle.up_hours, idle.cost_usd, idle.idle) == (72.0, 72.0, False)
    assert shares(report.keys) == [("vllm-idle", "alpha (sk-a…)", 0.5, 36.0), ("vllm-idle", "beta (sk-b…)", 0.5, 36.0)]
    cache = UsageCache()
    for _ in range(2):  # the hours before, the whole days and the hours after are read, then come from the cache
        cached = gpu_cost(db, at(7, 12), at(10, 12), options=TOKENS, now=NOW, cache=cache)
        assert shares(cached.keys) == shares(report.keys)
    write(db, rec(at(9, 3), deployment_id=3, key_id=11, prompt=400))  # logged late, into a cached whole day
    later = gpu_cost(db, at(7, 12), at(10, 12), options=TOKENS, now=NOW, cache=cache)
    # alpha 100 + 100 + 400 = 600 tokens, beta 200, of 800.
    assert shares(later.keys) == [("vllm-idle", "alpha (sk-a…)", 0.75, 54.0), ("vllm-idle", "beta (sk-b…)", 0.25, 18.0)]


def seen(cid: str, status: str = "running", dep: int = 1) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name=f"vllm-{cid}",
        image="vllm/vllm-openai:v0.9",
        version="v0.9",
        model="a",
        status=status,
        health="",
        started_at=None,
        finished_at=None,
        restart_count=0,
        exit_code=None,
        cpu_pct=None,
        mem_bytes=None,
        mem_limit_bytes=None,
        ports=(),
        deployment_id=dep,
    )


def test_the_fleet_writer_counts_the_hours_and_folding_samples_changes_nothing(db: Engine, tmp_path: Path) -> None:
    seed_config(db)
    # Every 10 s for an hour: running for 40 minutes, then exited. Rounds 1-240 each count the 10 s since the
    # one before, whose container was running: 2400 s.
    for i in range(360):
        save_containers(db, "gpu-box", [seen("c1", "running" if i < 240 else "exited")], s(10 * i), interval_s=10.0)
    options = GpuCostOptions(interval_s=10.0)
    report = gpu_cost(db, START, START + timedelta(hours=1), options=options, now=NOW)
    assert next(d for d in report.deployments if d.name == "vllm-a").up_hours == pytest.approx(40 / 60)
    settings = Settings(_env_file=None, env="dev", data_dir=tmp_path, fleet_raw_retention_hours=1)  # type: ignore[call-arg]
    folded, _ = downsample(db, settings, now=START + timedelta(hours=3))
    assert folded == 360 and scalar(db, "SELECT COUNT(*) FROM fleet_samples WHERE bucket_s = 0") == 0
    report = gpu_cost(db, START, START + timedelta(hours=1), options=options, now=NOW)
    assert next(d for d in report.deployments if d.name == "vllm-a").up_hours == pytest.approx(40 / 60)


def test_replicas_and_hosts_overlapping_in_time_count_once(db: Engine) -> None:
    seed_config(db)
    one, two = "gpu-box-1", "gpu-box-2"

    def round_(host: str, t: float, *cids: str) -> None:
        save_containers(db, host, [seen(c) for c in cids], s(t), interval_s=10.0)

    round_(one, 0, "a1", "a2")  # two replicas of vllm-a on one host
    round_(one, 10, "a1", "a2")  # [0, 10): once, not twice
    round_(two, 15, "b")  # a third replica on another host
    round_(one, 20, "a1", "a2")  # [10, 20)
    round_(two, 25, "b")  # [15, 25): only [20, 25) is new
    round_(one, 80, "a1", "a2")  # a late round: [20, 40) at most, [25, 40) new
    assert scalar(db, "SELECT up_s FROM fleet_uptime WHERE deployment_id = 1") == pytest.approx(40)
    # Queried later, the last round (80 s) still counts up to twice the interval after it: [80, 100).
    report = gpu_cost(db, START, START + timedelta(hours=1), options=GpuCostOptions(interval_s=10.0), now=NOW)
    assert next(d for d in report.deployments if d.name == "vllm-a").up_hours == pytest.approx(hours_of(60))


def test_the_cache_serves_past_hours_until_a_write_changes_them(seeded: Engine) -> None:
    cache, now = UsageCache(), at(10, 13, 30)

    def alpha_beta(**kw: Any) -> list[tuple[str, float]]:
        report = gpu_cost(seeded, START, END, options=TOKENS, now=now, **kw)
        return [(a.name, round(a.share, 4)) for a in report.keys if a.deployment == "vllm-a"]

    assert alpha_beta(cache=cache) == alpha_beta() == [("alpha (sk-a…)", 0.8), ("beta (sk-b…)", 0.2)]
    # A call logged late into a past hour, and one in the current hour: both count at once.
    write(
        seeded,
        rec(at(10, 11, 20), deployment_id=1, key_id=11, team_id=1, prompt=500),
        rec(at(10, 13, 10), deployment_id=1, key_id=12, team_id=2, prompt=500),
    )
    assert alpha_beta(cache=cache) == [("alpha (sk-a…)", 0.6), ("beta (sk-b…)", 0.4)]  # 900 and 600 of 1500
    # The entry is kept while the deployment's own rows count the same requests: key rows removed by hand
    # (no writer does that alone) still show from the cache, and are gone without it.
    t = usage_rollups
    with seeded.begin() as conn:
        conn.execute(delete(t).where(t.c.dim == "deployment_key", t.c.bucket == at(10, 11), t.c.value == "1|11"))
    assert alpha_beta(cache=cache) == [("alpha (sk-a…)", 0.6), ("beta (sk-b…)", 0.4)]
    assert alpha_beta() == [("beta (sk-b…)", 0.4), ("alpha (sk-a…)", 0.2667)]


def test_rollups_count_keys_and_teams_per_deployment_per_hour_and_day_only(db: Engine) -> None:
    write(db, rec(at(10, 10, 10), deployment_id=5, team_id=3), rec(at(10, 10, 20), deployment_id=None, key_id=7))
    rows = scalar(
        db,
        "SELECT COUNT(*) FROM usage_rollups WHERE dim IN ('deployment_key', 'deployment_team') AND grain = 'm'",
    )
    assert rows == 0
    for dim, value in (("deployment_key", "5|"), ("deployment_team", "5|3")):
        for grain in ("h", "d"):
            sql = "SELECT requests FROM usage_rollups WHERE dim = :d AND grain = :g AND value = :v"
            assert scalar(db, sql, d=dim, g=grain, v=value) == 1
    assert scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE dim IN ('deployment_key', 'deployment_team')") == 4


def test_an_unknown_allocation_is_refused(db: Engine) -> None:
    with pytest.raises(ValueError, match="must be one of tokens, busy_time"):
        gpu_cost(db, START, END, options=GpuCostOptions(allocation="requests"), now=NOW)


def test_nothing_priced_is_an_empty_report(db: Engine) -> None:
    report = gpu_cost(db, START, END, now=NOW)
    assert (report.deployments, report.keys, report.total_usd) == ((), (), 0)


# The Costs page's section.


def test_the_costs_page_shows_gpu_cost_beside_token_spend(seeded: Engine) -> None:
    parsed = parse_filters({"from": START.isoformat(), "to": END.isoformat()}, now=NOW)
    view = costs_view(load_costs(seeded, parsed, 0.0, now=NOW, gpu=TOKENS))
    assert view.gpu_summary["totals"] == "token-priced spend $0.5000 · GPU-hour cost $18.00"
    assert "share it by their tokens (prompt + completion)" in view.gpu_summary["rule"]
    assert view.gpu_summary["allocated"] == "$14.00 allocated · $4.00 unallocated ($4.00 idle)"
    assert view.gpu_summary["empty"] == ""
    assert view.gpu_deployments[0] == {
        "name": "vllm-a",
        "price": "$4.00/h",
        "hours": "2.0 h",
        "basis": "container samples",
        "cost": "$8.00",
        "allocated": "$8.00",
        "note": "",
    }
    assert view.gpu_deployments[2]["note"] == "idle (unallocated)"
    assert view.gpu_keys[0] == {"deployment": "vllm-a", "name": "alpha (sk-a…)", "share": "80.0%", "cost": "$6.40"}
    assert [r["name"] for r in view.gpu_teams] == ["research", "apps", "apps", "(no team)"]
    busy = costs_view(load_costs(seeded, parsed, 0.0, now=NOW, gpu=BUSY))
    assert "busy time (summed request latency)" in busy.gpu_summary["rule"]


def test_without_priced_deployments_the_section_says_how_to_set_one(db: Engine) -> None:
    parsed = parse_filters({"from": START.isoformat(), "to": END.isoformat()}, now=NOW)
    view = costs_view(load_costs(db, parsed, 0.0, now=NOW))
    assert view.gpu_summary["totals"] == "token-priced spend $0.00 · GPU-hour cost $0.00"
    assert "No deployment has a GPU-hour price" in view.gpu_summary["empty"]
    assert view.gpu_deployments == [] and view.gpu_keys == []
