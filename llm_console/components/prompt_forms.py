"""The prompt editor dialog ("New prompt" and "New version") and the "Move label" dialog.

The template is typed in controlled fields (the variables under the editor follow each change); everything
else is read from the form when it is sent. Every control has a label, and errors are announced.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from llm_console.components.forms import form_error, labelled, select_field, text_field
from llm_console.components.tables import MUTED
from llm_console.prompts.template import CONFIG_FIELDS, ROLES
from llm_console.state.prompt_forms import PromptFormState, PromptLabelState
from llm_console.state.prompts import PromptDetailState

SETTINGS_HINT = "Optional JSON object of request defaults the call's own values override: " + ", ".join(CONFIG_FIELDS)


def _buttons(submit_label: Any, submit_id: str, on_cancel: Any) -> rx.Component:
    return rx.hstack(
        rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=on_cancel),
        rx.button(submit_label, type="submit", id=submit_id),
        justify="end",
        spacing="3",
        width="100%",
    )


def message_editor(m: Any, i: Any) -> rx.Component:
    """One chat message: its role and its text, and a button that removes it."""
    S = PromptFormState
    number = i + 1
    return rx.vstack(
        rx.hstack(
            rx.text(f"Message {number}", size="2", weight="medium", id=f"prompt-msg-{i}-label"),
            rx.select.root(
                rx.select.trigger(aria_label=f"Role of message {number}", id=f"prompt-role-{i}"),
                rx.select.content(*[rx.select.item(role, value=role) for role in ROLES]),
                value=m["role"],
                on_change=lambda v: S.set_role(i, v),
                name=f"role_{i}",
                size="1",
            ),
            rx.spacer(),
            rx.button(
                rx.icon("trash-2", size=14),
                "Remove",
                type="button",
                size="1",
                variant="soft",
                color_scheme="red",
                disabled=S.messages.length() <= 1,
                on_click=S.remove_message(i),
                aria_label=f"Remove message {number}",
            ),
            align="center",
            width="100%",
        ),
        rx.text_area(
            value=m["content"],
            on_change=lambda v: S.set_content(i, v),
            name=f"content_{i}",
            id=f"prompt-content-{i}",
            aria_labelledby=f"prompt-msg-{i}-label",
            rows="4",
            width="100%",
            resize="vertical",
        ),
        spacing="1",
        width="100%",
        custom_attrs={"data-message": i},
    )


def template_editor() -> rx.Component:
    S = PromptFormState
    chat = rx.vstack(
        rx.foreach(S.messages, message_editor),
        rx.button(
            rx.icon("plus", size=14), "Add message", type="button", size="1", variant="soft", on_click=S.add_message
        ),
        spacing="3",
        width="100%",
        role="group",
        aria_label="Messages",
    )
    text = labelled(
        "Text",
        rx.text_area(
            value=S.text, on_change=S.set_text, name="text", id="prompt-text", rows="8", width="100%", resize="vertical"
        ),
        field_id="prompt-text",
    )
    variables = rx.text(
        "Variables: ",
        rx.cond(S.variables.length() > 0, S.variables.join(", "), "none — write {{ name }} to add one"),
        size="2",
        color=MUTED,
        id="prompt-variables",
        aria_live="polite",
    )
    return rx.vstack(rx.cond(S.kind == "chat", chat, text), variables, spacing="2", width="100%")


def new_prompt_fields() -> rx.Component:
    S = PromptFormState
    return rx.vstack(
        text_field(
            "Name",
            "name",
            field_id="prompt-name",
            required=True,
            max_length=200,
            hint="Letters, digits, '.', '_', '-' or '/'; applications fetch the prompt by this name.",
        ),
        text_field("Description (optional)", "description", field_id="prompt-description", max_length=1000),
        rx.vstack(
            rx.text("Kind", size="2", weight="medium"),
            rx.segmented_control.root(
                rx.segmented_control.item("Chat (messages)", value="chat"),
                rx.segmented_control.item("Text", value="text"),
                value=S.kind,
                on_change=lambda v: S.set_kind(v),
                aria_label="Kind",
                size="1",
            ),
            spacing="1",
        ),
        spacing="3",
        width="100%",
    )


def editor_dialog() -> rx.Component:
    S = PromptFormState
    new = S.mode == "new"
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(new, "New prompt", "New version of " + S.prompt_name)),
            rx.dialog.description(
                rx.cond(
                    new,
                    "Version 1 of a template applications fetch by name and label.",
                    "Versions never change once saved; labels decide which one applications get.",
                ),
                size="2",
                color=MUTED,
                margin_bottom="12px",
            ),
            rx.form(
                rx.vstack(
                    rx.cond(new, new_prompt_fields()),
                    template_editor(),
                    labelled(
                        "Model settings (optional JSON)",
                        rx.text_area(
                            default_value=S.config_text,
                            name="config",
                            id="prompt-config",
                            rows="3",
                            width="100%",
                            placeholder='{"temperature": 0.2}',
                            aria_describedby="prompt-config-hint",
                        ),
                        field_id="prompt-config",
                        hint=SETTINGS_HINT,
                    ),
                    text_field("Commit message (optional)", "commit_message", field_id="prompt-commit", max_length=500),
                    text_field(
                        "Labels to set (optional)",
                        "labels",
                        field_id="prompt-labels-input",
                        placeholder="staging, production",
                        hint="Separated by commas; only operators and admins may set production.",
                        max_length=500,
                    ),
                    form_error(S.error),
                    _buttons(rx.cond(new, "Create prompt", "Save version"), "prompt-save", S.close(False)),
                    spacing="4",
                    width="100%",
                ),
                on_submit=S.submit,
                reset_on_submit=False,
            ),
            max_width="760px",
            id="prompt-editor",
        ),
        open=S.open,
        on_open_change=S.close,
    )


def label_dialog() -> rx.Component:
    S, D = PromptLabelState, PromptDetailState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Move a label"),
            rx.dialog.description(
                "Applications asking for this label get the chosen version from their next call.",
                size="2",
                color=MUTED,
                margin_bottom="12px",
            ),
            rx.form(
                rx.vstack(
                    text_field(
                        "Label",
                        "label",
                        field_id="label-name",
                        default_value=S.label,
                        required=True,
                        max_length=50,
                        list="label-suggestions",
                        hint=rx.cond(
                            D.can_promote,
                            "An existing label moves; a new one is created.",
                            "Only operators and admins may move the production label.",
                        ),
                    ),
                    rx.el.datalist(rx.foreach(D.label_names, lambda n: rx.el.option(value=n)), id="label-suggestions"),
                    select_field("Version", "version", D.options, field_id="label-version", default_value=S.version),
                    form_error(S.error),
                    _buttons("Move label", "label-save", S.close(False)),
                    spacing="4",
                    width="100%",
                ),
                on_submit=S.submit,
                reset_on_submit=False,
            ),
            max_width="480px",
            id="label-dialog",
        ),
        open=S.open,
        on_open_change=S.close,
    )
