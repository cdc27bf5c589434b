"""Display values for the Prompts pages: list and version rows, per-version figures, one version's content, a
line diff of two versions (difflib), and the editor's text read back as a template, settings and labels.

Every value is plain text: templates are shown as typed (never as markup) and the diff marks each changed
line with a sign and a word as well as a colour.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from llm_console import routes
from llm_console.presenters.common import count, money, ms
from llm_console.prompts.template import VARIABLE, PromptError
from llm_console.services.prompt_stats import PromptListPage, PromptPage, VersionStats
from llm_console.services.prompts import VersionView

NONE = "—"
PRODUCTION = "production"
LATEST = "latest"
SUGGESTED_LABELS = (PRODUCTION, "staging")
MAX_DIFF_ROWS = 2000  # a diff longer than this is cut (the page stays responsive)
CONTEXT_LINES = 3


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else NONE


def detail_href(name: str, range_name: str = "") -> str:
    params = {"name": name, **({"range": range_name} if range_name else {})}
    return f"{routes.PROMPT_DETAIL}?{urlencode(params)}"


def labels_text(labels: Mapping[str, int]) -> str:
    """ "staging → v3, beta → v1": every label but production (which the list shows as a badge)."""
    rest = sorted((name, v) for name, v in labels.items() if name != PRODUCTION)
    return ", ".join(f"{name} → v{v}" for name, v in rest) or ""


def list_rows(data: PromptListPage) -> list[dict[str, str]]:
    return [
        {
            "name": p.name,
            "href": detail_href(p.name),
            "kind": p.kind,
            "description": p.description,
            "latest": f"v{p.latest_version}",
            "versions": f"{p.versions:,}",
            "production": f"v{p.labels[PRODUCTION]}" if PRODUCTION in p.labels else "",
            "labels": labels_text(p.labels),
            "updated": when(p.updated_at),
            "calls": f"{data.calls_7d.get(p.id, 0):,}",
        }
        for p in data.rows
    ]


def count_text(data: PromptListPage) -> str:
    noun = "prompt" if data.total == 1 else "prompts"
    return f"Page {data.page} of {data.pages} · {data.total:,} {noun}"


def version_labels(v: VersionView) -> str:
    return ", ".join(v.labels)


def version_rows(versions: Sequence[VersionView]) -> list[dict[str, str]]:
    return [
        {
            "version": str(v.version),
            "title": f"v{v.version}",
            "labels": version_labels(v),
            "production": "yes" if PRODUCTION in v.labels else "",
            "author": v.created_by or NONE,
            "created": when(v.created_at),
            "message": v.commit_message or NONE,
        }
        for v in versions
    ]


def _percent(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else NONE


def _mean(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def score_text(stats: VersionStats) -> str:
    """Each numeric score's mean and count ("accuracy 0.8 (n=4) · thumbs 1 (n=2)"), or a dash."""
    parts = [f"{s.name} {_mean(s.mean)} (n={s.numeric})" for s in stats.scores if s.numeric]
    return " · ".join(parts) or NONE


def calls_href(name: str, version: int, start: datetime, end: datetime) -> str:
    """The Logs page showing this version's calls over the same range."""
    span = {"from": start.isoformat(timespec="seconds"), "to": end.isoformat(timespec="seconds")}
    return f"{routes.LOGS}?{urlencode({**span, 'prompt': f'{name}@{version}'})}"


def figure_rows(
    versions: Sequence[VersionView],
    stats: Mapping[int, VersionStats],
    span: tuple[datetime, datetime] | None = None,
) -> list[dict[str, str]]:
    """One row of figures per version, newest first, each named with its labels (and, given the range, a
    link to its calls on the Logs page)."""
    out = []
    for v in versions:
        s = stats.get(v.id) or VersionStats(v.id)
        t = s.totals
        called = t.requests > 0
        main = s.main_score
        out.append(
            {
                "version": str(v.version),
                "title": f"v{v.version}",
                "labels": version_labels(v),
                "calls": f"{t.requests:,}",
                "errors": f"{t.errors:,}",
                "error_rate": _percent(t.errors, t.requests),
                "latency": ms(t.avg_latency_ms) if called else NONE,
                "p50": ms(t.latency_p(0.5)) if called else NONE,
                "p95": ms(t.latency_p(0.95)) if called else NONE,
                "tokens_in": count(t.prompt_tokens),
                "tokens_out": count(t.completion_tokens),
                "cost": money(t.cost_usd),
                "cost_per_call": money(t.cost_per_request) if called else NONE,
                "feedback": f"{s.feedback:,}",
                "score": f"{_mean(main.mean)} {main.name}" if main is not None else NONE,
                "scores": score_text(s),
                "calls_href": calls_href(v.name, v.version, *span) if span else "",
            }
        )
    return out


def content(v: VersionView) -> dict[str, Any]:
    """What the page keeps of one version: its template and settings (to view, diff and prefill from)."""
    return {
        "version": str(v.version),
        "title": f"Version {v.version}" + (f" ({version_labels(v)})" if v.labels else ""),
        "meta": f"by {v.created_by or 'unknown'} on {when(v.created_at)}",
        "message": v.commit_message,
        "kind": v.kind,
        "messages": [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in v.messages or []],
        "text": v.text or "",
        "config": dict(v.config),
        "variables": list(v.variables),
    }


def config_json(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), indent=2, sort_keys=True, ensure_ascii=False) if config else ""


