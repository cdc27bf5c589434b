"""Audit trail: every configuration change is written in the same transaction as the change."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from sqlmodel import Session

from llm_console.db.models import AuditEvent

SECRET_FIELDS = frozenset({"api_key", "password", "secret", "token", "api_key_encrypted"})
MASK = "***"
# A key is secret-like when one of its words is one of these ("client_secret", "metrics_token", "Authorization"),
# but not merely a plural such as "max_tokens" or "prompt_tokens".
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "apikey", "authorization", "credential", "credentials"}
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("key", "hash"), ("private", "key"), ("token", "hash"), ("password", "hash")}
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# Full provider or virtual keys ("sk-..."): a 14-character display prefix is fine, a whole key is not.
_KEY_VALUE = re.compile(r"^(sk|pk|rk)-[A-Za-z0-9_-]{20,}$")
MAX_DEPTH = 20


def is_secret_key(name: str) -> bool:
    """True for field names that hold secrets: api_key, clientSecret, metrics_token, key_hash, ..."""
    if name in SECRET_FIELDS:
        return True
    words = [w.lower() for w in _WORD.findall(name)]
    if _SECRET_WORDS.intersection(words):
        return True
    return any(pair in _SECRET_PAIRS for pair in pairwise(words))


def _mask_value(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {str(k): (MASK if is_secret_key(str(k)) and v else _mask_value(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v, depth + 1) for v in value]
    if isinstance(value, str) and _KEY_VALUE.match(value):
        return MASK
    return value


def mask(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """`data` with every truthy secret-like field replaced by "***", at any depth (falsy values kept: they
    say "no secret set"); strings shaped like whole API keys are masked wherever they appear."""
    if data is None:
        return None
    masked = _mask_value(data, 0)
    return masked if isinstance(masked, dict) else None


def record(
    s: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    s.add(
        AuditEvent(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=mask(before),
            after=mask(after),
        )
    )
