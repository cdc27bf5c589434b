"""The demo seed writes consistent, realistic, reproducible traffic through the log writer's path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.demo.seed import KEY_COUNT, MODELS, USER_COUNT, SeedSummary, main, seed

NOW = datetime(2026, 11, 30, 15, 37, 12, tzinfo=UTC)
COUNT, DAYS = 3000, 3
SUMS = "COUNT(*), SUM(status != 'ok'), SUM(stream), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens)"
ROLLUP_SUMS = "SUM(requests), SUM(errors), SUM(stream_requests), SUM(prompt_tokens), SUM(completion_tokens), " + (
    "SUM(cached_tokens)"
)


def fresh(path: Path) -> Engine:
    url = f"sqlite:///{path.as_posix()}"
    upgrade(url)
    return make_engine(url)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SeedSummary]]:
    engine = fresh(tmp_path_factory.mktemp("seed") / "seed.db")
    calls: list[tuple[int, int]] = []
    summary = seed(engine, count=COUNT, days=DAYS, now=NOW, seed=7, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (COUNT, COUNT)
    yield engine, summary
    engine.dispose()


def one(engine: Engine, sql: str) -> tuple[object, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql)).one())


def test_rollups_match_the_rows_at_every_grain(seeded: tuple[Engine, SeedSummary]) -> None:
    engine, summary = seeded
    raw = one(engine, f"SELECT {SUMS}, SUM(cost_usd), SUM(latency_ms) FROM requests")
    assert raw[0] == COUNT == summary.requests
    for grain in ("m", "h", "d"):
        rolled = one(
            engine,
            f"SELECT {ROLLUP_SUMS}, SUM(cost_usd), SUM(latency_ms_sum) FROM usage_rollups "
            f"WHERE grain = '{grain}' AND dim = 'all'",
        )
        assert rolled[:6] == raw[:6], grain
        assert rolled[6] == pytest.approx(raw[6], rel=1e-9)
        assert rolled[7] == pytest.approx(raw[7], rel=1e-9)
    per_alias = one(engine, "SELECT SUM(requests) FROM usage_rollups WHERE grain = 'd' AND dim = 'alias'")
    assert per_alias[0] == COUNT


def test_traffic_is_realistic(seeded: tuple[Engine, SeedSummary]) -> None:
    engine, summary = seeded
    start, end = one(engine, "SELECT MIN(created_at), MAX(created_at) FROM requests")
    assert str(start) >= "2026-11-27 15:37:12" and str(end) < "2026-11-30 15:37:12"
    errors, incomplete, rate_limited, server = one(
        engine,
        "SELECT SUM(status = 'error'), SUM(status = 'incomplete'), SUM(status_code = 429), SUM(status_code >= 500) "
        "FROM requests",
    )
    assert isinstance(errors, int) and 0.015 * COUNT < errors < 0.05 * COUNT
    assert errors == summary.errors and incomplete == summary.incomplete
    assert incomplete and rate_limited and server
    streamed_chat = one(
        engine, "SELECT AVG(stream) FROM requests WHERE endpoint IN ('/v1/chat/completions', '/v1/messages')"
    )[0]
    assert 0.3 < float(str(streamed_chat)) < 0.5
    assert one(engine, "SELECT COUNT(*) FROM requests WHERE stream AND status = 'ok' AND ttfb_ms >= latency_ms")[0] == 0
    dims = one(engine, "SELECT GROUP_CONCAT(DISTINCT embedding_dims) FROM requests WHERE endpoint = '/v1/embeddings'")
    assert {int(d) for d in str(dims[0]).split(",")} <= {384, 768, 1024, 1536, 3072}
    assert one(engine, "SELECT COUNT(*) FROM requests WHERE status = 'ok' AND embedding_dims IS NULL "
               "AND endpoint = '/v1/embeddings'")[0] == 0  # fmt: skip
    assert one(engine, "SELECT COUNT(*) FROM requests WHERE embedding_dims IS NOT NULL "
               "AND endpoint != '/v1/embeddings'")[0] == 0  # fmt: skip
    spans = one(engine, "SELECT MIN(n), MAX(n) FROM (SELECT COUNT(*) AS n FROM spans GROUP BY request_id)")
    assert spans[0] is not None and spans[1] is not None and 1 <= int(str(spans[0])) and int(str(spans[1])) <= 5
    ok_spans = one(engine, "SELECT MIN(n) FROM (SELECT COUNT(*) AS n FROM spans s JOIN requests r "
                   "ON r.id = s.request_id WHERE r.status = 'ok' GROUP BY r.id)")[0]  # fmt: skip
    assert ok_spans == 3
    assert one(engine, "SELECT COUNT(*) FROM spans")[0] == summary.spans
    top_key_share = one(engine, "SELECT MAX(n) * 1.0 / SUM(n) FROM (SELECT COUNT(*) n FROM requests GROUP BY key_id)")
    assert float(str(top_key_share[0])) > 0.05  # a few keys send much of the traffic
    assert one(engine, "SELECT COUNT(*), COUNT(DISTINCT key_hash) FROM virtual_keys") == (KEY_COUNT, KEY_COUNT)
    assert one(engine, "SELECT COUNT(*) FROM users")[0] == USER_COUNT
    assert one(engine, "SELECT COUNT(*) FROM model_aliases")[0] == len(MODELS)
    assert one(engine, "SELECT COUNT(DISTINCT kind) FROM providers")[0] == 3  # openai (vLLM too), anthropic, azure
    assert one(engine, "SELECT COUNT(*) FROM budgets")[0] > 0


def digest(engine: Engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, created_at, alias, key_id, status, cost_usd, latency_ms, request_body, response_body "
                "FROM requests ORDER BY id"
            )
        ).all()
        spans = conn.execute(text("SELECT request_id, name, start_ms, duration_ms FROM spans ORDER BY id")).all()
    return hashlib.sha256(repr((rows, spans)).encode()).hexdigest()


def test_the_same_seed_gives_the_same_data(seeded: tuple[Engine, SeedSummary], tmp_path: Path) -> None:
    again = fresh(tmp_path / "again.db")
    other = fresh(tmp_path / "other.db")
    try:
        seed(again, count=COUNT, days=DAYS, now=NOW, seed=7)
        seed(other, count=COUNT, days=DAYS, now=NOW, seed=8)
        assert digest(again) == digest(seeded[0])
        assert digest(other) != digest(seeded[0])
    finally:
        again.dispose()
        other.dispose()


def test_bad_arguments_get_a_clear_error(
    seeded: tuple[Engine, SeedSummary], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, _ = seeded
    with pytest.raises(ValueError, match="count must be a positive"):
        seed(engine, count=0, days=1)
    with pytest.raises(ValueError, match="days must be above 0"):
        seed(engine, count=10, days=-1)
    with pytest.raises(ValueError, match="already holds the demo seed"):
        seed(engine, count=10, days=1, now=NOW)
    for argv in (["--count", "-5"], ["--count", "ten"], ["--days", "0"], ["--database-url", "mysql://x/y"]):
        with pytest.raises(SystemExit) as exc:
            main(["--database-url", "sqlite:///unused.db", *argv] if argv[0] != "--database-url" else argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("python -m llm_console.demo.seed: error: ") and "\n" not in err, err


def test_app_chat_calls_name_end_users_sessions_and_tags_and_some_are_scored(
    seeded: tuple[Engine, SeedSummary],
) -> None:
    engine, _ = seeded
    named, chat_calls = one(
        engine,
        "SELECT SUM(end_user IS NOT NULL), SUM(endpoint IN ('/v1/chat/completions', '/v1/messages')) FROM requests",
    )
    assert 0 < int(str(named)) <= int(str(chat_calls))  # service keys and embeddings name nobody
    assert one(engine, "SELECT COUNT(*) FROM requests WHERE end_user IS NOT NULL AND session_id IS NULL")[0] == 0
    users = one(engine, "SELECT COUNT(DISTINCT end_user) FROM requests")[0]
    assert 20 < int(str(users)) <= 600
    scored, orphans = one(
        engine,
        "SELECT COUNT(*), SUM(r.id IS NULL OR r.alias != f.alias OR r.status != 'ok') "
        "FROM feedback_scores f LEFT JOIN requests r ON r.id = f.request_id",
    )
    assert int(str(scored)) > 0 and int(str(orphans)) == 0  # every score belongs to a successful call of its model
    bad = one(
        engine,
        "SELECT COUNT(*) FROM feedback_scores WHERE NOT ((name = 'helpfulness' AND value BETWEEN 1 AND 5 "
        "AND category IS NULL) OR (name = 'thumbs' AND value IS NULL AND category IN ('up', 'down')))",
    )
    assert bad == (0,)
    principals = one(engine, "SELECT COUNT(*) FROM usage_rollups WHERE grain = 'd' AND dim = 'principal'")[0]
    assert int(str(principals)) > int(str(users))  # end users, plus key owners for calls naming none
