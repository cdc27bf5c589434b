"""The read side of prompt management: one version of a prompt, resolved by name and label or version, and
the gateway's cache of those answers.

A resolved prompt is immutable (versions never change); what can change is which version a label names and
which labels point at a version, so the cache is dropped whenever the configuration changes (every prompt
write is audited, and the gateway's refresh loop watches the audit trail) and entries expire after `ttl`
anyway. Hits never touch the database; misses are looked up in a worker thread, one lookup per key at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from llm_console.db.prompt_tables import Prompt, PromptLabel, PromptVersion
from llm_console.prompts.template import VARIABLE, Template

LATEST = "latest"
DEFAULT_LABEL = "production"
CACHE_TTL_S = 60.0  # a safety net: a change is normally noticed within LLMC_ROUTE_REFRESH_INTERVAL_S
NEGATIVE_TTL_S = 2.0
MAX_ENTRIES = 10_000

P = Prompt.__table__  # type: ignore[attr-defined]
V = PromptVersion.__table__  # type: ignore[attr-defined]
L = PromptLabel.__table__  # type: ignore[attr-defined]


class PromptNotFound(LookupError):
    """No prompt has this name."""


class VersionNotFound(LookupError):
    """The prompt exists, but not the label or version asked for."""


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    """One version of a prompt as the gateway uses it; `labels` are those pointing at it ("latest" included
    when it is the newest), and `etag` changes when the content or that label set does."""

    prompt_id: int
    name: str
    kind: str
    version_id: int
    version: int
    template: Template
    variables: tuple[str, ...]
    config: Mapping[str, Any]
    commit_message: str
    digest: str
    labels: tuple[str, ...]
    created_at: datetime
    etag: str
    uses: Mapping[str, int]  # how often each variable occurs (what a value's size is multiplied by)
    fixed_chars: int  # the template's characters outside its placeholders

    def rendered_chars(self, values: Mapping[str, str]) -> int:
        """The size of the rendering with these values (in characters), known before rendering it."""
        return self.fixed_chars + sum(n * len(values.get(name, "")) for name, n in self.uses.items())


def etag_for(version_id: int, digest: str, labels: tuple[str, ...]) -> str:
    """A strong ETag: the version, its content digest and the labels on it (a label move changes the answer)."""
    raw = f"{version_id}:{digest}:{','.join(sorted(labels))}".encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they are stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def template_of(kind: str, messages: Any, text: Any) -> Template:
    """A stored version's template (validated when it was written)."""
    if kind == "text":
        return Template("text", text=text or "")
    return Template("chat", tuple((m["role"], m["content"]) for m in messages or ()))


def _version_row(conn: Connection, prompt_id: int, label: str | None, version: int | None) -> Any:
    query = select(V).where(V.c.prompt_id == prompt_id)
    if version is not None:
        query = query.where(V.c.version == version)
    elif label == LATEST:
        query = query.order_by(V.c.version.desc()).limit(1)
    else:
        query = query.join(L, (L.c.version_id == V.c.id) & (L.c.prompt_id == prompt_id)).where(L.c.label == label)
    return conn.execute(query).first()


def resolve(engine: Engine, name: str, label: str | None = None, version: int | None = None) -> ResolvedPrompt:
    """The version of prompt `name` that `version`, else `label` (default "production") names.

    Raises PromptNotFound or VersionNotFound."""
    label = label or DEFAULT_LABEL
    with engine.connect() as conn:
        prompt = conn.execute(select(P.c.id, P.c.kind).where(P.c.name == name)).first()
        if prompt is None:
            raise PromptNotFound(name)
        row = _version_row(conn, prompt.id, label, version)
        if row is None:
            raise VersionNotFound(name)
        labels = list(conn.execute(select(L.c.label).where(L.c.version_id == row.id)).scalars())
        newest = conn.execute(select(func.max(V.c.version)).where(V.c.prompt_id == prompt.id)).scalar()
    if row.version == newest:
        labels.append(LATEST)
    ordered = tuple(sorted(labels))
    template = template_of(prompt.kind, row.messages, row.text)
    uses: dict[str, int] = {}
    fixed = 0  # the template's characters outside its placeholders
    for part in template.parts:
        fixed += len(part)
        for match in VARIABLE.finditer(part):
            uses[match.group(1)] = uses.get(match.group(1), 0) + 1
            fixed -= len(match.group(0))
    return ResolvedPrompt(
        prompt_id=prompt.id,
        name=name,
        kind=prompt.kind,
        version_id=row.id,
        version=row.version,
        template=template,
        variables=tuple(row.variables or ()),
        config=MappingProxyType(dict(row.config or {})),
        commit_message=row.commit_message,
        digest=row.digest,
        labels=ordered,
        created_at=utc(row.created_at),
        etag=etag_for(row.id, row.digest, ordered),
        uses=MappingProxyType(uses),
        fixed_chars=fixed,
    )


