"""Feedback scores given to a request or a session: checked, tied to what they score, stored, read back.

A score is numeric (`value`, any finite number: 0..1, 1..5, thumbs as 1/0) or categorical (`category`, a
label such as "correct"), with an optional comment. Given through the gateway (`POST /v1/feedback`, with a
virtual key) it must score the caller's own traffic: a request made with the same key, by the same key
owner, or within the same team; a session, when at least one of its requests is. Given from the console,
by a signed-in user who can see the request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sqlmodel import select as select_rows

from llm_console.db.models import FeedbackScore, RequestLog

MAX_NAME = 100
MAX_CATEGORY = 100
MAX_COMMENT = 2000
MAX_ID = 200


class FeedbackError(ValueError):
    """Bad feedback: `param` names the field, `code` is the machine-readable reason."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_feedback") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class NotFound(FeedbackError):
    pass


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    request_id: str | None
    session_id: str | None
    name: str
    value: float | None
    category: str | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose traffic may be scored: a key (and its owner and team), or a console user (any request)."""

    key_id: int | None = None
    user_id: int | None = None
    team_id: int | None = None
    console_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class ScoreView:
    id: int
    created_at: datetime
    request_id: str | None
    session_id: str | None
    name: str
    value: float | None
    category: str | None
    comment: str | None
    source: str
    alias: str

    @property
    def shown(self) -> str:
        """The score as a reader wants it: "0.8", "4", or the category."""
        if self.value is None:
            return self.category or ""
        return f"{self.value:g}"

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "feedback",
            "created_at": int(self.created_at.timestamp()),
            "request_id": self.request_id,
            "session_id": self.session_id,
            "name": self.name,
            "value": self.value,
            "category": self.category,
            "comment": self.comment,
            "source": self.source,
        }


def _text(data: Mapping[str, Any], field: str, limit: int, *, required: bool = False) -> str | None:
    raw = data.get(field)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise FeedbackError(f"'{field}' is required.", param=field)
        return None
    if not isinstance(raw, str):
        raise FeedbackError(f"'{field}' must be a string.", param=field)
    text = raw.strip()
    if len(text) > limit:
        raise FeedbackError(f"'{field}' must be at most {limit} characters, got {len(text)}.", param=field)
    if field != "comment" and not text.isprintable():
        raise FeedbackError(f"'{field}' must hold printable characters only.", param=field)
    return text


def parse(data: Mapping[str, Any]) -> FeedbackInput:
    """Check a feedback body; `value` may be a number or, for a categorical score, a string."""
    if not isinstance(data, Mapping):
        raise FeedbackError("The body must be a JSON object.")
    unknown = sorted(set(data) - {"request_id", "session_id", "name", "value", "category", "comment"})
    if unknown:
        raise FeedbackError(f"Unknown field '{unknown[0]}'.", param=unknown[0])
    request_id = _text(data, "request_id", 36)
    session_id = _text(data, "session_id", MAX_ID)
    if (request_id is None) == (session_id is None):
        raise FeedbackError("Give exactly one of 'request_id' or 'session_id'.", param="request_id")
    name = _text(data, "name", MAX_NAME, required=True)
    assert name is not None
    raw = data.get("value")
    value: float | None = None
    category = _text(data, "category", MAX_CATEGORY)
    if isinstance(raw, bool):
        raise FeedbackError("'value' must be a number (use 1 or 0 for thumbs up or down).", param="value")
    if isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            raise FeedbackError("'value' must be a finite number.", param="value")
    elif isinstance(raw, str):
        if category is not None:
            raise FeedbackError("Give a numeric 'value' or a 'category', not both.", param="value")
        category = _text(data, "value", MAX_CATEGORY, required=True)
    elif raw is not None:
        raise FeedbackError("'value' must be a number or a category string.", param="value")
    if value is not None and category is not None:
        raise FeedbackError("Give a numeric 'value' or a 'category', not both.", param="value")
    if value is None and category is None:
        raise FeedbackError("Give a numeric 'value' or a 'category'.", param="value")
    comment = _text(data, "comment", MAX_COMMENT)
    return FeedbackInput(request_id, session_id, name, value, category, comment)


def _mine(owner: Owner) -> Any:
    """The requests `owner` may score (a console user: all of them; visibility is checked by the caller)."""
    t = RequestLog.__table__  # type: ignore[attr-defined]
    if owner.console_user_id is not None:
        return None
    clauses = [t.c.key_id == owner.key_id]
    if owner.user_id is not None:
        clauses.append(t.c.user_id == owner.user_id)
    if owner.team_id is not None:
        clauses.append(t.c.team_id == owner.team_id)
    return or_(*clauses)


Scored = tuple[str, int | None, datetime | None, int | None]
"""alias, deployment id, when the scored request was made, the prompt version it was rendered from"""


def find_target(engine: Engine, item: FeedbackInput, owner: Owner) -> Scored | None:
    """(alias, deployment, when, prompt version) of the scored request, or of the session's newest request;
    None when the owner has no such request (yet: rows reach the database a moment after the answer)."""
    t = RequestLog.__table__  # type: ignore[attr-defined]
    query = select(t.c.alias, t.c.deployment_id, t.c.created_at, t.c.prompt_version_id)
    if item.request_id is not None:
        query = query.where(t.c.id == item.request_id)
    else:
        query = query.where(t.c.session_id == item.session_id).order_by(t.c.created_at.desc()).limit(1)
    mine = _mine(owner)
    if mine is not None:
        query = query.where(mine)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return row[0] or "", row[1], row[2], row[3]


def store(engine: Engine, item: FeedbackInput, owner: Owner, found: Scored) -> ScoreView:
    alias, deployment_id, request_at, prompt_version_id = found
    row = FeedbackScore(
        created_at=datetime.now(UTC),
        request_id=item.request_id,
        session_id=item.session_id,
        name=item.name,
        value=item.value,
        category=item.category,
        comment=item.comment,
        source="console" if owner.console_user_id is not None else "api",
        key_id=owner.key_id,
        user_id=owner.console_user_id,
        alias=alias if item.request_id is not None else "",
        deployment_id=deployment_id if item.request_id is not None else None,
        prompt_version_id=prompt_version_id if item.request_id is not None else None,
        request_at=request_at,
    )
    with Session(engine) as s:
        s.add(row)
        s.commit()
        s.refresh(row)
    return _view(row)


def _view(row: FeedbackScore) -> ScoreView:
    assert row.id is not None
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return ScoreView(
        row.id,
        created,
        row.request_id,
        row.session_id,
        row.name,
        row.value,
        row.category,
        row.comment,
        row.source,
        row.alias,
    )


def scores_for(engine: Engine, request_id: str, session_id: str | None, limit: int = 100) -> list[ScoreView]:
    """Scores of a request and of its session, newest first."""
    t = FeedbackScore.__table__  # type: ignore[attr-defined]
    cond = t.c.request_id == request_id
    if session_id:
        cond = or_(cond, t.c.session_id == session_id)
    with Session(engine) as s:
        rows = s.exec(select_rows(FeedbackScore).where(cond).order_by(t.c.created_at.desc()).limit(limit)).all()
    return [_view(r) for r in rows]
