"""Per-version prompt figures on seeded traffic (through the real log writer, so the rollups' "prompt" rows are
the gateway's own) and seeded feedback, SQLite and PostgreSQL; every expectation is worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.models import FeedbackScore
from llm_console.db.records import LogRecord
from llm_console.services import prompt_stats as ps
from llm_console.services.prompts import VersionView, add_version, create_prompt
from tests.db.seeding import add_rows, at, backends_fixture, db_fixture, rec, write  # noqa: F401

approx = pytest.approx
ADMIN = {"role": "admin", "actor": "stats@test"}


def call(when: datetime, version: VersionView | None, **kw: Any) -> LogRecord:
    r = rec(when, **kw)
    r.prompt_version_id = version.id if version is not None else None
    return r


def score(
    when: datetime, version: VersionView | None, name: str, value: float | None = None, **kw: Any
) -> FeedbackScore:
    vid = version.id if version is not None else None
    return FeedbackScore(created_at=when, name=name, value=value, prompt_version_id=vid, **kw)


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def two_versions(db: Engine, name: str = "support/answer") -> tuple[VersionView, VersionView]:
    v1 = create_prompt(db, **ADMIN, name=name, kind="chat", messages=chat("Answer {{ q }}"))
    v2 = add_version(db, **ADMIN, name=name, messages=chat("Answer briefly: {{ q }}"))
    return v1, v2


def test_figures_per_version_over_whole_hours(db: Engine) -> None:
    v1, v2 = two_versions(db)
    write(
        db,
        # v1: three calls in range (one an error), latencies 100, 100 and 300 ms
        call(at(10, 9, 10), v1, prompt=100, completion=20, cost=0.01, latency=100),
        call(at(10, 11, 0), v1, prompt=50, completion=0, cost=0.002, latency=100, status="error"),
        call(at(10, 12, 50), v1, prompt=10, completion=5, cost=0.003, latency=300),
        # v2: one call in range
        call(at(10, 10, 30), v2, prompt=7, completion=3, cost=0.5, latency=1200),
        # outside the widened range [09:00, 13:00): not counted
        call(at(10, 8, 59), v1, prompt=1000, cost=9.0),
        call(at(10, 13, 0), v2, prompt=1000, cost=9.0),
        call(at(10, 10, 0), None, prompt=1000, cost=9.0),  # no prompt at all
    )
    add_rows(
        db,
        score(at(10, 9, 5), v1, "accuracy", 1.0),
        score(at(10, 10, 5), v1, "accuracy", 0.5),
        score(at(10, 10, 6), v1, "thumbs", 1.0),
        score(at(10, 10, 7), v1, "verdict", category="good"),
        score(at(10, 11, 0), v2, "accuracy", 0.25),
        score(at(10, 13, 0), v1, "accuracy", 0.0),  # after the range
        score(at(10, 10, 0), None, "accuracy", 0.0),  # scores a call made without a prompt
    )
    # 09:45 .. 12:15 reads the whole hours 09:00 .. 13:00
    stats = ps.version_stats(db, [v1.id, v2.id], at(10, 9, 45), at(10, 12, 15))
    assert ps.window(at(10, 9, 45), at(10, 12, 15)) == (at(10, 9), at(10, 13))
    one, two = stats[v1.id].totals, stats[v2.id].totals
    assert (one.requests, one.errors, one.prompt_tokens, one.completion_tokens) == (3, 1, 160, 25)
    assert one.cost_usd == approx(0.015)
    assert one.avg_latency_ms == approx(500 / 3)
    # histogram: 100 ms twice in (75, 100], 300 ms once in (200, 300]
    assert one.latency_p(0.5) == approx(75 + 25 * (1.5 / 2))  # rank 1.5 of 3: 93.75
    assert one.latency_p(0.95) == approx(200 + 100 * 0.85)  # rank 2.85: 0.85 into the last bucket: 285
    assert (two.requests, two.errors, two.prompt_tokens, two.completion_tokens, two.cost_usd) == (1, 0, 7, 3, 0.5)
    assert stats[v1.id].feedback == 4
    assert [(s.name, s.count, s.numeric) for s in stats[v1.id].scores] == [
        ("accuracy", 2, 2),
        ("thumbs", 1, 1),
        ("verdict", 1, 0),
    ]
    assert stats[v1.id].scores[0].mean == approx(0.75) and stats[v1.id].scores[2].mean is None
    assert stats[v1.id].main_score is not None and stats[v1.id].main_score.name == "accuracy"
    assert (stats[v2.id].feedback, stats[v2.id].scores[0].mean) == (1, 0.25)


def test_versions_without_traffic_get_zeros_and_days_add_up(db: Engine) -> None:
    v1, v2 = two_versions(db)
    write(
        db,
        call(at(3, 23, 30), v1, cost=1.0),  # the first, partial day of the range
        *[call(at(day, 12), v1, cost=1.0) for day in (5, 9, 14)],  # whole days, read from day rows
        call(at(20, 0, 10), v1, cost=1.0),  # the last, partial day
        call(at(20, 2, 0), v1, cost=1.0),  # after the range
    )
    stats = ps.version_stats(db, [v1.id, v2.id], at(3, 23), at(20, 1))
    assert stats[v1.id].totals.requests == 5 and stats[v1.id].totals.cost_usd == approx(5.0)
    assert stats[v2.id].totals.requests == 0 and stats[v2.id].feedback == 0 and stats[v2.id].scores == ()
    assert stats[v2.id].main_score is None
    assert ps.version_stats(db, [], at(3), at(4)) == {}


def test_calls_by_prompt_sum_every_version(db: Engine) -> None:
    v1, v2 = two_versions(db, "a")
    quiet = create_prompt(db, **ADMIN, name="b", kind="text", text="Hello {{ who }}")
    write(db, call(at(10, 9), v1), call(at(10, 9, 1), v2), call(at(10, 10), v2), call(at(2, 10), v1))
    calls = ps.calls_by_prompt(db, [v1.prompt_id, quiet.prompt_id], at(10), at(11))
    assert calls == {v1.prompt_id: 3, quiet.prompt_id: 0}
    assert ps.calls_by_prompt(db, [], at(10), at(11)) == {}


def test_the_list_pages_and_counts_the_last_seven_days(db: Engine) -> None:
    now = at(20, 12, 30)
    v1, _ = two_versions(db, "alpha")
    for name in ("beta", "gamma"):
        create_prompt(db, **ADMIN, name=name, kind="text", text="Hi")
    write(db, call(now - timedelta(days=6, hours=23), v1), call(now - timedelta(days=8), v1), call(now, v1))
    first = ps.load_prompt_list(db, page=1, page_size=2, now=now)
    assert [p.name for p in first.rows] == ["alpha", "beta"] and (first.total, first.page, first.pages) == (3, 1, 2)
    # 7 days back from 12:30 reads from 12:00 seven days ago: the 6d23h-old call counts, the 8-day-old one does not
    assert first.calls_7d[v1.prompt_id] == 2
    last = ps.load_prompt_list(db, page=9, page_size=2, now=now)  # past the end: the last page
    assert [p.name for p in last.rows] == ["gamma"] and last.page == 2
    found = ps.load_prompt_list(db, search="et", now=now)
    assert [p.name for p in found.rows] == ["beta"] and found.pages == 1


def test_the_detail_page_data_and_unknown_names(db: Engine) -> None:
    v1, v2 = two_versions(db)
    write(db, call(at(10, 9), v2, cost=0.25))
    page = ps.load_prompt_page(db, "support/answer", at(10), at(11), now=at(11))
    assert page.summary is not None and page.error == ""
    assert [v.version for v in page.versions] == [2, 1]
    assert page.stats[v2.id].totals.cost_usd == approx(0.25) and page.stats[v1.id].totals.requests == 0
    missing = ps.load_prompt_page(db, "nope", at(10), at(11))
    assert missing.summary is None and "nope" in missing.error
    assert "No prompt chosen" in ps.load_prompt_page(db, "  ", at(10), at(11)).error
