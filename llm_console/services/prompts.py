"""Prompt management: named templates, immutable numbered versions, and movable labels.

Reads are open to every console role. Members and above create prompts, add versions and move labels, except
the "production" label (what applications get by default), which only operators and admins may set, move or
remove. Every write is checked first (readable `PromptAdminError`s) and audited in the same transaction
(target type "prompt"), which is also how every gateway replica learns to drop its cached prompts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import utcnow
from llm_console.db.prompt_tables import Prompt, PromptLabel, PromptVersion
from llm_console.db.queries.logs import like_pattern
from llm_console.prompts.store import LATEST, P, totals, utc
from llm_console.prompts.template import (
    PromptError,
    Template,
    check_config,
    check_label,
    check_name,
    digest,
    parse_template,
)
from llm_console.services.audit import record
from llm_console.services.config_bus import announce

PRODUCTION = "production"
WRITE_ROLE = "member"
PRODUCTION_ROLE = "operator"
MAX_DESCRIPTION = 1000
MAX_COMMIT_MESSAGE = 500
MAX_LABELS = 20
MAX_PAGE_SIZE = 200
ATTEMPTS = 8  # a version number or a label taken by a concurrent writer: read again and retry

T = TypeVar("T")


class PromptAdminError(ValueError):
    """A readable reason a prompt could not be read or changed; `param` names the field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class PromptPermissionError(PromptAdminError):
    """The caller's role may not make this change."""


@dataclass(frozen=True)
class PromptSummary:
    id: int
    name: str
    kind: str
    description: str
    latest_version: int
    versions: int
    labels: dict[str, int]  # label -> version number
    updated_at: datetime  # the newest version or label move


@dataclass(frozen=True)
class VersionView:
    id: int
    prompt_id: int
    name: str
    version: int
    kind: str
    messages: list[dict[str, str]] | None
    text: str | None
    variables: list[str]
    config: dict[str, Any]
    commit_message: str
    digest: str
    created_at: datetime
    created_by: str
    labels: list[str]  # sorted; "latest" included when this is the newest version


def _may_write(role: str, labels: Sequence[str] = ()) -> None:
    if not has_role_name(role, WRITE_ROLE):
        raise PromptPermissionError("Only members, operators and admins can change prompts.")
    if PRODUCTION in labels and not has_role_name(role, PRODUCTION_ROLE):
        raise PromptPermissionError("Only operators and admins can set, move or remove the 'production' label.")


def _checked(check: Callable[..., T], *args: Any) -> T:
    try:
        return check(*args)
    except PromptError as exc:
        raise PromptAdminError(exc.message, exc.param) from None


def _labels(labels: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(_checked(check_label, label) for label in labels))
    if len(out) > MAX_LABELS:
        raise PromptAdminError(f"At most {MAX_LABELS} labels at once.", "labels")
    return out


def _text(value: str | None, limit: int, what: str, param: str) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise PromptAdminError(f"The {what} has at most {limit} characters.", param)
    return text


def _content(kind: str, messages: Any, text: Any, config: Any) -> tuple[Template, dict[str, Any], str]:
    template = _checked(parse_template, kind, messages, text)
    cfg = _checked(check_config, config)
    return template, cfg, digest(template, cfg)


def _retrying(write: Callable[[], T]) -> T:
    """Run `write` (one transaction) again when a concurrent writer took the same version number or label."""
    for attempt in range(ATTEMPTS):
        try:
            return write()
        except IntegrityError:
            pass
        except OperationalError as exc:  # SQLite: a writer whose snapshot went stale is refused, not queued
            if "locked" not in str(exc.orig).lower():
                raise
        time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
    raise PromptAdminError("Someone else changed this prompt at the same moment; try again.")


def _prompt(s: Session, name: str) -> Prompt:
    prompt = s.exec(select(Prompt).where(Prompt.name == name)).first()
    if prompt is None:
        raise PromptAdminError(f"No prompt is named {name[:200]!r}.", "name")
    return prompt


def _version(s: Session, prompt_id: int, version: int) -> PromptVersion | None:
    query = select(PromptVersion).where(PromptVersion.prompt_id == prompt_id, PromptVersion.version == version)
    return s.exec(query).first()