@dataclass(frozen=True, slots=True)
class Totals:
    """What a prompt's list row shows: its newest version, how many it has, its labels, its last change."""

    latest: int
    versions: int
    labels: dict[str, int]  # label -> version number
    changed_at: datetime | None  # the newest version or label move


def totals(conn: Connection, prompt_ids: Sequence[int]) -> dict[int, Totals]:
    """Totals of these prompts (two grouped queries, whatever their number)."""
    if not prompt_ids:
        return {}
    stats = conn.execute(
        select(V.c.prompt_id, func.max(V.c.version), func.count(), func.max(V.c.created_at))
        .where(V.c.prompt_id.in_(prompt_ids))
        .group_by(V.c.prompt_id)
    ).all()
    labels: dict[int, dict[str, int]] = {i: {} for i in prompt_ids}
    changed: dict[int, datetime] = {pid: utc(at) for pid, _, _, at in stats}
    query = select(L.c.prompt_id, L.c.label, V.c.version, L.c.updated_at).join(V, V.c.id == L.c.version_id)
    for pid, label, version, at in conn.execute(query.where(L.c.prompt_id.in_(prompt_ids)).order_by(L.c.label)):
        labels[pid][label] = version
        changed[pid] = max(changed.get(pid, utc(at)), utc(at))
    counts = {pid: (latest, n) for pid, latest, n, _ in stats}
    return {
        pid: Totals(*counts.get(pid, (0, 0)), labels=labels[pid], changed_at=changed.get(pid)) for pid in prompt_ids
    }


CacheKey = tuple[str, str | None, int | None]
Outcome = ResolvedPrompt | type[LookupError]
Lookup = Callable[[str, str | None, int | None], ResolvedPrompt]


class PromptCache:
    """(name, label, version) -> the resolved version, or the remembered miss, for `ttl` seconds."""

    def __init__(self, lookup: Lookup, ttl: float = CACHE_TTL_S) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._entries: dict[CacheKey, tuple[float, Outcome]] = {}
        self._pending: dict[CacheKey, asyncio.Future[Outcome]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget everything; a lookup already running when this is called is not kept either."""
        self._generation += 1
        self._entries.clear()
        self._pending.clear()

    def _find(self, key: CacheKey) -> Outcome:
        try:
            return self._lookup(*key)
        except (PromptNotFound, VersionNotFound) as exc:
            return type(exc)

    async def get(self, name: str, label: str | None = None, version: int | None = None) -> ResolvedPrompt:
        """The resolved version; raises PromptNotFound or VersionNotFound (lookup failures propagate)."""
        key: CacheKey = (name, None if version is not None else (label or DEFAULT_LABEL), version)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return _unwrap(hit[1], name)
        pending = self._pending.get(key)
        if pending is None:  # else a lookup for this key is already running: share it
            pending = asyncio.ensure_future(asyncio.to_thread(self._find, key))
            self._pending[key] = pending
            generation = self._generation
            try:
                outcome = await asyncio.shield(pending)
            finally:
                if self._pending.get(key) is pending:
                    del self._pending[key]
            if self._ttl > 0 and generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                ttl = self._ttl if isinstance(outcome, ResolvedPrompt) else min(self._ttl, NEGATIVE_TTL_S)
                self._entries[key] = (now + ttl, outcome)
        else:
            outcome = await asyncio.shield(pending)
        return _unwrap(outcome, name)


def _unwrap(outcome: Outcome, name: str) -> ResolvedPrompt:
    if isinstance(outcome, ResolvedPrompt):
        return outcome
    raise outcome(name)
