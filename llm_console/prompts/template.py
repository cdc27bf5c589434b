"""Prompt templates: `{{ name }}` variables, validation, rendering and a content digest.

Rendering is one pass over the template: each `{{ name }}` is replaced by its value as literal text, and the
values are never scanned again, so a value holding `{{ other }}` (user text) stays exactly that text and can
never pull in another variable. Anything between braces that is not a variable name (`{{ 1 }}`, `{{a-b}}`,
a lone `{`) is left as written. Values are strings, numbers or booleans; a missing one is an error naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
KINDS = ("chat", "text")
ROLES = ("system", "developer", "user", "assistant")
MAX_TEMPLATE_CHARS = 200_000  # all messages together
MAX_MESSAGES = 100
MAX_VALUE_CHARS = 100_000
MAX_VALUES = 100
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,49}$")
RESERVED_LABELS = ("latest",)  # always the highest version; never stored
# Request defaults a version may carry; the request's own value wins.
CONFIG_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "presence_penalty": (int, float),
    "frequency_penalty": (int, float),
    "seed": (int,),
    "stop": (str, list),
}


class PromptError(ValueError):
    """A readable reason a template, a name, a label or a set of values is not acceptable."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class MissingVariables(PromptError):
    """The values leave some of the template's variables unset."""

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(repr(n) for n in names)
        noun = "variable" if len(names) == 1 else "variables"
        super().__init__(f"The prompt needs a value for the {noun} {listed}.", "prompt.variables")
        self.names = names


@dataclass(frozen=True, slots=True)
class Template:
    """One version's template: `messages` (chat) or `text` (text)."""

    kind: str
    messages: tuple[tuple[str, str], ...] = ()
    text: str = ""

    @property
    def parts(self) -> list[str]:
        return [content for _, content in self.messages] if self.kind == "chat" else [self.text]

    def variables(self) -> list[str]:
        """Variable names in order of first appearance."""
        seen: dict[str, None] = {}
        for part in self.parts:
            for match in VARIABLE.finditer(part):
                seen.setdefault(match.group(1), None)
        return list(seen)

    def as_json(self) -> list[dict[str, str]] | str:
        return [{"role": r, "content": c} for r, c in self.messages] if self.kind == "chat" else self.text


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise PromptError(
            "A prompt name has 1 to 200 letters, digits, '.', '_', '-' or '/', and starts with a letter or digit.",
            "name",
        )
    return name


def check_label(label: str) -> str:
    label = (label or "").strip()
    if not LABEL.match(label):
        raise PromptError(
            "A label has 1 to 50 lower-case letters, digits, '.', '_' or '-', and starts with a letter or digit.",
            "label",
        )
    if label in RESERVED_LABELS:
        raise PromptError(f"'{label}' always means the newest version; it cannot be moved.", "label")
    return label


def parse_template(kind: str, messages: Any = None, text: Any = None) -> Template:
    """A chat template from a list of {role, content} objects, or a text template from a string."""
    if kind not in KINDS:
        raise PromptError("A prompt is 'chat' (a list of messages) or 'text' (one string).", "kind")
    if kind == "text":
        if not isinstance(text, str) or not text.strip():
            raise PromptError("A text prompt needs its text.", "text")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise PromptError(f"A prompt has at most {MAX_TEMPLATE_CHARS:,} characters.", "text")
        return Template("text", text=text)
    if not isinstance(messages, list) or not messages:
        raise PromptError("A chat prompt needs at least one message.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise PromptError(f"A chat prompt has at most {MAX_MESSAGES} messages.", "messages")
    out: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) - {"role", "content"}:
            raise PromptError(f"Message {i + 1} must be an object with 'role' and 'content' only.", "messages")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise PromptError(f"Message {i + 1}: the role is one of {', '.join(ROLES)}.", "messages")
        if not isinstance(content, str) or not content.strip():
            raise PromptError(f"Message {i + 1} ({role}) has no text.", "messages")
        out.append((role, content))
    if sum(len(c) for _, c in out) > MAX_TEMPLATE_CHARS:
        raise PromptError(f"A prompt has at most {MAX_TEMPLATE_CHARS:,} characters.", "messages")
    return Template("chat", tuple(out))


def check_config(config: Any) -> dict[str, Any]:
    """Request defaults stored with a version: only known fields, each of the right type."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise PromptError("The model settings must be a JSON object.", "config")
    unknown = sorted(set(config) - set(CONFIG_FIELDS))
    if unknown:
        allowed = ", ".join(CONFIG_FIELDS)
        raise PromptError(f"Unknown model setting {unknown[0][:40]!r}: use {allowed}.", "config")
    for name, value in config.items():
        types = CONFIG_FIELDS[name]
        ok = isinstance(value, types) and not isinstance(value, bool)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and name == "stop" and isinstance(value, list):
            ok = len(value) <= 4 and all(isinstance(s, str) for s in value)
        if ok and name == "model":
            ok = 0 < len(value) <= 300
        if not ok:
            raise PromptError(f"The model setting {name!r} has the wrong type.", "config")
    return dict(config)


def check_values(values: Any) -> dict[str, str]:
    """The request's variables as text: strings as they are, numbers and booleans as JSON writes them."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise PromptError("'prompt.variables' must be an object of names to values.", "prompt.variables")
    if len(values) > MAX_VALUES:
        raise PromptError(f"At most {MAX_VALUES} prompt variables.", "prompt.variables")
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
            text = json.dumps(value)
        else:
            raise PromptError(
                f"The prompt variable {str(name)[:64]!r} must be a string, a number or a boolean.",
                "prompt.variables",
            )
        if len(text) > MAX_VALUE_CHARS:
            raise PromptError(
                f"The prompt variable {str(name)[:64]!r} is longer than {MAX_VALUE_CHARS:,} characters.",
                "prompt.variables",
            )
        out[str(name)] = text
    return out


def _substitute(part: str, values: Mapping[str, str]) -> str:
    return VARIABLE.sub(lambda m: values[m.group(1)], part)


def render(template: Template, values: Mapping[str, str]) -> list[dict[str, str]] | str:
    """The template with every variable replaced (one pass: values are never re-scanned)."""
    missing = [n for n in template.variables() if n not in values]
    if missing:
        raise MissingVariables(missing)
    if template.kind == "text":
        return _substitute(template.text, values)
    return [{"role": r, "content": _substitute(c, values)} for r, c in template.messages]


def digest(template: Template, config: Mapping[str, Any]) -> str:
    """sha256 of the canonical template and config: equal content, equal digest."""
    canonical = json.dumps(
        {"kind": template.kind, "template": template.as_json(), "config": dict(config)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
