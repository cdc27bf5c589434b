"""The vLLM /metrics reader on samples written from vLLM's documented metric names: the V0 engine's
(gpu_cache_usage_perc, gpu_prefix_cache_hit_rate, time_per_output_token_seconds) and V1's
(kv_cache_usage_perc, prefix_cache_queries/hits, inter_token_latency_seconds), a two-engine server, the
project's own simulator, and text that is not metrics at all."""

from __future__ import annotations

import pytest

from llm_console.fleet.engine_metrics import Histogram, MetricsError, parse_engine_metrics, rates

MODEL = 'model_name="meta-llama/Llama-3.1-8B-Instruct"'

V0 = f"""# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{MODEL}}} 3.0
# HELP vllm:num_requests_swapped Number of requests swapped to CPU.
# TYPE vllm:num_requests_swapped gauge
vllm:num_requests_swapped{{{MODEL}}} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{MODEL}}} 7.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{{MODEL}}} 0.42
# HELP vllm:gpu_prefix_cache_hit_rate GPU prefix cache block hit rate.
# TYPE vllm:gpu_prefix_cache_hit_rate gauge
vllm:gpu_prefix_cache_hit_rate{{{MODEL}}} 0.25
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{{{MODEL}}} 2.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{{MODEL}}} 12000.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{{MODEL}}} 3000.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="0.1",{MODEL}}} 10.0
vllm:time_to_first_token_seconds_bucket{{le="0.5",{MODEL}}} 30.0
vllm:time_to_first_token_seconds_bucket{{le="1.0",{MODEL}}} 40.0
vllm:time_to_first_token_seconds_bucket{{le="+Inf",{MODEL}}} 40.0
vllm:time_to_first_token_seconds_count{{{MODEL}}} 40.0
vllm:time_to_first_token_seconds_sum{{{MODEL}}} 12.0
# HELP vllm:time_per_output_token_seconds Histogram of time per output token in seconds.
# TYPE vllm:time_per_output_token_seconds histogram
vllm:time_per_output_token_seconds_bucket{{le="0.01",{MODEL}}} 100.0
vllm:time_per_output_token_seconds_bucket{{le="0.025",{MODEL}}} 300.0
vllm:time_per_output_token_seconds_bucket{{le="+Inf",{MODEL}}} 400.0
vllm:time_per_output_token_seconds_count{{{MODEL}}} 400.0
vllm:time_per_output_token_seconds_sum{{{MODEL}}} 8.0
"""


