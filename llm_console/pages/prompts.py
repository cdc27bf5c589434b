"""Prompts: the list of prompt templates, and one prompt's versions, labels, per-version figures and diffs.
Every role reads; members and up write versions and move labels (production: operators and up)."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import filter_errors
from llm_console.components.layout import console_page
from llm_console.components.prompt_forms import editor_dialog, label_dialog
from llm_console.components.prompts import (
    detail_toolbar,
    diff_view,
    figures_table,
    header,
    list_toolbar,
    messages,
    pager,
    prompt_table,
    version_table,
    version_view,
)
from llm_console.state.prompts import PromptDetailState, PromptsState


@console_page(routes.PROMPTS, "Prompts", on_load=[PromptsState.load])
def prompts() -> rx.Component:
    return rx.vstack(list_toolbar(), prompt_table(), pager(), editor_dialog(), spacing="4", width="100%")


@console_page(routes.PROMPT_DETAIL, "Prompt", on_load=[PromptDetailState.load])
def prompt_detail() -> rx.Component:
    S = PromptDetailState
    found = rx.vstack(
        header(),
        detail_toolbar(),
        version_table(),
        figures_table(),
        rx.grid(version_view(), diff_view(), columns=rx.breakpoints(initial="1", lg="2"), spacing="4", width="100%"),
        spacing="4",
        width="100%",
    )
    return rx.vstack(
        rx.link("← All prompts", href=routes.PROMPTS, size="2"),
        filter_errors(S),
        messages(S),
        rx.cond(S.found, found),
        editor_dialog(),
        label_dialog(),
        spacing="4",
        width="100%",
    )
