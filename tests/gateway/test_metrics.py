"""Gateway metrics: exact numbers in the exposition, bounded label sets, the guarded `/metrics` endpoint and
multi-worker aggregation through prometheus_client's multiprocess mode (in real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Route

from llm_console.db.records import LogRecord
from llm_console.gateway.metrics import LATENCY_BUCKETS, MULTIPROC_ENV, RAW_KEYS_MAX, GatewayMetrics, metrics_endpoint

CHAT = "/v1/chat/completions"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def record(**fields: Any) -> LogRecord:
    return LogRecord(id="req", created_at=datetime.now(UTC), **{"endpoint": CHAT, **fields})


def parse(text: str) -> Samples:
    """Every sample except the `_created` timestamps, keyed by (sample name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def samples(metrics: GatewayMetrics) -> Samples:
    body, _ = metrics.render()
    return parse(body.decode())


def get(data: Samples, name: str, **labels: str) -> float:
    return data[(name, tuple(sorted(labels.items())))]


def label_sets(data: Samples, name: str) -> set[tuple[tuple[str, str], ...]]:
    return {labels for (sample, labels) in data if sample == name}


def lbl(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


MIXED = [
    record(alias="gpt", latency_ms=120.0, prompt_tokens=10, completion_tokens=20, cached_tokens=4, cost_usd=0.002),
    record(alias="gpt", status="error", status_code=502, error_type="upstream_error", latency_ms=30.0),
    record(
        alias="gpt",
        stream=True,
        status="incomplete",
        error_type="client_disconnected",
        ttfb_ms=250.0,
        latency_ms=3000.0,
        prompt_tokens=5,
        completion_tokens=7,
    ),
]
STREAM_OK = record(
    alias="claude", stream=True, ttfb_ms=80.0, latency_ms=1500.0, prompt_tokens=3, completion_tokens=9, cost_usd=0.01
)
UNKNOWN_MODEL = record(alias="", status="error", status_code=404, error_type=None, latency_ms=2.0)


def observe_mixed(metrics: GatewayMetrics) -> None:
    for rec in MIXED:
        metrics.observe(rec, "dep-a")
    metrics.observe(STREAM_OK, "dep-b")
    metrics.observe(UNKNOWN_MODEL, "")


def test_requests_and_errors_are_counted_exactly() -> None:
    m = GatewayMetrics()
    observe_mixed(m)
    data = samples(m)

    assert {
        labels: data[("llmc_gateway_requests_total", labels)]
        for labels in label_sets(data, "llmc_gateway_requests_total")
    } == {
        lbl(endpoint=CHAT, alias="gpt", deployment="dep-a", status="ok"): 1.0,
        lbl(endpoint=CHAT, alias="gpt", deployment="dep-a", status="error"): 1.0,
        lbl(endpoint=CHAT, alias="gpt", deployment="dep-a", status="incomplete"): 1.0,
        lbl(endpoint=CHAT, alias="claude", deployment="dep-b", status="ok"): 1.0,
        lbl(endpoint=CHAT, alias="", deployment="", status="error"): 1.0,
    }
    assert {
        labels: data[("llmc_gateway_errors_total", labels)] for labels in label_sets(data, "llmc_gateway_errors_total")
    } == {
        lbl(alias="gpt", deployment="dep-a", error_type="upstream_error"): 1.0,
        lbl(alias="gpt", deployment="dep-a", error_type="client_disconnected"): 1.0,
        lbl(alias="", deployment="", error_type="unknown"): 1.0,
    }


def test_latency_and_ttfb_histograms() -> None:
    m = GatewayMetrics()
    observe_mixed(m)
    data = samples(m)

    lat = "llmc_gateway_request_latency_seconds"
    assert get(data, f"{lat}_count", alias="gpt", deployment="dep-a", status="ok") == 1
    assert get(data, f"{lat}_sum", alias="gpt", deployment="dep-a", status="ok") == pytest.approx(0.12)
    assert get(data, f"{lat}_bucket", alias="gpt", deployment="dep-a", status="ok", le="0.1") == 0
    assert get(data, f"{lat}_bucket", alias="gpt", deployment="dep-a", status="ok", le="0.25") == 1
    assert get(data, f"{lat}_sum", alias="gpt", deployment="dep-a", status="incomplete") == pytest.approx(3.0)
    assert get(data, f"{lat}_sum", alias="claude", deployment="dep-b", status="ok") == pytest.approx(1.5)
    buckets = {dict(labels)["le"] for labels in label_sets(data, f"{lat}_bucket")}
    assert buckets == {*(str(b) for b in LATENCY_BUCKETS), "+Inf"}
    assert min(LATENCY_BUCKETS) == 0.005 and max(LATENCY_BUCKETS) == 120.0

    ttfb = "llmc_gateway_time_to_first_byte_seconds"
    # Only records with a ttfb are observed: the error without one and the unknown model add nothing.
    assert label_sets(data, f"{ttfb}_count") == {
        lbl(alias="gpt", deployment="dep-a"),
        lbl(alias="claude", deployment="dep-b"),
    }
    assert get(data, f"{ttfb}_count", alias="gpt", deployment="dep-a") == 1
    assert get(data, f"{ttfb}_sum", alias="gpt", deployment="dep-a") == pytest.approx(0.25)
    assert get(data, f"{ttfb}_sum", alias="claude", deployment="dep-b") == pytest.approx(0.08)
    assert get(data, f"{ttfb}_bucket", alias="claude", deployment="dep-b", le="0.05") == 0
    assert get(data, f"{ttfb}_bucket", alias="claude", deployment="dep-b", le="0.1") == 1


def test_tokens_and_cost() -> None:
    m = GatewayMetrics()
    observe_mixed(m)
    data = samples(m)

    tok = "llmc_gateway_tokens_total"
    assert get(data, tok, alias="gpt", deployment="dep-a", kind="prompt") == 15
    assert get(data, tok, alias="gpt", deployment="dep-a", kind="completion") == 27
    assert get(data, tok, alias="gpt", deployment="dep-a", kind="cached") == 4
    assert get(data, tok, alias="claude", deployment="dep-b", kind="prompt") == 3
    assert get(data, tok, alias="claude", deployment="dep-b", kind="completion") == 9
    assert get(data, "llmc_gateway_cost_usd_total", alias="gpt", deployment="dep-a") == pytest.approx(0.002)
    assert get(data, "llmc_gateway_cost_usd_total", alias="claude", deployment="dep-b") == pytest.approx(0.01)


def test_attempts_and_gauges() -> None:
    m = GatewayMetrics()
    m.observe_attempt("gpt", "dep-a", "timeout")
    m.observe_attempt("gpt", "dep-a", "timeout")
    m.observe_attempt("gpt", "dep-a", "ok")
    m.observe_attempt("gpt", "dep-b", "rate_limited")
    m.observe_attempt("gpt", "dep-b", "something-new")  # not a known outcome: counted as error, no new series
    m.set_inflight("dep-a", 3)
    m.set_inflight("dep-a", 2)
    m.set_circuit("dep-a", "half_open")
    m.set_circuit("dep-b", "open")
    m.set_circuit("dep-c", "closed")
    m.set_healthy("dep-a", True)
    m.set_healthy("dep-b", False)
    data = samples(m)

    att = "llmc_gateway_upstream_attempts_total"
    assert {labels: data[(att, labels)] for labels in label_sets(data, att)} == {
        lbl(alias="gpt", deployment="dep-a", outcome="timeout"): 2.0,
        lbl(alias="gpt", deployment="dep-a", outcome="ok"): 1.0,
        lbl(alias="gpt", deployment="dep-b", outcome="rate_limited"): 1.0,
        lbl(alias="gpt", deployment="dep-b", outcome="error"): 1.0,
    }
    assert get(data, "llmc_gateway_inflight_requests", deployment="dep-a") == 2
    assert get(data, "llmc_gateway_circuit_state", deployment="dep-a") == 2
    assert get(data, "llmc_gateway_circuit_state", deployment="dep-b") == 1
    assert get(data, "llmc_gateway_circuit_state", deployment="dep-c") == 0
    assert get(data, "llmc_gateway_deployment_healthy", deployment="dep-a") == 1
    assert get(data, "llmc_gateway_deployment_healthy", deployment="dep-b") == 0

    families = {f.name: f for f in text_string_to_metric_families(m.render()[0].decode())}
    assert "0 = closed, 1 = open, 2 = half_open" in families["llmc_gateway_circuit_state"].documentation
    with pytest.raises(ValueError, match="unknown circuit state"):
        m.set_circuit("dep-a", "broken")


def test_cached_children_add_up_like_fresh_ones() -> None:
    """Every sample is linear in the number of observations, so observing the mix three times (first call builds
    the children, the next two hit the cache) must give exactly three times the single-pass numbers."""
    once, thrice = GatewayMetrics(), GatewayMetrics()
    observe_mixed(once)
    for _ in range(3):
        observe_mixed(thrice)
    one, three = samples(once), samples(thrice)
    assert one.keys() == three.keys()
    for key, value in one.items():
        assert three[key] == pytest.approx(3 * value), key


def test_status_outside_the_known_set_counts_as_error() -> None:
    m = GatewayMetrics()
    m.observe(record(alias="gpt", status="exploded", error_type="boom"), "dep-a")
    m.observe(record(alias="gpt", status="exploded", error_type="x" * 500), "dep-a")
    data = samples(m)
    assert label_sets(data, "llmc_gateway_requests_total") == {
        lbl(endpoint=CHAT, alias="gpt", deployment="dep-a", status="error")
    }
    assert get(data, "llmc_gateway_requests_total", endpoint=CHAT, alias="gpt", deployment="dep-a", status="error") == 2
    error_types = {dict(labels)["error_type"] for labels in label_sets(data, "llmc_gateway_errors_total")}
    assert error_types == {"boom", "x" * 60}


def test_alias_cardinality_is_capped() -> None:
    m = GatewayMetrics()
    for i in range(1000):
        m.observe(record(alias=f"alias-{i}", status="error", error_type="model_not_found"), "")
    for i in range(RAW_KEYS_MAX + 500):  # a flood of client-chosen names after the cap
        m.observe(record(alias=f"junk-{i}", status="error", error_type="model_not_found"), "")
    m.observe_attempt("late-alias", "dep-a", "ok")
    data = samples(m)

    aliases = {dict(labels)["alias"] for labels in label_sets(data, "llmc_gateway_requests_total")}
    assert len(aliases) == 1001
    assert "other" in aliases and "junk-0" not in aliases and "alias-999" in aliases
    other = get(data, "llmc_gateway_requests_total", endpoint=CHAT, alias="other", deployment="", status="error")
    assert other == RAW_KEYS_MAX + 500
    assert get(data, "llmc_gateway_errors_total", alias="other", deployment="", error_type="model_not_found") == other
    assert get(data, "llmc_gateway_upstream_attempts_total", alias="other", deployment="dep-a", outcome="ok") == 1
    # The hot-path cache stops taking raw keys at its limit instead of growing with every junk name.
    assert len(m._requests) <= RAW_KEYS_MAX + 1001


def test_long_names_are_truncated() -> None:
    m = GatewayMetrics()
    m.observe(record(alias="a" * 10_000), "d" * 10_000)
    (labels,) = label_sets(samples(m), "llmc_gateway_requests_total")
    assert dict(labels)["alias"] == "a" * 200
    assert dict(labels)["deployment"] == "d" * 200


def test_own_registry_never_the_global_one() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()  # a shared registry would raise "Duplicated timeseries"
    first.observe(record(alias="gpt"), "dep-a")
    assert b"llmc_gateway" not in generate_latest(REGISTRY)
    assert label_sets(samples(second), "llmc_gateway_requests_total") == set()


def test_multiproc_dir_set_after_import_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if getattr(prometheus_values.ValueClass, "_multiprocess", False):
        pytest.skip("this test process itself runs in multiprocess mode")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="after prometheus_client was imported"):
        GatewayMetrics()


WORKER = """
import json, os, sys
from datetime import UTC, datetime
from llm_console.db.records import LogRecord
from llm_console.gateway.metrics import GatewayMetrics

m = GatewayMetrics()
assert m.multiprocess
mode, accept = sys.argv[1], sys.argv[2]
if mode != "render-only":
    inflight, healthy, circuit = mode.split(":")
    rec = LogRecord(id="r", created_at=datetime.now(UTC), endpoint="/v1/chat/completions", alias="gpt",
                    latency_ms=100.0, ttfb_ms=40.0, prompt_tokens=10, completion_tokens=2, cost_usd=0.5)
    m.observe(rec, "dep-a")
    m.set_inflight("dep-a", int(inflight))
    m.set_healthy("dep-a", healthy == "1")
    m.set_circuit("dep-a", circuit)
body, content_type = m.render(accept)
print(json.dumps({"pid": os.getpid(), "body": body.decode(), "content_type": content_type}))
"""


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "prom"
    path.mkdir()
    yield path


def run_worker(path: Path, mode: str, accept: str = "") -> dict[str, Any]:
    env = {**os.environ, MULTIPROC_ENV: str(path)}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", WORKER, mode, accept],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    reply: dict[str, Any] = json.loads(result.stdout)
    return reply


def test_multiprocess_mode_merges_workers(multiproc_dir: Path) -> None:
    first = run_worker(multiproc_dir, "3:0:open")
    second = run_worker(multiproc_dir, "4:1:closed")
    data = parse(second["body"])
    assert second["content_type"].startswith("text/plain; version=0.0.4")
    assert get(data, "llmc_gateway_requests_total", endpoint=CHAT, alias="gpt", deployment="dep-a", status="ok") == 2
    assert get(data, "llmc_gateway_tokens_total", alias="gpt", deployment="dep-a", kind="prompt") == 20
    assert get(data, "llmc_gateway_cost_usd_total", alias="gpt", deployment="dep-a") == pytest.approx(1.0)
    lat = "llmc_gateway_request_latency_seconds"
    assert get(data, f"{lat}_count", alias="gpt", deployment="dep-a", status="ok") == 2
    assert get(data, f"{lat}_sum", alias="gpt", deployment="dep-a", status="ok") == pytest.approx(0.2)
    assert get(data, "llmc_gateway_time_to_first_byte_seconds_count", alias="gpt", deployment="dep-a") == 2
    assert get(data, "llmc_gateway_inflight_requests", deployment="dep-a") == 7  # livesum over both workers
    assert get(data, "llmc_gateway_deployment_healthy", deployment="dep-a") == 1  # max: one worker sees it healthy
    assert get(data, "llmc_gateway_circuit_state", deployment="dep-a") == 1  # max: open beats closed
    assert not any("pid" in dict(labels) for (_, labels) in data)

    mark_process_dead(first["pid"], str(multiproc_dir))  # the first worker's in-flight count drops out
    after = run_worker(multiproc_dir, "render-only", "application/openmetrics-text; version=1.0.0")
    assert after["content_type"].startswith("application/openmetrics-text")
    assert after["body"].endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(after["body"])}
    (inflight,) = families["llmc_gateway_inflight_requests"].samples
    assert inflight.value == 4
    requests = [s for s in families["llmc_gateway_requests"].samples if s.name == "llmc_gateway_requests_total"]
    assert [s.value for s in requests] == [2]


