"""Exports at size: 20k rows stream in flat memory, every row arrives once; spreadsheet formulas are defused."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

from llm_console.db.logstore import write_batch
from llm_console.db.queries.logs import iter_requests
from llm_console.services.filters import parse_filters
from tests.api.conftest import NOW, PREFIX, World, at, make_app, migrated_sqlite, open_client, record, seed

ROWS = 20_000


async def drain(app: Any, path: str, query: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """Call the ASGI app directly and count the body without keeping it (httpx's ASGI transport buffers it)."""
    status, size, lines = 0, 0, 0
    sent = False
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # the client stays until the whole body is in
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size, lines
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            size += len(chunk)
            lines += chunk.count(b"\n")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    finished.set()
    return status, size, lines


async def test_export_of_20k_rows_keeps_memory_flat(tmp_path: Path) -> None:
    engine = migrated_sqlite(tmp_path / "big.db")
    world = seed(engine)
    start = NOW - timedelta(hours=2)
    for lo in range(0, ROWS, 5000):
        batch = [
            record(f"b{i}", start + timedelta(milliseconds=250 * i), alias="bulk", prompt_tokens=i, cost_usd=0.001)
            for i in range(lo, lo + 5000)
        ]
        write_batch(engine, batch)
    query = "model=bulk&range=24h"
    app = make_app(engine)
    headers = {"authorization": f"Bearer {world.keys['analytics']}"}

    await drain(app, f"{PREFIX}/requests/export", f"{query}&max_rows=10", headers)  # first-use caches, not rows
    gc.collect()
    tracemalloc.start()
    try:
        held = list(iter_requests(engine, parse_filters({"model": "bulk", "range": "24h"}, NOW).filters))
        _, all_rows_peak = tracemalloc.get_traced_memory()
        assert len(held) == ROWS
        del held
        gc.collect()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        for fmt in ("csv", "json"):
            status, size, lines = await drain(app, f"{PREFIX}/requests/export", f"{query}&format={fmt}", headers)
            assert status == 200
            assert lines == ROWS + (1 if fmt == "csv" else 2)  # header line / the brackets' lines
            assert size > ROWS * 100
        _, export_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    engine.dispose()
    # Holding every row costs ~20x one page; the export holds one page and one encoded chunk at a time.
    assert export_peak - base < all_rows_peak / 4, (export_peak - base, all_rows_peak)


async def test_export_row_count_equals_the_filters_match_count(sqlite_world: World) -> None:
    extra = [record(f"x{i}", at(11, i), alias="gpt" if i % 3 else "llama", cost_usd=0.5 * i) for i in range(1, 50)]
    write_batch(sqlite_world.engine, extra)
    async with open_client(sqlite_world) as api:
        for params in ({"range": "24h"}, {"range": "24h", "model": "gpt"}, {"range": "24h", "min_cost": "10"}):
            rows = list(csv.DictReader(io.StringIO((await api.get("requests/export", **params)).text)))
            ids, cursor = [], None
            while True:
                page = await api.ok("requests", limit="7", **params, **({"cursor": cursor} if cursor else {}))
                ids += [r["id"] for r in page["data"]]
                if (cursor := page["next_cursor"]) is None:
                    break
            assert [r["id"] for r in rows] == ids and len(set(ids)) == len(ids) > 0


async def test_csv_cells_cannot_become_formulas(sqlite_world: World) -> None:
    sneaky = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB"]
    write_batch(sqlite_world.engine, [record(f"f{i}", at(12, 25, i), alias=a) for i, a in enumerate(sneaky)])
    async with open_client(sqlite_world) as api:
        text = (await api.get("requests/export", range="24h", endpoint="/v1/chat/completions")).text
    aliases = {r["alias"] for r in csv.DictReader(io.StringIO(text))}
    assert {"'" + a for a in sneaky} <= aliases
    assert not any(a.startswith(("=", "+", "-", "@", "\t")) for a in aliases)
