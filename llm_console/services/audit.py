"""Audit trail: every configuration change is written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from llm_console.db.models import AuditEvent

SECRET_FIELDS = frozenset({"api_key", "password", "secret", "token", "api_key_encrypted"})


def mask(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in data.items()}


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
