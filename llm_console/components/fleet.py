"""Widgets of the fleet pages: collector banners, container and engine tables, GPU cards, the GPU-to-model
matrix, series charts. Every name renders as text, never as markup; every figure comes from the state."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.catalog import scroll_table
from llm_console.components.charts import chart_card, lines
from llm_console.components.filters import dashboard_toolbar
from llm_console.components.tables import MUTED, WRAP
from llm_console.components.widgets import section
from llm_console.presenters.fleet import NO_SAMPLES

LEVEL_COLORS = (("ok", "green"), ("warning", "amber"), "red")
LEVEL_ICONS = (("ok", rx.icon("circle-check")), ("warning", rx.icon("triangle-alert")), rx.icon("circle-x"))


def badge(text: Any, color: Any) -> rx.Component:
    return rx.badge(text, color_scheme=color.to(str), variant="soft", high_contrast=True)


def no_samples(rows: Any, body: rx.Component, message: Any = NO_SAMPLES) -> rx.Component:
    return rx.cond(rows.length() > 0, body, rx.text(message, size="2", color=MUTED))


def source_banners(banners: Any) -> rx.Component:
    """What each collector last said, in its own words; a failing or missing one is never a silent table."""

    def one(b: Any) -> rx.Component:
        return rx.callout.root(
            rx.callout.icon(rx.match(b["level"], *LEVEL_ICONS)),
            rx.callout.text(
                rx.text.strong(b["title"], ": "),
                b["message"],
                rx.text(" ", b["checked"], as_="span", size="1"),
            ),
            color_scheme=rx.match(b["level"], *LEVEL_COLORS),
            high_contrast=True,
            size="1",
            role="status",
            custom_attrs={"data-source": b["kind"], "data-level": b["level"]},
        )

    return rx.vstack(rx.foreach(banners, one), spacing="2", width="100%", id="fleet-sources")


def deployment_link(r: Any) -> rx.Component:
    return rx.cond(r["href"] != "", rx.link(r["deployment"], href=r["href"]), rx.text(r["deployment"]))


CONTAINER_HEADERS = ["Name", "Status", "Health", "Image", "Model", "Deployment", "Uptime", "Restarts"]
CONTAINER_HEADERS += ["CPU", "Memory", "GPUs"]


def container_table(rows: Any, table_id: str) -> rx.Component:
    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(
                rx.vstack(rx.text(r["name"], weight="medium"), rx.text(r["id"], size="1", color=MUTED), spacing="0"),
                style=WRAP,
            ),
            rx.table.cell(badge(r["status"], r["status_color"]), custom_attrs={"data-cell": "status"}),
            rx.table.cell(badge(r["health"], r["health_color"])),
            rx.table.cell(
                rx.vstack(rx.text(r["image"]), rx.text(r["version"], size="1", color=MUTED), spacing="0"), style=WRAP
            ),
            rx.table.cell(r["model"], style=WRAP),
            rx.table.cell(deployment_link(r)),
            rx.table.cell(r["uptime"], custom_attrs={"data-cell": "uptime"}),
            rx.table.cell(r["restarts"], custom_attrs={"data-cell": "restarts"}),
            rx.table.cell(r["cpu"]),
            rx.table.cell(r["memory"]),
            rx.table.cell(r["gpus"]),
            custom_attrs={"data-container": r["name"]},
        )

    headers = [rx.table.column_header_cell(h, scope="col") for h in CONTAINER_HEADERS]
    return scroll_table(table_id, headers, rows, row)


def _fact(label: str, value: Any) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color=MUTED), rx.text(value, size="2"), spacing="0")


def gpu_card(g: Any, processes: Any) -> rx.Component:
    def process(p: Any) -> rx.Component:
        return rx.list_item(
            rx.text(
                "pid ", p["pid"], " · ", p["container"], " · ", p["serves"], " · ", p["memory"], size="1", style=WRAP
            )
        )

    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(g["label"], size="3", as_="h3"),
                rx.text(g["name"], size="2", color=MUTED),
                align="baseline",
                spacing="2",
                wrap="wrap",
            ),
            rx.progress(value=g["memory_pct"].to(int), max=100, aria_label=g["memory_aria"].to(str), size="2"),
            rx.text("Memory ", g["memory"], size="2"),
            rx.grid(
                _fact("Utilization", g["utilization"]),
                _fact("Temperature", g["temperature"]),
                _fact("Power / limit", g["power"]),
                _fact("Driver", g["driver"]),
                _fact("CUDA", g["cuda"]),
                _fact("Seen", g["seen"]),
                columns="3",
                spacing="2",
                width="100%",
            ),
            rx.cond(
                processes.length() > 0,
                rx.unordered_list(rx.foreach(processes, process), margin_left="1em"),
                rx.text("No processes on this GPU.", size="1", color=MUTED),
            ),
            spacing="2",
            width="100%",
        ),
        custom_attrs={"data-gpu": g["uuid"]},
        width="100%",
    )


def gpu_cards(gpus: Any, processes: Any, empty: Any) -> rx.Component:
    return no_samples(
        gpus,
        rx.grid(
            rx.foreach(gpus, lambda g, i: gpu_card(g, processes[i])),
            columns=rx.breakpoints(initial="1", md="2", xl="3"),
            spacing="3",
            width="100%",
            id="gpu-cards",
        ),
        empty,
    )


def gpu_matrix(columns: Any, rows: Any) -> rx.Component:
    """Rows are GPUs, columns the deployments (or models) with processes on them; cells the memory they hold."""
    table = rx.box(
        rx.table.root(
            rx.el.caption("GPU memory held by each deployment's processes", class_name="rt-Text rt-r-size-1"),
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("GPU", scope="col"),
                    rx.foreach(columns, lambda c: rx.table.column_header_cell(c, scope="col", style=WRAP)),
                )
            ),
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda r: rx.table.row(
                        rx.table.row_header_cell(r[0], scope="row"),
                        rx.foreach(r[1:], lambda cell: rx.table.cell(cell)),
                    ),
                )
            ),
            variant="surface",
            size="1",
            width="100%",
            id="gpu-matrix",
        ),
        overflow_x="auto",
        width="100%",
    )
    return no_samples(rows, table, "No GPU processes seen yet.")


def series_chart(title: str, data: Any, chart: rx.Component, chart_id: str) -> rx.Component:
    return chart_card(title, no_samples(data, chart), chart_id=chart_id)


def engine_chart(title: str, data: Any, series: list[tuple[str, str, str]], chart_id: str) -> rx.Component:
    return series_chart(title, data, lines(data, "t", series), chart_id)


ENGINE_HEADERS = ["Deployment", "Model", "Running", "Waiting", "KV cache", "Prefix hits", "Generation"]
ENGINE_HEADERS += ["TTFT P50", "Last scrape", "Status"]


def engine_status(r: Any) -> rx.Component:
    return rx.vstack(
        badge(r["status"], r["status_color"]),
        rx.cond(r["error"] != "", rx.text(r["error"], size="1", color=MUTED, style=WRAP)),
        spacing="1",
    )


def engine_table(rows: Any) -> rx.Component:
    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(rx.link(r["deployment"], href=r["href"]), style=WRAP),
            rx.table.cell(r["model"], style=WRAP),
            rx.table.cell(r["running"]),
            rx.table.cell(r["waiting"]),
            rx.table.cell(r["kv"]),
            rx.table.cell(r["prefix"]),
            rx.table.cell(r["tps"]),
            rx.table.cell(r["ttft"]),
            rx.table.cell(r["age"]),
            rx.table.cell(engine_status(r)),
            custom_attrs={"data-engine": r["deployment"]},
        )

    headers = [rx.table.column_header_cell(h, scope="col") for h in ENGINE_HEADERS]
    return no_samples(rows, scroll_table("fleet-engines", headers, rows, row), "No engine metrics scraped yet.")


def queue_table(rows: Any, empty: Any) -> rx.Component:
    """Each engine's queue now (the Usage page): deployment, waiting, running, age of the reading, status."""

    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(rx.link(r["deployment"], href=r["href"]), style=WRAP),
            rx.table.cell(r["waiting"]),
            rx.table.cell(r["running"]),
            rx.table.cell(r["age"]),
            rx.table.cell(engine_status(r)),
            custom_attrs={"data-engine": r["deployment"]},
        )

    headers = [
        rx.table.column_header_cell(h, scope="col") for h in ("Deployment", "Waiting", "Running", "Read", "Status")
    ]
    return no_samples(rows, scroll_table("usage-queues", headers, rows, row), empty)


