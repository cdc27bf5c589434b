"""Aggregate endpoints against figures worked out by hand from the seeded records (SQLite and PostgreSQL).

In WINDOW (11:00-12:30) there are five requests:

    r1 12:01:10 gpt   gpt-a   app key  member  ok     100+50 tok  $0.01    120 ms  ttfb 40  stream
    r2 12:01:40 gpt   gpt-a   app key  member  ok     200+100     $0.02    180 ms  ttfb 60  stream
    r3 12:05    gpt   gpt-b   dash key admin   error  300+0       $0       2500 ms  -
    r4 12:10:30 llama llama-a dash key admin   ok      50+25      $0.005    45 ms  ttfb 20  stream
    r5 12:20    llama llama-a app key  member  ok      10+0       $0.0001    8 ms  -        (embeddings)

and r6 at 10:00 today (gpt, member, $1), r7 on 2 March (member, $2), r8 in February (member, $5).

Latency histogram slots (upper bounds 5, 10, 20, 35, 50, 75, 100, 150, 200, ..., 2000, 3000 ms): 8 ms falls in
(5, 10], 45 in (35, 50], 120 in (100, 150], 180 in (150, 200], 2500 in (2000, 3000]. The percentile of rank
q*n interpolates inside the slot that holds it: P50 has rank 2.5, the third request's slot (100, 150] holds
ranks 2..3, so P50 = 100 + 50 * 0.5 = 125; P90 (rank 4.5) and P99 (4.95) fall in (2000, 3000]: 2500 and 2950.
TTFB 20, 40, 60 sit in (10, 20], (35, 50], (50, 75]: P50 (rank 1.5) = 35 + 15 * 0.5 = 42.5,
P90 (2.7) = 50 + 25 * 0.7 = 67.5, P99 (2.97) = 50 + 25 * 0.97 = 74.25.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import WINDOW, Client, World, assert_error

approx = pytest.approx


def figures(t: dict[str, Any]) -> tuple[Any, ...]:
    return (t["requests"], t["errors"], t["prompt_tokens"], t["completion_tokens"], t["cost_usd"])


async def test_summary_of_the_window(api: Client) -> None:
    body = await api.ok("summary", **WINDOW)
    t = body["totals"]
    assert (body["start"], body["end"], body["grain"], body["filter"]) == (
        "2026-03-15T11:00:00Z",
        "2026-03-15T12:30:00Z",
        "minute",
        None,
    )
    assert figures(t) == (5, 1, 660, 175, approx(0.0351))
    assert (t["error_rate"], t["stream_requests"], t["total_tokens"]) == (0.2, 3, 835)
    assert t["cost_per_request_usd"] == approx(0.0351 / 5)
    assert t["latency_ms"] == approx({"avg": 2853 / 5, "p50": 125.0, "p90": 2500.0, "p99": 2950.0})
    assert t["ttfb_ms"] == approx({"avg": 40.0, "p50": 42.5, "p90": 67.5, "p99": 74.25})


async def test_summary_for_one_model(api: Client) -> None:
    # gpt: 120, 180, 2500 ms. P50 rank 1.5 in (150, 200] -> 175; P90 rank 2.7 and P99 2.97 in (2000, 3000].
    body = await api.ok("summary", model="gpt", **WINDOW)
    assert body["filter"] == {"model": "gpt"}
    assert figures(body["totals"]) == (3, 1, 600, 150, approx(0.03))
    assert body["totals"]["latency_ms"] == approx({"avg": 2800 / 3, "p50": 175.0, "p90": 2700.0, "p99": 2970.0})


async def test_summary_for_one_key_uses_hourly_rollups(api: Client, world: World) -> None:
    body = await api.ok("summary", key=str(world.key_ids["gateway"]), **WINDOW)
    assert body["grain"] == "hour"
    assert body["covered"] == {"start": "2026-03-15T11:00:00Z", "end": "2026-03-15T13:00:00Z"}
    assert figures(body["totals"]) == (3, 0, 310, 150, approx(0.0301))  # r1, r2, r5


async def test_summary_of_streams_only(api: Client) -> None:
    body = await api.ok("summary", stream="true", **WINDOW)
    assert body["filter"] == {"stream": "true"}
    assert figures(body["totals"]) == (3, 0, 350, 175, approx(0.035))  # r1, r2, r4


async def test_summary_of_a_named_range_and_an_empty_one(api: Client) -> None:
    day = await api.ok("summary", range="24h")  # now is 12:30: r6 at 10:00 counts too
    assert figures(day["totals"]) == (6, 1, 660, 175, approx(1.0351))
    empty = await api.ok("summary", model="no-such-model", **WINDOW)
    assert figures(empty["totals"]) == (0, 0, 0, 0, 0.0)
    assert empty["totals"]["latency_ms"] == {"avg": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"model": "gpt", "key": "1"}, "key"),
        ({"endpoint": "/v1/embeddings", "stream": "true"}, "stream"),
        ({"status": "error"}, "status"),
        ({"min_latency": "100"}, "min_latency"),
        ({"min_cost": "0.5"}, "min_cost"),
        ({"q": "hello"}, "q"),
    ],
)
async def test_aggregates_refuse_what_rollups_cannot_answer(api: Client, params: dict[str, str], param: str) -> None:
    for path in ("summary", "timeseries", "by-model"):
        error = assert_error(await api.get(path, **params, **WINDOW), 400, "unsupported_filter")
        assert error["param"] == param
        assert "one dimension at a time" in error["message"] and "/api/v1/analytics/requests" in error["message"]


async def test_timeseries_is_zero_filled_per_minute(api: Client) -> None:
    body = await api.ok("timeseries", **WINDOW)
    points = body["points"]
    assert body["grain"] == "minute" and len(points) == 90
    assert (points[0]["t"], points[-1]["t"]) == ("2026-03-15T11:00:00Z", "2026-03-15T12:29:00Z")
    busy = {p["t"][11:16]: p for p in points if p["requests"]}
    assert sorted(busy) == ["12:01", "12:05", "12:10", "12:20"]
    assert figures(busy["12:01"]) == (2, 0, 300, 150, approx(0.03))
    assert busy["12:01"]["latency_ms"]["avg"] == 150.0
    assert busy["12:05"]["errors"] == 1
    assert sum(p["requests"] for p in points) == 5
    assert all(p["cost_usd"] == 0 and p["latency_ms"]["p99"] == 0 for p in points if not p["requests"])


async def test_timeseries_at_other_resolutions(api: Client, world: World) -> None:
    hourly = await api.ok("timeseries", res="hour", **WINDOW)
    assert [(p["t"], p["requests"]) for p in hourly["points"]] == [
        ("2026-03-15T11:00:00Z", 0),
        ("2026-03-15T12:00:00Z", 5),
    ]
    # Keys are rolled up per hour at the finest: the series follows, unless per-minute was asked for.
    by_key = await api.ok("timeseries", key=str(world.key_ids["analytics"]), **WINDOW)
    assert by_key["grain"] == "hour" and [p["requests"] for p in by_key["points"]] == [0, 2]
    assert_error(await api.get("timeseries", key="1", res="minute", **WINDOW), 400, "invalid_parameter")
    assert_error(await api.get("timeseries", range="30d", res="minute"), 400, "invalid_parameter")


async def test_timeseries_grouped_by_model(api: Client) -> None:
    body = await api.ok("timeseries", group_by="model", **WINDOW)
    assert body["group_by"] == "model" and "points" not in body
    assert [s["model"] for s in body["series"]] == ["gpt", "llama"]  # busiest first
    gpt, llama = (s["points"] for s in body["series"])
    assert len(gpt) == len(llama) == 90
    assert sum(p["requests"] for p in gpt) == 3 and sum(p["requests"] for p in llama) == 2
    assert [p["t"][11:16] for p in llama if p["requests"]] == ["12:10", "12:20"]
    only = await api.ok("timeseries", group_by="model", model="llama", **WINDOW)
    assert [s["model"] for s in only["series"]] == ["llama"]
    assert_error(await api.get("timeseries", group_by="model", key="1", **WINDOW), 400, "unsupported_filter")
    assert_error(await api.get("timeseries", group_by="user", **WINDOW), 400, "invalid_parameter")


async def test_by_model(api: Client) -> None:
    body = await api.ok("by-model", **WINDOW)
    rows = {r["model"]: r for r in body["data"]}
    assert [r["model"] for r in body["data"]] == ["gpt", "llama"]
    assert figures(rows["gpt"]) == (3, 1, 600, 150, approx(0.03))
    assert figures(rows["llama"]) == (2, 0, 60, 25, approx(0.0051))
    # llama: 8 and 45 ms. P50 rank 1 fills (5, 10] -> 10; P90 rank 1.8 and P99 rank 1.98 fall in (35, 50].
    assert rows["llama"]["latency_ms"] == approx({"avg": 26.5, "p50": 10.0, "p90": 47.0, "p99": 49.7})
    assert [r["model"] for r in (await api.ok("by-model", order_by="cost", limit=1, **WINDOW))["data"]] == ["gpt"]
    assert [r["model"] for r in (await api.ok("by-model", model="llama", **WINDOW))["data"]] == ["llama"]
    assert_error(await api.get("by-model", key="1", **WINDOW), 400, "unsupported_filter")
    assert_error(await api.get("by-model", limit="0", **WINDOW), 400, "invalid_parameter")
    assert_error(await api.get("by-model", order_by="latency", **WINDOW), 400, "invalid_parameter")


async def breakdown(api: Client, dim: str, **params: str) -> list[tuple[str, int, float]]:
    body = await api.ok("breakdown", dim=dim, **params, **WINDOW)
    assert body["dim"] == dim
    return [(r["name"], r["requests"], round(r["cost_usd"], 6)) for r in body["data"]]


async def test_breakdowns_with_names(api: Client) -> None:
    assert await breakdown(api, "model") == [("gpt", 3, 0.03), ("llama", 2, 0.0051)]
    assert await breakdown(api, "deployment") == [("gpt-a", 2, 0.03), ("llama-a", 2, 0.0051), ("gpt-b", 1, 0.0)]
    assert await breakdown(api, "endpoint") == [("/v1/chat/completions", 4, 0.035), ("/v1/embeddings", 1, 0.0001)]
    assert await breakdown(api, "user") == [("member@example.com", 3, 0.0301), ("admin@example.com", 2, 0.005)]
    assert await breakdown(api, "team") == [("research", 3, 0.0301), ("(none)", 2, 0.005)]
    keys = await breakdown(api, "key")
    assert [(n.split(" (")[0], r, c) for n, r, c in keys] == [("app", 3, 0.0301), ("dash", 2, 0.005)]
    assert await breakdown(api, "provider") == [("openai-main", 4, 0.0351), ("azure-eu", 1, 0.0)]


async def test_provider_breakdown_merges_histograms(api: Client) -> None:
    # openai-main: 8, 45, 120, 180 ms -> P50 rank 2 ends (35, 50] = 50; P90 rank 3.6 in (150, 200] = 180.
    body = await api.ok("breakdown", dim="provider", **WINDOW)
    assert body["data"][0]["latency_ms"] == approx({"avg": 88.25, "p50": 50.0, "p90": 180.0, "p99": 198.0})


async def test_breakdown_filters_and_refusals(api: Client, world: World) -> None:
    member = str(world.users["member"])
    assert await breakdown(api, "user", user=member) == [("member@example.com", 3, 0.0301)]
    assert await breakdown(api, "model", order_by="cost", limit="1") == [("gpt", 3, 0.03)]
    assert_error(await api.get("breakdown", **WINDOW), 400, "missing_parameter")
    assert_error(await api.get("breakdown", dim="provider; DROP TABLE requests", **WINDOW), 400, "invalid_parameter")
    assert_error(await api.get("breakdown", dim="user", model="gpt", **WINDOW), 400, "unsupported_filter")
    assert_error(await api.get("breakdown", dim="provider", model="gpt", **WINDOW), 400, "unsupported_filter")


async def test_user_spend_against_budgets(api: Client, world: World) -> None:
    body = await api.ok("user-spend")
    assert (body["day_start"], body["month_start"]) == ("2026-03-15T00:00:00Z", "2026-03-01T00:00:00Z")
    rows = {r["user"]: r for r in body["data"]}
    assert set(rows) == {"admin@example.com", "member@example.com", "viewer@example.com"}  # spent or budgeted
    member = rows["member@example.com"]  # today r1 r2 r5 r6; this month also r7; r8 was February
    assert (member["day_usd"], member["month_usd"]) == (approx(1.0301), approx(3.0301))
    assert (member["daily_budget_usd"], member["monthly_budget_usd"], member["status"]) == (1.0, 100.0, "exceeded")
    assert member["day_share"] == approx(1.0301) and member["month_share"] == approx(0.030301)
    admin = rows["admin@example.com"]
    assert (admin["day_usd"], admin["daily_budget_usd"], admin["status"]) == (approx(0.005), 0.006, "warning")
    assert admin["monthly_budget_usd"] is None and admin["month_share"] is None
    viewer = rows["viewer@example.com"]
    assert (viewer["day_usd"], viewer["monthly_budget_usd"], viewer["status"]) == (0.0, 10.0, "ok")
    one = await api.ok("user-spend", user=str(world.users["admin"]))
    assert [r["user_id"] for r in one["data"]] == [world.users["admin"]]
    assert_error(await api.get("user-spend", range="7d"), 400, "unknown_parameter")