def v1(engine: int, *, running: float, waiting: float, kv: float, hits: float, queries: float, prompt: float) -> str:
    labels = f'engine="{engine}",{MODEL}'
    return f"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{labels}}} {running}
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{labels}}} {waiting}
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{{labels}}} {kv}
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{{labels}}} {queries}
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{{{labels}}} {hits}
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{{labels}}} {prompt}
# HELP vllm:inter_token_latency_seconds Histogram of inter-token latency in seconds.
# TYPE vllm:inter_token_latency_seconds histogram
vllm:inter_token_latency_seconds_bucket{{le="0.01",{labels}}} 50.0
vllm:inter_token_latency_seconds_bucket{{le="0.05",{labels}}} 100.0
vllm:inter_token_latency_seconds_bucket{{le="+Inf",{labels}}} 100.0
vllm:inter_token_latency_seconds_count{{{labels}}} 100.0
vllm:inter_token_latency_seconds_sum{{{labels}}} 1.5
# HELP vllm:iteration_tokens_total Histogram of number of tokens per engine_step.
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_bucket{{le="8.0",{labels}}} 5.0
vllm:iteration_tokens_total_bucket{{le="64.0",{labels}}} 20.0
vllm:iteration_tokens_total_bucket{{le="+Inf",{labels}}} 20.0
vllm:iteration_tokens_total_count{{{labels}}} 20.0
vllm:iteration_tokens_total_sum{{{labels}}} 400.0
"""


def test_a_v0_engine() -> None:
    s = parse_engine_metrics(V0)
    assert (s.running, s.waiting, s.kv_cache_usage, s.preemptions) == (3.0, 7.0, 0.42, 2.0)
    assert (s.prompt_tokens, s.generation_tokens) == (12000.0, 3000.0)
    assert s.prefix_cache_hit_rate == 0.25 and s.prefix_cache_hits is None  # V0's gauge, no counters
    assert s.models == ("meta-llama/Llama-3.1-8B-Instruct",)
    assert s.ttft is not None and s.ttft.count == 40 and s.ttft.mean == pytest.approx(0.3)
    # The 20th of 40 observations lies halfway through the 0.1-0.5 s bucket (10 below it, 20 in it).
    assert s.ttft.quantile(0.5) == pytest.approx(0.3)
    assert s.itl is not None and s.itl.quantile(0.5) == pytest.approx(0.0175)  # V0's time per output token
    assert s.itl.quantile(0.99) == pytest.approx(0.025)  # past the last finite bound: that bound


def test_a_v1_server_with_two_engines_is_summed_and_its_kv_cache_averaged() -> None:
    text = v1(0, running=2, waiting=1, kv=0.5, hits=300, queries=1000, prompt=5000)
    text += v1(1, running=4, waiting=0, kv=0.7, hits=100, queries=1000, prompt=7000)
    # Two engines write the same families: concatenated texts repeat the HELP/TYPE lines, which the
    # parser refuses, so they are merged the way one exporter writes them.
    merged = merge_families(text)
    s = parse_engine_metrics(merged)
    assert (s.running, s.waiting) == (6.0, 1.0)
    assert s.kv_cache_usage == pytest.approx(0.6)
    assert (s.prefix_cache_hits, s.prefix_cache_queries, s.prompt_tokens) == (400.0, 2000.0, 12000.0)
    assert s.itl is not None and s.itl.count == 200 and s.itl.quantile(0.5) == pytest.approx(0.01)
    assert s.batch_tokens is not None and s.batch_tokens.mean == pytest.approx(20.0)
    assert s.ttft is None  # not reported: None, never zero


def test_rates_between_two_scrapes() -> None:
    first = parse_engine_metrics(v1(0, running=1, waiting=0, kv=0.1, hits=100, queries=400, prompt=1000))
    second = parse_engine_metrics(v1(0, running=1, waiting=0, kv=0.1, hits=400, queries=1000, prompt=3000))
    r = rates(first, second, 10.0)
    assert r.prompt_tokens_per_s == 200.0
    assert r.prefix_cache_hit_rate == pytest.approx(0.5)  # 300 hits of 600 queries in the interval
    restarted = parse_engine_metrics(v1(0, running=0, waiting=0, kv=0.0, hits=0, queries=0, prompt=10))
    assert rates(second, restarted, 10.0).prompt_tokens_per_s is None  # a counter went back: a restart
    with pytest.raises(ValueError):
        rates(first, second, 0)


def test_histogram_difference_is_what_was_observed_in_between() -> None:
    earlier = Histogram(((0.1, 10.0), (1.0, 20.0), (float("inf"), 20.0)), 5.0, 20.0)
    later = Histogram(((0.1, 10.0), (1.0, 30.0), (float("inf"), 30.0)), 9.0, 30.0)
    diff = later.minus(earlier)
    assert diff.count == 10 and diff.total == 4.0 and diff.quantile(0.5) == pytest.approx(0.55)
    assert later.minus(Histogram(((0.1, 99.0),), 1.0, 99.0)) is later  # a reset: the whole histogram


def test_the_projects_simulator_is_read() -> None:
    from llm_console.simulator.config import SimulatorConfig
    from llm_console.simulator.engine import Engine

    engine = Engine(SimulatorConfig())
    s = parse_engine_metrics(engine.render_prometheus())
    assert s.running == 0 and s.waiting == 0 and s.kv_cache_usage is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<html>not metrics</html>", "not Prometheus exposition text"),
        ("# TYPE http_requests_total counter\nhttp_requests_total 3\n", "no vllm: metrics"),
        ("", "no vllm: metrics"),
    ],
)
def test_text_that_is_not_a_vllm_engines_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        parse_engine_metrics(text)


def merge_families(text: str) -> str:
    """Group sample lines under one HELP/TYPE header per family, as a single exporter writes them."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            current = line.split()[2]
            if len(headers.setdefault(current, [])) < 2:
                headers[current].append(line)
        elif line:
            samples.setdefault(current, []).append(line)
    return "".join("\n".join([*headers[n], *samples.get(n, [])]) + "\n" for n in headers)
