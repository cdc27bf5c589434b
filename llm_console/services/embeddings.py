"""The Embeddings page's figures: `/v1/embeddings` traffic from the rollups, plus its newest log rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from llm_console.db.queries import logs, usage
from llm_console.db.queries.logs import RequestRow
from llm_console.db.queries.names import Directory, load_directory
from llm_console.db.queries.usage import Totals
from llm_console.services.filters import ParsedFilters
from llm_console.services.performance import Bucket

ENDPOINT = "/v1/embeddings"
PREFIX = f"{ENDPOINT}|"
MAX_MODELS = 100
LATEST = 15


@dataclass(frozen=True, slots=True)
class EmbeddingsData:
    totals: Totals
    by_model: list[tuple[str, Totals]]  # alias, most requests first
    dims: list[tuple[int, Totals]]  # vector size, smallest first
    series: list[Bucket]
    latest: list[RequestRow]
    directory: Directory
    grain: str
    as_of: datetime


def load_embeddings(engine: Engine, parsed: ParsedFilters, now: datetime | None = None) -> EmbeddingsData:
    f, grain = parsed.filters, parsed.grain
    coarse = usage.choose_grain(f.start, f.end, "embed_dims")  # one grain for the range figures
    pairs = usage.breakdown(
        engine,
        f.start,
        f.end,
        "endpoint_alias",
        order_by="requests",
        limit=MAX_MODELS,
        grain=coarse,
        value_prefix=PREFIX,
    )
    dims = usage.breakdown(engine, f.start, f.end, "embed_dims", order_by="requests", limit=100, grain=coarse)
    points = {p.bucket: p.totals for p in usage.series(engine, f.start, f.end, grain, dim="endpoint", value=ENDPOINT)}
    empty = Totals()
    return EmbeddingsData(
        totals=usage.totals(engine, f.start, f.end, dim="endpoint", value=ENDPOINT, grain=coarse),
        by_model=[(v.removeprefix(PREFIX), t) for v, t in pairs if v.startswith(PREFIX)],
        dims=sorted(((int(v), t) for v, t in dims if v.isdigit()), key=lambda d: d[0]),
        series=[Bucket(b, points.get(b, empty)) for b in usage.bucket_starts(f.start, f.end, grain)],
        latest=logs.latest(engine, limit=LATEST, endpoint=ENDPOINT),
        directory=load_directory(engine),
        grain=grain,
        as_of=now or datetime.now(UTC),
    )
