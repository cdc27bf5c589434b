"""Embeddings page figures on a small seeded database: only `/v1/embeddings` traffic counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.logstore import write_batch
from llm_console.db.records import LogRecord
from llm_console.presenters.embeddings import embeddings_view
from llm_console.services.embeddings import LATEST, load_embeddings
from llm_console.services.filters import parse_filters

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def embedding(at: datetime, alias: str, dims: int, *, tokens: int = 100, status: str = "ok") -> LogRecord:
    return LogRecord(
        id=str(uuid.uuid4()),
        created_at=at,
        endpoint="/v1/embeddings",
        alias=alias,
        status=status,
        status_code=200 if status == "ok" else 502,
        prompt_tokens=tokens,
        cost_usd=tokens * 0.00001,
        latency_ms=30.0,
        embedding_dims=dims if status == "ok" else None,
    )


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    records = [embedding(NOW - timedelta(minutes=10 + i), "bge", 1024) for i in range(12)]
    records += [embedding(NOW - timedelta(minutes=30 + i), "e5", 384, tokens=50) for i in range(6)]
    records.append(embedding(NOW - timedelta(minutes=5), "e5", 384, status="error"))
    records.append(embedding(NOW - timedelta(days=3), "bge", 1024))  # outside 24 hours
    chat = LogRecord(
        id=str(uuid.uuid4()),
        created_at=NOW - timedelta(minutes=1),
        endpoint="/v1/chat/completions",
        alias="bge",  # the same alias on another endpoint must not count
        prompt_tokens=999,
        cost_usd=5.0,
    )
    write_batch(engine, [*records, chat])
    return engine


def test_figures_cover_the_embeddings_endpoint_only(seeded: Engine) -> None:
    parsed = parse_filters({"range": "24h"}, now=NOW)
    data = load_embeddings(seeded, parsed, now=NOW)
    assert data.totals.requests == 19
    assert data.totals.errors == 1
    assert data.totals.prompt_tokens == 12 * 100 + 6 * 50 + 100
    assert data.totals.cost_usd == pytest.approx(0.016)
    assert [(alias, t.requests) for alias, t in data.by_model] == [("bge", 12), ("e5", 7)]
    assert [(size, t.requests) for size, t in data.dims] == [(384, 6), (1024, 12)]
    assert data.grain == parsed.grain
    assert len(data.series) <= 2000
    assert sum(b.totals.requests for b in data.series) == 19
    assert len(data.latest) == LATEST
    assert all(r.endpoint == "/v1/embeddings" for r in data.latest)
    assert data.latest[0].created_at == NOW - timedelta(minutes=5)


def test_a_week_counts_the_older_request_and_charts_stay_small(seeded: Engine) -> None:
    data = load_embeddings(seeded, parse_filters({"range": "7d", "res": "hour"}, now=NOW), now=NOW)
    assert data.totals.requests == 20
    assert data.grain == "h"
    assert len(data.series) == 7 * 24  # NOW is on the hour: no partial bucket
    assert dict((size, t.requests) for size, t in data.dims) == {384: 6, 1024: 13}


def test_view(seeded: Engine) -> None:
    view = embeddings_view(load_embeddings(seeded, parse_filters({"range": "24h"}, now=NOW), now=NOW))
    assert [c["label"] for c in view.cards] == ["Requests", "Tokens", "Cost", "Latency P50 / P99"]
    assert view.cards[0]["value"] == "19" and view.cards[0]["hint"] == "1 errors"
    assert view.cards[1]["value"] == "1,600"
    assert view.dims_chart == [{"dims": "384", "requests": 6}, {"dims": "1024", "requests": 12}]
    assert view.by_model[0]["model"] == "bge" and view.by_model[0]["share"] == "63.2%"
    assert sum(int(p["ok"]) + int(p["errors"]) for p in view.requests_chart) == 19
    assert len(view.latest) == LATEST and view.latest[0]["id"]


def test_an_empty_database_shows_zeros(engine: Engine) -> None:
    data = load_embeddings(engine, parse_filters({}, now=NOW), now=NOW)
    assert data.totals.requests == 0 and data.by_model == [] and data.dims == [] and data.latest == []
    assert embeddings_view(data).cards[0]["value"] == "0"