def template_lines(c: Mapping[str, Any]) -> list[str]:
    """A version as lines: each message under a "[role]" line (or the text), then "[model settings]" JSON."""
    lines: list[str] = []
    if c.get("kind") == "chat":
        for m in c.get("messages") or []:
            lines.append(f"[{m['role']}]")
            lines.extend(str(m["content"]).splitlines() or [""])
    else:
        lines.extend(str(c.get("text") or "").splitlines())
    if c.get("config"):
        lines.append("[model settings]")
        lines.extend(config_json(c["config"]).splitlines())
    return lines


def _row(kind: str, text: str, old: int | None = None, new: int | None = None) -> dict[str, str]:
    sign, word = {"added": ("+", "added"), "removed": ("-", "removed"), "same": (" ", "")}.get(kind, ("", ""))
    return {
        "kind": kind,
        "sign": sign,
        "word": word,
        "text": text,
        "old": "" if old is None else str(old),
        "new": "" if new is None else str(new),
    }


@dataclass(slots=True)
class Diff:
    rows: list[dict[str, str]] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    cut: bool = False

    @property
    def summary(self) -> str:
        if not self.added and not self.removed:
            return "No differences."
        text = f"{self.added} line{'s' if self.added != 1 else ''} added, "
        text += f"{self.removed} line{'s' if self.removed != 1 else ''} removed."
        return text + (f" Only the first {MAX_DIFF_ROWS:,} lines of the diff are shown." if self.cut else "")


def diff_lines(old: Sequence[str], new: Sequence[str], context: int = CONTEXT_LINES) -> Diff:
    """A line diff: hunks of changed lines with `context` unchanged lines around them, numbered on both sides."""
    out = Diff()
    if list(old) == list(new):
        return out
    matcher = difflib.SequenceMatcher(a=list(old), b=list(new), autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        _, i1, _, j1, _ = group[0]
        _, _, i2, _, j2 = group[-1]
        out.rows.append(_row("hunk", f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"))
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.rows.extend(_row("same", old[a1 + k], a1 + k + 1, b1 + k + 1) for k in range(a2 - a1))
                continue
            out.rows.extend(_row("removed", old[k], old=k + 1) for k in range(a1, a2))
            out.rows.extend(_row("added", new[k], new=k + 1) for k in range(b1, b2))
            out.removed += a2 - a1
            out.added += b2 - b1
    if len(out.rows) > MAX_DIFF_ROWS:
        out.rows, out.cut = out.rows[:MAX_DIFF_ROWS], True
    return out


def diff_versions(contents: Mapping[str, Mapping[str, Any]], old: str, new: str) -> Diff:
    """The diff from version `old` to version `new` (numbers as text); empty when either is unknown."""
    if old not in contents or new not in contents:
        return Diff()
    return diff_lines(template_lines(contents[old]), template_lines(contents[new]))


def version_options(versions: Sequence[VersionView]) -> list[dict[str, str]]:
    return [
        {"value": str(v.version), "label": f"v{v.version}" + (f" · {version_labels(v)}" if v.labels else "")}
        for v in versions
    ]


@dataclass(slots=True)
class DetailView:
    """The detail page's values, from `load_prompt_page`."""

    found: bool = False
    error: str = ""
    title: str = ""
    kind: str = ""
    description: str = ""
    labels: list[dict[str, str]] = field(default_factory=list)
    versions: list[dict[str, str]] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    options: list[dict[str, str]] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: str = ""
    as_of: str = ""


def detail_view(page: PromptPage) -> DetailView:
    window = f"{when(page.start)} to {when(page.end)} (whole hours)"
    as_of = page.as_of.strftime("%H:%M:%S UTC")
    if page.summary is None:
        return DetailView(error=page.error, title=page.name, window=window, as_of=as_of)
    p = page.summary
    labels = [{"label": name, "version": f"v{v}"} for name, v in sorted(p.labels.items())]
    return DetailView(
        found=True,
        title=p.name,
        kind=p.kind,
        description=p.description,
        labels=labels,
        versions=version_rows(page.versions),
        figures=figure_rows(page.versions, page.stats, (page.start, page.end)),
        options=version_options(page.versions),
        label_names=sorted({*SUGGESTED_LABELS, *p.labels}),
        contents={str(v.version): content(v) for v in page.versions},
        window=window,
        as_of=as_of,
    )


def detected_variables(kind: str, messages: Sequence[Mapping[str, str]], text: str) -> list[str]:
    """The `{{ name }}` variables of what is being typed, in order of first appearance."""
    parts = [str(m.get("content", "")) for m in messages] if kind == "chat" else [text]
    seen: dict[str, None] = {}
    for part in parts:
        for match in VARIABLE.finditer(part):
            seen.setdefault(match.group(1), None)
    return list(seen)


def parse_config(raw: str) -> Any:
    """The model-settings box as JSON (None when empty); the service checks the fields."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PromptError(
            f"The model settings are not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).", "config"
        ) from None


def parse_labels(raw: str) -> list[str]:
    """Labels typed as "staging, production" (commas or spaces), each once, in order."""
    seen: dict[str, None] = {}
    for part in re.split(r"[,\s]+", raw.strip()):
        if part:
            seen.setdefault(part, None)
    return list(seen)


def form_messages(form: Mapping[str, Any], fallback: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The chat messages as submitted (`role_<i>`, `content_<i>`), else as the editor last sent them."""
    out = []
    for i, m in enumerate(fallback):
        role = form.get(f"role_{i}")
        text = form.get(f"content_{i}")
        out.append(
            {
                "role": str(role) if role else str(m.get("role", "")),
                "content": str(text) if text is not None else str(m.get("content", "")),
            }
        )
    return out
