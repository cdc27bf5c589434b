"""The typed filters every dashboard query takes; parsing them from URLs lives in services/filters.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

STATUSES = ("ok", "error", "incomplete")


def utc(value: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive UTC; SQLAlchemy binds wall time, so everything is UTC here)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RequestFilters:
    """What the logs table, the exports and the analytics API filter the request log by.

    `start` is inclusive, `end` exclusive. None means "any".
    """

    start: datetime
    end: datetime
    alias: str | None = None
    endpoint: str | None = None
    deployment_id: int | None = None
    status: str | None = None
    key_id: int | None = None
    user_id: int | None = None
    team_id: int | None = None
    stream: bool | None = None
    min_latency_ms: float | None = None
    min_cost_usd: float | None = None
    search: str | None = None
    end_user: str | None = None  # the caller's own end user (X-LLMC-User / OpenAI `user`)
    session_id: str | None = None
    tag: str | None = None  # one tag, matched whole
    prompt: str | None = None  # calls rendered from this prompt (by name) ...
    prompt_version: int | None = None  # ... and, when set, from this version of it only
    # Team scope of a member or viewer: only rows of these teams, or their own (`visible_user_id`).
    # None: no scope (operators and admins see every row).
    visible_team_ids: frozenset[int] | None = None
    visible_user_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))

    def dimensions(self) -> list[tuple[str, str]]:
        """The rollup (dimension, value) pairs these filters narrow to; aggregates can honour one at most."""
        out: list[tuple[str, str]] = []
        if self.alias is not None:
            out.append(("alias", self.alias))
        if self.endpoint is not None:
            out.append(("endpoint", self.endpoint))
        if self.deployment_id is not None:
            out.append(("deployment", str(self.deployment_id)))
        if self.key_id is not None:
            out.append(("key", str(self.key_id)))
        if self.user_id is not None:
            out.append(("user", str(self.user_id)))
        if self.team_id is not None:
            out.append(("team", str(self.team_id)))
        if self.stream is not None:
            out.append(("stream", "1" if self.stream else "0"))
        return out

    def row_only(self) -> list[str]:
        """Filters that only the raw request log can apply (rollups have no such column)."""
        names = []
        if self.status is not None:
            names.append("status")
        if self.min_latency_ms is not None:
            names.append("min_latency_ms")
        if self.min_cost_usd is not None:
            names.append("min_cost_usd")
        if self.search:
            names.append("search")
        names += [n for n in ("end_user", "session_id", "tag", "prompt") if getattr(self, n) is not None]
        if self.visible_team_ids is not None:
            names.append("scope")
        return names