def _put_label(s: Session, prompt: Prompt, label: str, row: PromptVersion, actor: str) -> int | None:
    """Point `label` at `row`; the version it named before (None: a new label)."""
    existing = s.get(PromptLabel, (prompt.id, label))
    before: int | None = None
    if existing is not None and existing.version_id == row.id:
        return row.version  # already there: nothing to change
    if existing is None:
        assert prompt.id is not None and row.id is not None
        s.add(PromptLabel(prompt_id=prompt.id, label=label, version_id=row.id, updated_by=actor))
    else:
        old = s.get(PromptVersion, existing.version_id)
        before = old.version if old is not None else None
        existing.version_id, existing.updated_at, existing.updated_by = row.id, utcnow(), actor  # type: ignore[assignment]
        s.add(existing)
    return before


def _audit_label(s: Session, actor: str, prompt: Prompt, label: str, before: int | None, after: int | None) -> None:
    action = "prompt.label.remove" if after is None else "prompt.label.set" if before is None else "prompt.label.move"
    record(
        s,
        actor=actor,
        action=action,
        target_type="prompt",
        target_id=prompt.name[:100],
        before=None if before is None else {"name": prompt.name, "label": label, "version": before},
        after=None if after is None else {"name": prompt.name, "label": label, "version": after},
    )


def _view(prompt: Prompt, row: PromptVersion, labels: Sequence[str], newest: bool) -> VersionView:
    assert row.id is not None and prompt.id is not None
    return VersionView(
        id=row.id,
        prompt_id=prompt.id,
        name=prompt.name,
        version=row.version,
        kind=prompt.kind,
        messages=[dict(m) for m in row.messages] if row.messages is not None else None,
        text=row.text,
        variables=list(row.variables or ()),
        config=dict(row.config or {}),
        commit_message=row.commit_message,
        digest=row.digest,
        created_at=utc(row.created_at),
        created_by=row.created_by,
        labels=sorted({*labels, *([LATEST] if newest else [])}),
    )


def _new_version(
    s: Session, prompt: Prompt, number: int, content: tuple[Template, dict[str, Any], str], message: str, actor: str
) -> PromptVersion:
    template, cfg, dig = content
    as_json = template.as_json()
    row = PromptVersion(
        prompt_id=prompt.id,  # type: ignore[arg-type]
        version=number,
        messages=as_json if isinstance(as_json, list) else None,
        text=as_json if isinstance(as_json, str) else None,
        variables=template.variables(),
        config=cfg,
        commit_message=message,
        digest=dig,
        created_by=actor,
    )
    s.add(row)
    s.flush()  # the unique (prompt, version) constraint decides between concurrent writers
    return row


def _set_labels(s: Session, prompt: Prompt, row: PromptVersion, labels: Sequence[str], actor: str) -> None:
    for label in labels:
        before = _put_label(s, prompt, label, row, actor)
        if before != row.version:
            _audit_label(s, actor, prompt, label, before, row.version)
    s.flush()


def create_prompt(
    engine: Engine,
    *,
    role: str,
    actor: str,
    name: str,
    kind: str,
    description: str = "",
    messages: Any = None,
    text: Any = None,
    config: Any = None,
    commit_message: str = "",
    labels: Sequence[str] = (),
) -> VersionView:
    """A new prompt and its version 1 (with `labels` on it)."""
    _may_write(role)
    name = _checked(check_name, name)
    wanted = _labels(labels)
    _may_write(role, wanted)
    content = _content(kind, messages, text, config)
    about = _text(description, MAX_DESCRIPTION, "description", "description")
    message = _text(commit_message, MAX_COMMIT_MESSAGE, "commit message", "commit_message")
    with session(engine) as s:
        prompt = Prompt(name=name, kind=kind, description=about, created_by=actor)
        s.add(prompt)
        try:
            s.flush()
        except IntegrityError:
            raise PromptAdminError(f"A prompt named {name!r} already exists.", "name") from None
        row = _new_version(s, prompt, 1, content, message, actor)
        record(
            s,
            actor=actor,
            action="prompt.create",
            target_type="prompt",
            target_id=name[:100],
            after={"name": name, "kind": kind, "version": 1, "digest": row.digest, "labels": wanted},
        )
        _set_labels(s, prompt, row, wanted, actor)
        s.commit()
    announce(what="prompts")  # every replica drops its prompt cache now, not at its next refresh
    return _view(prompt, row, wanted, newest=True)