def timeline_table(rows: Any) -> rx.Component:
    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(r["time"]),
            rx.table.cell(r["container"], style=WRAP),
            rx.table.cell(badge(r["text"], r["color"])),
            custom_attrs={"data-severity": r["severity"]},
        )

    headers = [rx.table.column_header_cell(h, scope="col") for h in ("Time (UTC)", "Container", "What happened")]
    table = scroll_table("loading-timeline", headers, rows, row)
    return no_samples(rows, table, "No container events in this range.")


def usage_bar(text: Any, pct: Any, aria: Any) -> rx.Component:
    return rx.vstack(
        rx.progress(value=pct.to(int), max=100, aria_label=aria.to(str), size="2"),
        rx.text(text, size="1", color=MUTED),
        spacing="1",
        min_width="140px",
    )


def kv_table(rows: Any) -> rx.Component:
    def row(r: Any) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(rx.link(r["deployment"], href=r["href"].to(str)), style=WRAP),
            rx.table.cell(usage_bar(r["kv"], r["kv_pct"], r["kv_aria"])),
            rx.table.cell(usage_bar(r["prefix"], r["prefix_pct"], r["prefix_aria"])),
            rx.table.cell(r["running"]),
            rx.table.cell(r["waiting"]),
            rx.table.cell(r["age"]),
            rx.table.cell(engine_status(r)),
            custom_attrs={"data-worker": r["deployment"]},
        )

    names = ("Worker", "KV cache in use", "Prefix-cache hit rate", "Running", "Waiting", "Last scrape", "Status")
    headers = [rx.table.column_header_cell(h, scope="col") for h in names]
    return no_samples(rows, scroll_table("kv-workers", headers, rows, row), "No engine metrics scraped yet.")


def toolbar(state: Any, *extra: rx.Component) -> rx.Component:
    return dashboard_toolbar(state, *extra, with_resolution=False)


def facts(info: Any) -> rx.Component:
    return section(
        "Deployment",
        rx.grid(
            _fact("Name", info["name"]),
            _fact("Model", info["model"]),
            _fact("Provider", info["provider"]),
            _fact("Aliases", info["aliases"]),
            columns=rx.breakpoints(initial="2", md="4"),
            spacing="3",
            width="100%",
        ),
    )