def make_app(metrics: GatewayMetrics, token: object) -> Starlette:
    app = Starlette(routes=[Route("/metrics", metrics_endpoint, methods=["GET"])])
    app.state.llmc_runtime = SimpleNamespace(metrics=metrics, settings=SimpleNamespace(metrics_token=token))
    return app


async def scrape(app: Starlette, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        return await client.get("/metrics", headers=headers)


@pytest.fixture
def populated() -> GatewayMetrics:
    m = GatewayMetrics()
    observe_mixed(m)
    return m


@pytest.mark.parametrize("token", [None, ""])
async def test_endpoint_serves_text_without_a_token(populated: GatewayMetrics, token: str | None) -> None:
    resp = await scrape(make_app(populated, token), {"Accept-Encoding": "identity"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in resp.headers
    data = parse(resp.text)
    assert get(data, "llmc_gateway_requests_total", endpoint=CHAT, alias="gpt", deployment="dep-a", status="ok") == 1


async def test_endpoint_negotiates_openmetrics(populated: GatewayMetrics) -> None:
    resp = await scrape(
        make_app(populated, None), {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert resp.text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(resp.text)}
    assert families["llmc_gateway_requests"].type == "counter"
    assert families["llmc_gateway_request_latency_seconds"].type == "histogram"


async def test_endpoint_gzips_when_asked(populated: GatewayMetrics) -> None:
    resp = await scrape(make_app(populated, None), {"Accept-Encoding": "gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    assert parse(resp.text) == samples(populated)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic s3cret-metrics"}, {"Authorization": ""}],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
@pytest.mark.parametrize("token", ["s3cret-metrics", SecretStr("s3cret-metrics")], ids=["str", "secretstr"])
async def test_endpoint_refuses_a_bad_token(populated: GatewayMetrics, headers: dict[str, str], token: object) -> None:
    resp = await scrape(make_app(populated, token), headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {
        "error": {
            "message": "Invalid or missing metrics token.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_metrics_token",
        }
    }
    assert "llmc_gateway" not in resp.text


async def test_endpoint_accepts_the_right_token(populated: GatewayMetrics) -> None:
    resp = await scrape(make_app(populated, "s3cret-metrics"), {"Authorization": "Bearer s3cret-metrics"})
    assert resp.status_code == 200
    assert parse(resp.text) == samples(populated)