def add_version(
    engine: Engine,
    *,
    role: str,
    actor: str,
    name: str,
    messages: Any = None,
    text: Any = None,
    config: Any = None,
    commit_message: str = "",
    labels: Sequence[str] = (),
) -> VersionView:
    """The next version of prompt `name`; refused when it is the same as the newest one."""
    _may_write(role)
    wanted = _labels(labels)
    _may_write(role, wanted)
    message = _text(commit_message, MAX_COMMIT_MESSAGE, "commit message", "commit_message")

    def write() -> VersionView:
        with session(engine) as s:
            prompt = _prompt(s, name)
            content = _content(prompt.kind, messages, text, config)
            query = select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
            newest = s.exec(query.order_by(col(PromptVersion.version).desc()).limit(1)).first()
            number = newest.version + 1 if newest is not None else 1
            if newest is not None and newest.digest == content[2]:
                raise PromptAdminError(f"Nothing changed: this is the same as version {newest.version}.")
            row = _new_version(s, prompt, number, content, message, actor)
            record(
                s,
                actor=actor,
                action="prompt.version",
                target_type="prompt",
                target_id=prompt.name[:100],
                after={"name": prompt.name, "version": number, "digest": row.digest, "labels": wanted},
            )
            _set_labels(s, prompt, row, wanted, actor)
            s.commit()
            return _view(prompt, row, wanted, newest=True)

    view = _retrying(write)
    announce(what="prompts")
    return view


def set_label(engine: Engine, *, role: str, actor: str, name: str, label: str, version: int) -> None:
    """Create `label` on, or move it to, version `version` of prompt `name`."""
    _may_write(role)
    label = _checked(check_label, label)
    _may_write(role, [label])
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PromptAdminError("A version is a whole number from 1.", "version")

    def write() -> None:
        with session(engine) as s:
            prompt = _prompt(s, name)
            assert prompt.id is not None
            row = _version(s, prompt.id, version)
            if row is None:
                raise PromptAdminError(f"The prompt {prompt.name!r} has no version {version}.", "version")
            _set_labels(s, prompt, row, [label], actor)
            s.commit()

    _retrying(write)
    announce(what="prompts")


def remove_label(engine: Engine, *, role: str, actor: str, name: str, label: str) -> None:
    """Take `label` off prompt `name` (requests asking for it then get a 404)."""
    _may_write(role)
    label = _checked(check_label, label)
    _may_write(role, [label])
    with session(engine) as s:
        prompt = _prompt(s, name)
        existing = s.get(PromptLabel, (prompt.id, label))
        if existing is None:
            raise PromptAdminError(f"The prompt {prompt.name!r} has no label {label!r}.", "label")
        old = s.get(PromptVersion, existing.version_id)
        s.delete(existing)
        _audit_label(s, actor, prompt, label, old.version if old is not None else None, None)
        s.commit()
    announce(what="prompts")


def _summaries(conn: Connection, prompts: Sequence[Any]) -> list[PromptSummary]:
    found = totals(conn, [p.id for p in prompts])
    out = []
    for p in prompts:
        t = found[p.id]
        changed = t.changed_at or utc(p.created_at)
        out.append(PromptSummary(p.id, p.name, p.kind, p.description, t.latest, t.versions, t.labels, changed))
    return out


def list_prompts(
    engine: Engine, *, search: str = "", page: int = 1, page_size: int = 50
) -> tuple[list[PromptSummary], int]:
    """One page of prompts by name (`search` matches anywhere in the name), and how many match in all."""
    page, page_size = max(1, page), min(max(1, page_size), MAX_PAGE_SIZE)
    search = (search or "").strip()[:200]
    where = P.c.name.ilike(like_pattern(search), escape="\\") if search else None
    if "\x00" in search:
        return [], 0  # no name holds one (and PostgreSQL refuses it in a query)
    count = core_select(func.count()).select_from(P)
    rows = core_select(P).order_by(P.c.name).limit(page_size).offset((page - 1) * page_size)
    if where is not None:
        count, rows = count.where(where), rows.where(where)
    with engine.connect() as conn:
        total = conn.execute(count).scalar() or 0
        return _summaries(conn, conn.execute(rows).all()), total


def get_prompt(engine: Engine, name: str) -> tuple[PromptSummary, list[VersionView]]:
    """A prompt and all its versions, newest first."""
    with session(engine) as s:
        prompt = _prompt(s, name)
        query = select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
        rows = list(s.exec(query.order_by(col(PromptVersion.version).desc())))
        by_version: dict[int, list[str]] = {}
        for label in s.exec(select(PromptLabel).where(PromptLabel.prompt_id == prompt.id)):
            by_version.setdefault(label.version_id, []).append(label.label)
        summary = _summaries(s.connection(), [prompt])[0]
    views = [_view(prompt, r, by_version.get(r.id or 0, []), newest=i == 0) for i, r in enumerate(rows)]
    return summary, views
