"""Fleet & GPUs: model-serving containers, GPUs and engine metrics; one deployment's engine and loading
timeline; the KV cache per worker. Read-only for every role from viewer up."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.charts import chart_card, slot_lines
from llm_console.components.filters import filter_errors
from llm_console.components.fleet import (
    container_table,
    engine_chart,
    engine_table,
    facts,
    gpu_cards,
    gpu_matrix,
    kv_table,
    no_samples,
    series_chart,
    source_banners,
    timeline_table,
    toolbar,
)
from llm_console.components.layout import console_page
from llm_console.components.widgets import section, stat_card
from llm_console.presenters.fleet import SLOTS
from llm_console.state.fleet import FleetDeploymentState, FleetKvState, FleetState

TWO_COLUMNS = rx.breakpoints(initial="1", md="2")


def cards(state_cards: rx.Var, element_id: str) -> rx.Component:
    return rx.flex(rx.foreach(state_cards, stat_card), gap="12px", wrap="wrap", width="100%", id=element_id)


@console_page(routes.FLEET, "Fleet & GPUs", on_load=[FleetState.load])
def fleet() -> rx.Component:
    S = FleetState
    return rx.vstack(
        toolbar(S, rx.link("KV cache by worker", href=routes.FLEET_KV, size="2")),
        filter_errors(S),
        source_banners(S.banners),
        cards(S.cards, "fleet-cards"),
        section(
            "Containers",
            no_samples(S.containers, container_table(S.containers, "fleet-containers"), S.containers_empty),
        ),
        section("GPUs", gpu_cards(S.gpus, S.gpu_processes, S.gpus_empty)),
        section("GPU-to-model matrix", gpu_matrix(S.matrix_columns, S.matrix_rows)),
        series_chart(
            "GPU memory used (GiB)", S.trend, slot_lines(S.trend, S.trend_names, SLOTS, unit=" GiB"), "chart-gpu-memory"
        ),
        section("Engines", engine_table(S.engines)),
        spacing="4",
        width="100%",
    )


@console_page(routes.FLEET_DEPLOYMENT, "Deployment engine", on_load=[FleetDeploymentState.load])
def fleet_deployment() -> rx.Component:
    S = FleetDeploymentState
    body = rx.vstack(
        facts(S.info),
        rx.text(S.engine_status, size="2", id="engine-status", role="status"),
        cards(S.cards, "engine-cards"),
        rx.grid(
            engine_chart(
                "Queue depth (sequences)",
                S.chart,
                [("running", "Running", "indigo"), ("waiting", "Waiting", "amber")],
                "chart-queue",
            ),
            engine_chart(
                "KV cache and prefix-cache hits (%)",
                S.chart,
                [("kv_cache_usage", "KV cache in use", "crimson"), ("prefix_hit_rate", "Prefix hits", "grass")],
                "chart-kv",
            ),
            engine_chart(
                "Throughput (tokens/s)",
                S.chart,
                [("prompt_tps", "Prompt", "cyan"), ("generation_tps", "Generation", "indigo")],
                "chart-throughput",
            ),
            engine_chart(
                "Latency (ms)",
                S.chart,
                [
                    ("ttft_p50_ms", "TTFT P50", "grass"),
                    ("ttft_p95_ms", "TTFT P95", "amber"),
                    ("itl_p50_ms", "ITL P50", "cyan"),
                    ("itl_p95_ms", "ITL P95", "crimson"),
                ],
                "chart-latency",
            ),
            engine_chart(
                "Batch size (tokens per engine step, mean)",
                S.chart,
                [("batch_tokens_mean", "Tokens per step", "violet")],
                "chart-batch",
            ),
            columns=TWO_COLUMNS,
            spacing="3",
            width="100%",
        ),
        section(
            "Containers",
            no_samples(S.containers, container_table(S.containers, "deployment-containers"), "No containers serve it."),
        ),
        section("Model loading timeline", timeline_table(S.timeline)),
        spacing="4",
        width="100%",
    )
    return rx.vstack(
        toolbar(S, rx.link("All of the fleet", href=routes.FLEET, size="2")),
        filter_errors(S),
        rx.heading(S.title, size="5", as_="h2"),
        rx.cond(S.found, body, rx.text("Pick a deployment from the fleet's engine table.", size="2")),
        spacing="4",
        width="100%",
    )


@console_page(routes.FLEET_KV, "KV cache", on_load=[FleetKvState.load])
def fleet_kv() -> rx.Component:
    S = FleetKvState
    return rx.vstack(
        toolbar(S, rx.link("All of the fleet", href=routes.FLEET, size="2")),
        filter_errors(S),
        section("Workers now", kv_table(S.rows)),
        rx.grid(
            chart_card(
                "KV cache in use (%)",
                no_samples(S.usage_chart, slot_lines(S.usage_chart, S.names, SLOTS, unit="%")),
                chart_id="chart-kv-usage",
            ),
            chart_card(
                "Prefix-cache hit rate (%)",
                no_samples(S.hit_chart, slot_lines(S.hit_chart, S.names, SLOTS, unit="%")),
                chart_id="chart-kv-hits",
            ),
            columns=TWO_COLUMNS,
            spacing="3",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )
