"""Prompt management: named templates, their immutable numbered versions, and movable labels.

Registered in the shared metadata by `llm_console.db.models` (which imports this module); nothing here
imports models.py. A version is never changed once written; a label ("production", "staging", ...) points at
one version of its prompt and moving it is how a version is promoted. "latest" is not stored: it is always
the highest version number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts() -> Any:
    return Field(default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False))


class Prompt(SQLModel, table=True):
    """A named template; `kind` is "chat" (a list of role/content messages) or "text" (one string)."""

    __tablename__ = "prompts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    kind: str = Field(default="chat", max_length=10)  # chat | text
    description: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()
    created_by: str = Field(default="", max_length=320)


class PromptVersion(SQLModel, table=True):
    """One immutable version of a prompt: the template (`messages` for chat, `text` for text), the variable
    names found in it, optional model defaults (`config`), and a digest of all of it (the API's ETag)."""

    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_prompt_version"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(sa_column=Column(Integer, ForeignKey("prompts.id"), nullable=False, index=True))
    version: int
    messages: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    variables: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    commit_message: str = Field(default="", max_length=500)
    digest: str = Field(max_length=64)  # sha256 of the canonical template + config
    created_at: datetime = _ts()
    created_by: str = Field(default="", max_length=320)


class PromptLabel(SQLModel, table=True):
    """A movable name for one version of a prompt ("production", "staging", ...)."""

    __tablename__ = "prompt_labels"
    __table_args__ = (Index("ix_prompt_labels_version", "version_id"),)

    prompt_id: int = Field(sa_column=Column(Integer, ForeignKey("prompts.id"), primary_key=True))
    label: str = Field(primary_key=True, max_length=50)
    version_id: int = Field(sa_column=Column(Integer, ForeignKey("prompt_versions.id"), nullable=False))
    updated_at: datetime = _ts()
    updated_by: str = Field(default="", max_length=320)
