"""Retention cleanup: old rows and spans deleted, bodies cleared, rollups aged per grain, runs recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from llm_console.db import retention
from llm_console.db.models import FeedbackScore
from llm_console.db.retention import RetentionPolicy, RetentionRun, last_runs, run_cleanup
from tests.db.seeding import at, backends_fixture, db_fixture, rec, scalar, write  # noqa: F401

NOW = at(20, 12)
POLICY = RetentionPolicy(request_days=30, body_days=7, minute_rollup_days=2, rollup_days=90)
BODIES = {"request_body": "prompt", "response_body": "answer"}


def rows(db: Engine) -> dict[str, tuple[str | None, str | None]]:
    with db.connect() as conn:
        return {r.id: (r.request_body, r.response_body) for r in conn.execute(text("SELECT * FROM requests"))}


def rollup_counts(db: Engine) -> dict[str, int]:
    return {g: scalar(db, "SELECT COUNT(*) FROM usage_rollups WHERE grain = :g", g=g) for g in ("m", "h", "d")}


def span_owners(db: Engine) -> list[str]:
    with db.connect() as conn:
        return sorted(conn.execute(text("SELECT request_id FROM spans")).scalars())


def seed(db: Engine) -> None:
    """Six requests on deployment 1, each alone in its day (so each owns 6 minute, 12 hour and 12 day rollup rows:
    the 9 dimensions, key and team per deployment, and the principal counted for unique users)."""
    day = timedelta(days=1)
    write(
        db,
        rec(NOW - 100 * day, id="A", spans=[("s", 0.0)], **BODIES),
        rec(NOW - 40 * day, id="B", spans=[("s", 0.0), ("t", 1.0)], **BODIES),
        rec(NOW - 10 * day, id="C", spans=[("s", 0.0)], **BODIES),
        rec(NOW - 9 * day, id="D"),  # no bodies to clear
        rec(NOW - 8 * day, id="F", response_body="only the answer"),
        rec(NOW - 1 * day, id="E", spans=[("s", 0.0)], **BODIES),
    )


def test_cleanup_applies_every_part_of_the_policy(db: Engine) -> None:
    seed(db)
    assert rollup_counts(db) == {"m": 36, "h": 72, "d": 72}

    run = run_cleanup(db, POLICY, NOW)

    # Requests older than 30 days: A and B, with their 1 + 2 spans.
    # Bodies older than 7 days on the rows left: C and F (D had none).
    # Minute rollups older than 2 days: A, B, C, D, F (5 x 6); hour and day rollups older than 90: A's (12 + 12).
    assert (run.status, run.requests, run.spans, run.bodies, run.rollups, run.error) == ("ok", 2, 3, 2, 54, "")
    assert run.started_at == NOW and run.duration_ms >= 0
    assert rows(db) == {"C": (None, None), "D": (None, None), "F": (None, None), "E": ("prompt", "answer")}
    assert span_owners(db) == ["C", "E"]
    assert rollup_counts(db) == {"m": 6, "h": 60, "d": 60}


def test_runs_are_recorded_and_a_second_run_removes_nothing(db: Engine) -> None:
    seed(db)
    first = run_cleanup(db, POLICY, NOW)
    second = run_cleanup(db, POLICY, NOW)

    assert (second.status, second.requests, second.spans, second.bodies, second.rollups) == ("ok", 0, 0, 0, 0)
    runs = last_runs(db)
    assert [(r.started_at, r.status, r.requests, r.spans, r.bodies, r.rollups, r.error) for r in runs] == [
        (NOW, "ok", 0, 0, 0, 0, ""),  # same start: the later run (higher id) first
        (NOW, "ok", 2, 3, 2, 54, ""),
    ]
    assert runs[1].duration_ms == first.duration_ms
    assert rows(db).keys() == {"C", "D", "F", "E"}

    later = run_cleanup(db, POLICY, NOW + timedelta(hours=1))
    assert [r.started_at for r in last_runs(db)] == [NOW + timedelta(hours=1), NOW, NOW]
    assert last_runs(db, limit=1) == [RetentionRun(later.started_at, later.duration_ms, "ok")]
    assert scalar(db, "SELECT COUNT(*) FROM maintenance_runs WHERE job = 'retention'") == 3


def test_cutoffs_are_exclusive(db: Engine) -> None:
    edge = NOW - timedelta(days=30)
    body_edge = NOW - timedelta(days=7)
    write(
        db,
        rec(edge, id="kept"),
        rec(edge - timedelta(microseconds=1), id="gone"),
        rec(body_edge, id="body-kept", **BODIES),
        rec(body_edge - timedelta(microseconds=1), id="body-gone", **BODIES),
    )
    run = run_cleanup(db, POLICY, NOW)
    assert (run.requests, run.bodies) == (1, 1)
    assert rows(db) == {"kept": (None, None), "body-kept": ("prompt", "answer"), "body-gone": (None, None)}


def test_rollup_buckets_are_aged_by_their_start(db: Engine) -> None:
    # 2 days and 1 minute ago: its minute bucket starts before the cutoff, its hour and day buckets after 90 days.
    write(db, rec(NOW - timedelta(days=2, minutes=1)), rec(NOW - timedelta(days=2) + timedelta(minutes=1)))
    run = run_cleanup(db, POLICY, NOW)
    assert run.rollups == 6
    assert rollup_counts(db) == {"m": 6, "h": 24, "d": 12}  # two hours, one day: 12 dimensions each


def test_feedback_scores_are_kept_their_own_days_in_chunks(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CHUNK", 2)
    edge = NOW - timedelta(days=120)
    scores = [edge - timedelta(minutes=i + 1) for i in range(5)] + [edge, NOW - timedelta(days=1)]
    with db.begin() as conn:
        for i, created in enumerate(scores):
            conn.execute(
                insert(FeedbackScore.__table__),  # type: ignore[attr-defined]
                {"created_at": created, "request_id": f"r{i}", "name": "thumbs", "category": "up", "comment": "ok"},
            )
    run = run_cleanup(db, replace(POLICY, feedback_days=120), NOW)
    assert (run.status, run.feedback, run.requests) == ("ok", 5, 0)
    assert scalar(db, "SELECT COUNT(*) FROM feedback_scores") == 2  # the one at the cutoff and yesterday's
    assert last_runs(db, limit=1)[0].feedback == 5
    assert run_cleanup(db, replace(POLICY, feedback_days=120), NOW).feedback == 0


def test_deletes_go_in_chunks(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CHUNK", 3)
    write(db, *[rec(NOW - timedelta(days=50, minutes=i), spans=[("s", 0.0)], **BODIES) for i in range(10)])
    write(db, *[rec(NOW - timedelta(days=20, minutes=i), **BODIES) for i in range(7)])
    run = run_cleanup(db, POLICY, NOW)
    assert (run.requests, run.spans, run.bodies) == (10, 10, 7)
    assert scalar(db, "SELECT COUNT(*) FROM requests") == 7
    assert scalar(db, "SELECT COUNT(*) FROM requests WHERE request_body IS NOT NULL") == 0


def test_a_failed_run_is_recorded_and_removes_nothing(db: Engine) -> None:
    seed(db)
    bad = RetentionPolicy(request_days=10**9, body_days=7, minute_rollup_days=2, rollup_days=90)

    run = run_cleanup(db, bad, NOW)

    assert (run.status, run.requests, run.bodies, run.rollups) == ("error", 0, 0, 0)
    assert run.error.startswith("OverflowError: ")
    (recorded,) = last_runs(db)
    assert (recorded.status, recorded.error) == ("error", run.error)
    assert len(rows(db)) == 6


def test_an_empty_database(db: Engine) -> None:
    run = run_cleanup(db, POLICY, NOW)
    assert (run.status, run.requests, run.spans, run.bodies, run.rollups) == ("ok", 0, 0, 0, 0)
    assert last_runs(db, limit=5)[0].started_at == NOW
