"""The catalog metadata an operator may set on an alias (`ModelAlias.info`), and how each field is checked.

`validate_info` refuses bad input with a readable reason (the edit form and the config import use it);
`clean_info` reads what is stored, dropping anything invalid, so a hand-edited row never breaks a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

TYPES = ("llm", "embedding", "reranker")
CAPABILITY_FLAGS = ("streaming", "tools", "vision", "json_mode")
MAX_CONTEXT = 100_000_000
MAX_DIMS = 65_536
HF_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
"""A Hugging Face repo id, "org/name": letters, digits, `.`, `_`, `-`; nothing that could be another URL."""
HF_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/", "https://hf.co/")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CatalogError(ValueError):
    """A readable reason a catalog change or view was refused."""


def hf_url(repo: str) -> str:
    """The model's Hugging Face page, or "" when `repo` is not a plain repo id (never another URL)."""
    return f"https://huggingface.co/{repo}" if is_hf_repo(repo) else ""


def is_hf_repo(repo: str) -> bool:
    return bool(HF_REPO.fullmatch(repo)) and ".." not in repo and "--" not in repo


def _text(limit: int, multiline: bool = False) -> Callable[[str, Any], str | None]:
    def check(name: str, value: Any) -> str | None:
        if not isinstance(value, str):
            raise CatalogError(f"{name} must be text")
        value = value.strip()
        if len(value) > limit:
            raise CatalogError(f"{name} is longer than {limit} characters")
        if CONTROL.search(value.replace("\n", "") if multiline else value) or (not multiline and "\n" in value):
            raise CatalogError(f"{name} contains control characters")
        return value or None

    return check


def _number(limit: int) -> Callable[[str, Any], int | None]:
    def check(name: str, value: Any) -> int | None:
        if isinstance(value, str):
            text = value.strip().replace(",", "").replace("_", "")
            if not text:
                return None
            if not text.isdigit():
                raise CatalogError(f"{name} must be a whole number, got {value[:40]!r}")
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CatalogError(f"{name} must be a whole number")
        if not 1 <= value <= limit:
            raise CatalogError(f"{name} must be between 1 and {limit:,}")
        return value

    return check


def _type(name: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if value not in TYPES:
        raise CatalogError(f"type must be one of: {', '.join(TYPES)}")
    return str(value)


def _hf_repo(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise CatalogError("Hugging Face repo must be text like org/name")
    repo = value.strip()
    for prefix in HF_PREFIXES:
        if repo.lower().startswith(prefix):
            repo = repo[len(prefix) :].rstrip("/")
            break
    if not repo:
        return None
    if not is_hf_repo(repo):
        raise CatalogError(f"Hugging Face repo must look like org/name (letters, digits, . _ -), got {value[:80]!r}")
    return repo


def _flag(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise CatalogError(f"{name} must be true, false or unknown")


def _sunset(name: str, value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise CatalogError("sunset date must be a date like 2026-12-31")
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise CatalogError(f"sunset date must be a date like 2026-12-31, got {value[:40]!r}") from None


def _capabilities(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CatalogError("capabilities must be a mapping of flags")
    unknown = sorted(set(value) - {*CAPABILITY_FLAGS, "embedding_dims"})
    if unknown:
        raise CatalogError(f"unknown capabilities: {', '.join(map(str, unknown))[:200]}")
    out: dict[str, Any] = {}
    for flag in CAPABILITY_FLAGS:
        if value.get(flag) is not None:
            out[flag] = _flag(flag.replace("_", " "), value[flag])
    if value.get("embedding_dims") not in (None, ""):
        out["embedding_dims"] = _number(MAX_DIMS)("embedding dimensions", value["embedding_dims"])
    return {k: v for k, v in out.items() if v is not None} or None


def _deprecated(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value or None  # False is the default: stored as absent
    raise CatalogError("deprecated must be true or false")


FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "type": _type,
    "description": _text(2000, multiline=True),
    "size": _text(40),
    "quantization": _text(60),
    "context_length": _number(MAX_CONTEXT),
    "hf_repo": _hf_repo,
    "capabilities": _capabilities,
    "version": _text(100),
    "deprecated": _deprecated,
    "deprecation_note": _text(1000, multiline=True),
    "sunset_date": _sunset,
}
LABELS = {"hf_repo": "Hugging Face repo", "context_length": "context length", "sunset_date": "sunset date"}


def validate_info(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked, normalised `changes`: each known field's new value, or None to clear it."""
    if not isinstance(changes, dict):
        raise CatalogError("metadata changes must be a mapping of fields")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise CatalogError(f"unknown metadata field(s): {', '.join(map(str, unknown))[:200]}")
    return {
        name: None if value is None else FIELDS[name](LABELS.get(name, name.replace("_", " ")), value)
        for name, value in changes.items()
    }


def clean_info(stored: dict[str, Any]) -> dict[str, Any]:
    """The valid fields of a stored `info` (anything unreadable is left out, never shown raw)."""
    out: dict[str, Any] = {}
    for name, check in FIELDS.items():
        if stored.get(name) is None:
            continue
        try:
            value = check(name, stored[name])
        except CatalogError:
            continue
        if value is not None:
            out[name] = value
    return out
