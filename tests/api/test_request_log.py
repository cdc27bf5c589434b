"""Row endpoints: keyset pages with display names and no bodies, one request with bodies and spans (secrets
masked), and exports (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from llm_console.fleet import store
from llm_console.fleet.types import ContainerInfo, GpuInfo, GpuProcess
from tests.api.conftest import WINDOW, Client, World, assert_error


def names_of(world: World, ids: list[str]) -> list[str]:
    by_id = {r.id: name for name, r in world.records.items()}
    return [by_id[i] for i in ids]


async def page_names(api: Client, **params: str) -> list[str]:
    body = await api.ok("requests", **params)
    return names_of(api.world, [r["id"] for r in body["data"]])


async def test_keyset_pages_newest_first(api: Client, world: World) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {**WINDOW, "limit": "2", **({"cursor": cursor} if cursor else {})}
        body = await api.ok("requests", **params)
        seen += names_of(world, [r["id"] for r in body["data"]])
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert (seen, pages) == (["r5", "r4", "r3", "r2", "r1"], 3)


async def test_rows_carry_names_and_never_bodies(api: Client, world: World) -> None:
    row = (await api.ok("requests", **WINDOW, limit="1"))["data"][0]  # r5
    assert row["id"] == world.rid("r5")
    assert (row["alias"], row["endpoint"], row["created_at"]) == ("llama", "/v1/embeddings", "2026-03-15T12:20:00Z")
    assert (row["deployment_name"], row["user_name"], row["team_name"]) == ("llama-a", "member@example.com", "research")
    assert row["key_name"].startswith("app (sk-llmc-")
    assert (row["prompt_tokens"], row["total_tokens"], row["cost_usd"], row["ttfb_ms"]) == (10, 10, 0.0001, None)
    assert not {"request_body", "response_body", "error_message", "client_ip"} & set(row)


async def test_row_filters(api: Client, world: World) -> None:
    assert await page_names(api, status="error", **WINDOW) == ["r3"]
    assert await page_names(api, min_latency="100", **WINDOW) == ["r3", "r2", "r1"]
    assert await page_names(api, min_cost="0.01", **WINDOW) == ["r2", "r1"]
    assert await page_names(api, model="llama", **WINDOW) == ["r5", "r4"]
    assert await page_names(api, endpoint="/v1/embeddings", **WINDOW) == ["r5"]
    assert await page_names(api, stream="true", **WINDOW) == ["r4", "r2", "r1"]
    assert await page_names(api, user=str(world.users["member"]), model="gpt", **WINDOW) == ["r2", "r1"]
    assert await page_names(api, range="24h") == ["r5", "r4", "r3", "r2", "r1", "r6"]


async def test_search_is_literal(api: Client) -> None:
    assert await page_names(api, q="O'Brien", **WINDOW) == ["r1"]
    assert await page_names(api, q="%", **WINDOW) == ["r1"]  # the one body with a percent sign
    assert await page_names(api, q="_", **WINDOW) == ["r1"]  # ... and the one with an underscore
    assert await page_names(api, q="off_sale", **WINDOW) == ["r1"]
    assert await page_names(api, q="off%sale", **WINDOW) == []
    assert await page_names(api, q="50%_off", **WINDOW) == []
    assert await page_names(api, q="\\", **WINDOW) == []
    assert await page_names(api, q="hello", **WINDOW) == ["r1"]  # in r1's response, any case


async def test_page_parameters_are_checked(api: Client) -> None:
    for limit in ("0", "501", "-1", "1.5", "ten"):
        assert_error(await api.get("requests", limit=limit), 400, "invalid_parameter")
    for cursor in ("garbage", "Zm9v", "é", "x" * 250):
        assert_error(await api.get("requests", cursor=cursor), 400)


async def test_detail_with_bodies_and_spans(api: Client, world: World) -> None:
    body = await api.ok(f"requests/{world.rid('r1')}")
    assert body["request"]["id"] == world.rid("r1")
    assert body["request_body"] == world.records["r1"].request_body
    assert body["response_body"] == world.records["r1"].response_body
    error = await api.ok(f"requests/{world.rid('r3')}")
    assert (error["error_message"], error["request"]["error_type"]) == ("connect failed", "upstream_unavailable")
    embed = await api.ok(f"requests/{world.rid('r5')}")
    assert (embed["embedding_dims"], embed["request_body"], embed["spans"]) == (768, None, [])


async def test_detail_names_the_container_and_gpus_behind_its_deployment(api: Client, world: World) -> None:
    r1 = world.records["r1"]
    assert (await api.ok(f"requests/{world.rid('r1')}"))["served_by"] is None  # no fleet data: null, not a guess
    seen = r1.created_at - timedelta(hours=1)
    cont = ContainerInfo(
        "f" * 64, "vllm-gpt-a", "vllm/vllm-openai:v0.8.5", "v0.8.5", "gpt", "running", "", seen, None, 0, None,
        None, None, None, (8000,), r1.deployment_id,
    )  # fmt: skip
    proc = GpuProcess(pid=7, used_bytes=1 << 30, container_id=cont.id, deployment_id=r1.deployment_id)
    gpu = GpuInfo("GPU-1", 3, "NVIDIA L4", 1 << 30, 24 << 30, 10.0, 5.0, 40.0, 30.0, 72.0, "550", "12.4", (proc,))
    store.save_containers(world.engine, "node-7", [cont], seen)
    store.save_gpus(world.engine, "node-7", [gpu], seen)
    store.save_container_gpus(world.engine, [gpu])
    served = (await api.ok(f"requests/{world.rid('r1')}"))["served_by"]
    assert served == {
        "container_id": cont.id,
        "container_name": "vllm-gpt-a",
        "image": "vllm/vllm-openai:v0.8.5",
        "host": "node-7",
        "gpus": ["GPU 3 · NVIDIA L4 (node-7)"],
    }
    assert (await api.ok(f"requests/{world.rid('r3')}"))["served_by"] is None  # another deployment


async def test_detail_never_shows_a_key_or_authorization(api: Client, world: World) -> None:
    resp = await api.get(f"requests/{world.rid('r2')}")
    assert resp.status_code == 200
    for secret in (
        "ABCDEFGHIJKLMNOPQRSTUV",
        "abc123def456ghi789jkl",
        "XYZXYZXYZXYZ",
        "prov-secret",
        *world.keys.values(),
    ):
        assert secret not in resp.text
    body = resp.json()
    assert "sk-llmc-***" in body["request_body"] and "Bearer ***" in body["request_body"]
    spans = {s["name"]: s for s in body["spans"]}
    assert spans["auth"]["attributes"] == {"authorization": "***"}
    assert spans["upstream"]["attributes"] == {"status_code": 200, "api_key": "***"}
    assert (spans["upstream"]["start_ms"], spans["upstream"]["duration_ms"]) == (2.0, 170.0)


async def test_detail_misses_are_404(api: Client, world: World) -> None:
    for request_id in ("00000000-0000-7000-8000-000000000000", "nope", "x" * 37, "' OR '1'='1", "%00", "..%2F..%2Fetc"):
        assert_error(await api.get(f"requests/{request_id}"), 404, "not_found")
    assert_error(await api.get(f"requests/{world.rid('r1')}", verbose="1"), 400, "unknown_parameter")


async def test_export_csv_matches_the_filter(api: Client, world: World) -> None:
    resp = await api.get("requests/export", model="gpt", range="24h")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"].startswith('attachment; filename="llm-console-requests-')
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    matched = await api.ok("requests", model="gpt", range="24h", limit="500")
    assert [r["id"] for r in rows] == [r["id"] for r in matched["data"]]
    assert names_of(world, [r["id"] for r in rows]) == ["r3", "r2", "r1", "r6"]
    first = rows[0]
    assert (first["alias"], first["status"], first["stream"], first["ttfb_ms"]) == ("gpt", "error", "false", "")
    assert (first["deployment_name"], first["user_name"], first["created_at"]) == (
        "gpt-b",
        "admin@example.com",
        "2026-03-15T12:05:00Z",
    )
    assert "request_body" not in first


async def test_export_json_and_row_cap(api: Client, world: World) -> None:
    rows = json.loads((await api.get("requests/export", format="json", **WINDOW)).text)
    assert names_of(world, [r["id"] for r in rows]) == ["r5", "r4", "r3", "r2", "r1"]
    assert rows[0]["deployment_name"] == "llama-a"
    capped = list(csv.DictReader(io.StringIO((await api.get("requests/export", max_rows="2", **WINDOW)).text)))
    assert names_of(world, [r["id"] for r in capped]) == ["r5", "r4"]
    empty = await api.get("requests/export", format="json", model="none", **WINDOW)
    assert json.loads(empty.text) == []
    header_only = await api.get("requests/export", model="none", **WINDOW)
    assert header_only.text.splitlines()[0].startswith("id,created_at,endpoint,alias")
    assert len(header_only.text.splitlines()) == 1
    for bad in ({"max_rows": "0"}, {"max_rows": "1000001"}, {"format": "xml"}, {"format": "csv", "limit": "5"}):
        assert_error(await api.get("requests/export", **bad), 400)
