"""The request detail pieces: key facts, the conversation (markdown, raw HTML off), the span waterfall."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.widgets import status_badge


def fact(label: str, value: Any) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 11)),
        rx.text(value, size="2", weight="medium", style={"overflow_wrap": "anywhere"}),
        spacing="0",
        min_width="150px",
    )


def message(m: Any) -> rx.Component:
    """One chat message. `use_raw=False`: HTML in a prompt (`<script>`, `onerror=`) is shown as text, never run."""
    return rx.box(
        rx.badge(
            m["role"],
            variant="soft",
            color_scheme=rx.match(m["role"], ("user", "blue"), ("assistant", "green"), "gray"),
            high_contrast=True,
        ),
        rx.box(rx.markdown(m["content"], use_raw=False), class_name="message-body", padding_top="4px"),
        padding="8px 10px",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="8px",
        width="100%",
    )


def span_row(s: Any) -> rx.Component:
    return rx.hstack(
        rx.text(s["label"], size="1", width="220px", min_width="220px", style={"overflow_wrap": "anywhere"}),
        rx.box(
            rx.box(
                position="absolute",
                left=s["offset"],
                width=s["width"],
                top="3px",
                height="14px",
                border_radius="3px",
                background=rx.cond(s["status"] == "ok", rx.color("indigo", 9), rx.color("red", 9)),
                title=s["timing"],
            ),
            position="relative",
            height="20px",
            flex="1",
            background=rx.color("gray", 3),
            border_radius="4px",
        ),
        rx.text(
            s["timing"], size="1", color=rx.color("gray", 11), width="150px", min_width="150px", text_align="right"
        ),
        width="100%",
        align="center",
        class_name="span-row",
    )


def waterfall(spans: Any) -> rx.Component:
    return rx.vstack(
        rx.foreach(spans, span_row),
        rx.cond(spans.length() == 0, rx.text("No spans were recorded for this request.", size="2")),
        width="100%",
        spacing="1",
        id="trace-waterfall",
        aria_label="Trace waterfall",
    )


def code_block(text: Any) -> rx.Component:
    return rx.el.pre(
        text,
        style={
            "white_space": "pre-wrap",
            "overflow_wrap": "anywhere",
            "max_height": "420px",
            "overflow": "auto",
            "font_size": "12px",
            "padding": "10px",
            "border_radius": "6px",
            "background": rx.color("gray", 3),
        },
        tab_index=0,
    )


def detail_facts(d: Any) -> rx.Component:
    return rx.flex(
        fact("Request id", d["id"]),
        fact("Time", d["time"]),
        fact("Endpoint", d["endpoint"]),
        fact("Model", d["model"]),
        fact("Upstream model", d["upstream_model"]),
        fact("Deployment", d["deployment"]),
        fact("Container", d["container"]),
        fact("GPU", d["gpu"]),
        fact("Key", d["key"]),
        fact("User", d["user"]),
        fact("Team", d["team"]),
        rx.vstack(
            rx.text("Status", size="1", color=rx.color("gray", 11)),
            rx.hstack(status_badge(d["status"]), rx.text(d["code"], size="2")),
            spacing="0",
            min_width="150px",
        ),
        fact("Mode", d["mode"]),
        fact("Tokens", d["tokens"]),
        fact("Cost", d["cost"]),
        fact("Latency", d["latency"]),
        fact("Time to first byte", d["ttfb"]),
        fact("Attempts", d["attempts"]),
        fact("Client", d["client_ip"]),
        gap="12px",
        wrap="wrap",
        width="100%",
    )
