"""The Model catalog's metadata form (operators and admins): what is set here wins over discovered values."""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.catalog import FLAGS, MUTED, error_callout
from llm_console.state.catalog import CatalogEditState
from llm_console.state.catalog import CatalogState as S


def _field(label: str, name: str, control: rx.Component, **props: Any) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=f"edit-{name}", class_name="rt-Text rt-r-size-1"), control, spacing="1", **props
    )


def _input(label: str, name: str, **props: Any) -> rx.Component:
    return _field(label, name, rx.input(id=f"edit-{name}", name=name, default_value=S.edit[name], size="1", **props))


def _choice(label: str, name: str, options: list[str]) -> rx.Component:
    return _field(
        label,
        name,
        rx.select.root(
            rx.select.trigger(id=f"edit-{name}", min_width="120px"),
            rx.select.content(*[rx.select.item(o, value=o) for o in options]),
            name=name,
            default_value=S.edit[name],
            size="1",
        ),
    )


def edit_form() -> rx.Component:
    """Operator-set metadata; an empty field falls back to what the deployments report, or to unknown."""
    yes_no = ["unknown", "yes", "no"]
    mine = CatalogEditState.for_alias == S.detail["alias"]
    return rx.form(
        rx.vstack(
            rx.flex(
                _choice("Type", "type", ["unknown", "llm", "embedding", "reranker"]),
                _input("Size", "size", placeholder="8B", max_length=40),
                _input("Quantization", "quantization", placeholder="AWQ int4", max_length=60),
                _input("Context length", "context_length", placeholder="from the deployment", max_length=12),
                _input("Hugging Face repo", "hf_repo", placeholder="org/name", max_length=200),
                _input("Version", "version", max_length=100),
                gap="12px",
                wrap="wrap",
            ),
            _field(
                "Description",
                "description",
                rx.text_area(
                    id="edit-description",
                    name="description",
                    default_value=S.edit["description"],
                    max_length=2000,
                    width="100%",
                    rows="3",
                ),
                width="100%",
            ),
            rx.flex(
                *[_choice(label, key, yes_no) for key, label in FLAGS],
                _input("Embedding dims", "embedding_dims", max_length=6, width="110px"),
                gap="12px",
                wrap="wrap",
            ),
            rx.flex(
                _choice("Deprecated", "deprecated", ["no", "yes"]),
                _input("Sunset date", "sunset_date", type="date"),
                gap="12px",
                wrap="wrap",
            ),
            _field(
                "Deprecation note",
                "deprecation_note",
                rx.text_area(
                    id="edit-deprecation_note",
                    name="deprecation_note",
                    default_value=S.edit["deprecation_note"],
                    max_length=1000,
                    width="100%",
                ),
                width="100%",
            ),
            rx.hstack(
                rx.button("Save metadata", type="submit", size="2", id="catalog-save"),
                rx.button(
                    "Refresh metadata",
                    type="button",
                    variant="soft",
                    size="2",
                    loading=CatalogEditState.busy,
                    on_click=CatalogEditState.refresh_metadata,
                    id="catalog-refresh",
                ),
                rx.text(rx.cond(mine, CatalogEditState.message, ""), size="2", color=MUTED, role="status"),
                align="center",
                spacing="3",
            ),
            error_callout(rx.cond(mine, CatalogEditState.edit_error, "")),
            width="100%",
            spacing="3",
        ),
        key=S.edit_generation.to(str),
        on_submit=CatalogEditState.save,
        reset_on_submit=False,
        id="catalog-edit",
        aria_label="Edit model metadata",
    )
