"""Filters from URL query parameters (the console's deep links and the analytics API share them).

Every value is validated here: a bad one is dropped with a readable message, never passed to SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from llm_console.db.queries.filters import STATUSES, RequestFilters, utc
from llm_console.db.queries.usage import choose_grain

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
RESOLUTIONS = {"minute": "m", "hour": "h", "day": "d"}
MAX_POINTS = 2000
MAX_SEARCH = 200
MAX_TEXT = 300
MAX_CUSTOM_RANGE = timedelta(days=400)
MAX_FUTURE = timedelta(days=1)
MIN_YEAR = 2000
ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/responses",
    "/v1/messages",
)
# The URL names of every filter, in the order links are written.
PARAMS = (
    "range",
    "from",
    "to",
    "res",
    "model",
    "endpoint",
    "deployment",
    "status",
    "key",
    "user",
    "team",
    "stream",
    "min_latency",
    "min_cost",
    "q",
    "end_user",
    "session",
    "tag",
    "prompt",
)
# Page-level parameters carried along unchanged (the logs cursor and opened request, a table page).
PASS_THROUGH = ("cursor", "id", "page")


class Problem(str):
    """One filter value that could not be used: the sentence the console shows (the string itself), the
    parameter it concerns, and `reason`, the sentence without the console's "ignored"/"showing" framing
    (the analytics API refuses the request with it instead of carrying on)."""

    param: str | None
    reason: str

    def __new__(cls, reason: str, param: str | None = None, console_suffix: str = "") -> Problem:
        problem = super().__new__(cls, reason + console_suffix if console_suffix else reason)
        problem.param, problem.reason = param, reason if not console_suffix else reason + "."
        return problem

    @classmethod
    def ignored(cls, name: str, why: str) -> Problem:
        problem = super().__new__(cls, f"Ignored {name}: {why}")
        problem.param, problem.reason = name, f"{name}: {why}"
        return problem


@dataclass(frozen=True, slots=True)
class ParsedFilters:
    filters: RequestFilters
    range_name: str  # 1h | 24h | 7d | 30d | custom
    grain: str  # m | h | d: the chart resolution
    errors: list[Problem] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # the accepted values, to write links with

    def query_string(self, **changes: str | None) -> str:
        """These filters as a URL query, with `changes` applied (None or "" removes a parameter)."""
        merged = dict(self.params)
        for name, value in changes.items():
            if value is None or value == "":
                merged.pop(name, None)
            else:
                merged[name] = value
        ordered = [(k, merged[k]) for k in (*PARAMS, *PASS_THROUGH) if k in merged]
        return urlencode(ordered)


def _int_id(raw: str, name: str, errors: list[Problem]) -> int | None:
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    errors.append(Problem.ignored(name, "expected a numeric id."))
    return None


def _number(raw: str, name: str, errors: list[Problem]) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or len(raw) > 30:
        errors.append(Problem.ignored(name, "expected a non-negative number."))
        return None
    return value


def _when(raw: str, name: str, errors: list[Problem]) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(raw.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        errors.append(Problem.ignored(name, "expected a date and time like 2026-11-30T14:00."))
        return None


def _time_range(p: Mapping[str, str], now: datetime, errors: list[Problem]) -> tuple[str, datetime, datetime]:
    name = p.get("range", "") or DEFAULT_RANGE
    if name == "custom" or ("from" in p and "range" not in p):
        start = _when(p["from"], "from", errors) if p.get("from") else None
        end = _when(p["to"], "to", errors) if p.get("to") else now
        if start is None or end is None:
            if not p.get("from"):
                errors.append(Problem("A custom range needs a start ('from').", "from"))
        elif start >= end:
            errors.append(Problem("The range's start must be before its end."))
        elif end - start > MAX_CUSTOM_RANGE:
            errors.append(Problem("A custom range can span at most 400 days."))
        elif end > now + MAX_FUTURE or start.year < MIN_YEAR:
            errors.append(Problem(f"A custom range must lie between {MIN_YEAR} and tomorrow."))
        else:
            return "custom", start, end
        name = DEFAULT_RANGE
    if name not in RANGES:
        errors.append(Problem(f"Unknown range {name[:20]!r}: use one of {', '.join(RANGES)} or custom.", "range"))
        name = DEFAULT_RANGE
    return name, now - RANGES[name], now


def _grain(raw: str, start: datetime, end: datetime, errors: list[Problem]) -> str:
    auto = choose_grain(start, end)
    span = end - start
    # about 60-400 points: minutes up to six hours, hours up to two weeks, then days
    default = "m" if span <= timedelta(hours=6) else "h" if span <= timedelta(days=14) else "d"
    if not raw:
        return default
    grain = RESOLUTIONS.get(raw)
    if grain is None:
        errors.append(Problem(f"Unknown resolution {raw[:20]!r}: use minute, hour or day.", "res"))
        return default
    step = {"m": 60, "h": 3600, "d": 86400}[grain]
    if (end - start).total_seconds() / step > MAX_POINTS:
        errors.append(
            Problem(f"Too many points at one per {raw} for this range", "res", "; showing a coarser resolution.")
        )
        return "h" if grain == "m" and (end - start).total_seconds() / 3600 <= MAX_POINTS else "d"
    if grain == "m" and auto != "m":
        errors.append(Problem("Per-minute figures cover ranges of two days at most", "res", "; showing hours."))
        return "h"
    return grain


PROMPT_FILTER = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._/-]{0,199}?)(?:@(?P<version>[1-9][0-9]{0,8}))?$")


def _prompt_filter(raw: str, values: dict[str, object], accepted: dict[str, str], errors: list[Problem]) -> None:
    """`prompt=<name>` (every version) or `prompt=<name>@<version>`."""
    match = PROMPT_FILTER.match(raw.strip())
    if match is None:
        errors.append(Problem.ignored("prompt", "expected a prompt name, or name@version such as support-answer@3."))
        return
    values["prompt"] = match.group("name")
    if match.group("version"):
        values["prompt_version"] = int(match.group("version"))
    accepted["prompt"] = raw.strip()


def parse_filters(params: Mapping[str, str], now: datetime | None = None) -> ParsedFilters:
    """Validated filters from query parameters; what could not be used is listed in `errors`."""
    now = utc(now or datetime.now(UTC))
    errors: list[Problem] = []
    p = {k: str(v) for k, v in params.items() if k in PARAMS and v is not None and str(v) != ""}
    for name in [k for k, v in p.items() if not v.isprintable()]:  # NUL and control characters
        errors.append(Problem.ignored(name, "it contains control characters."))
        del p[name]
    range_name, start, end = _time_range(p, now, errors)
    accepted: dict[str, str] = {"range": range_name}
    if range_name == "custom":
        accepted["from"], accepted["to"] = start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")
    values: dict[str, object] = {}
    for name in ("model", "endpoint"):
        if name in p:
            text = p[name][:MAX_TEXT]
            if name == "endpoint" and text not in ENDPOINTS:
                errors.append(Problem(f"Unknown endpoint {text[:40]!r}.", "endpoint"))
                continue
            values["alias" if name == "model" else name] = text
            accepted[name] = text
    for name, attr in (("deployment", "deployment_id"), ("key", "key_id"), ("user", "user_id"), ("team", "team_id")):
        if name in p and (ident := _int_id(p[name], name, errors)) is not None:
            values[attr] = ident
            accepted[name] = str(ident)
    if "status" in p:
        if p["status"] in STATUSES:
            values["status"] = accepted["status"] = p["status"]
        else:
            errors.append(Problem(f"Unknown status {p['status'][:20]!r}: use ok, error or incomplete.", "status"))
    if "stream" in p:
        if p["stream"] in ("true", "false"):
            values["stream"] = p["stream"] == "true"
            accepted["stream"] = p["stream"]
        else:
            errors.append(Problem.ignored("stream", "use true or false."))
    for name, attr in (("min_latency", "min_latency_ms"), ("min_cost", "min_cost_usd")):
        if name in p and (num := _number(p[name], name, errors)) is not None:
            values[attr] = num
            accepted[name] = p[name]
    for name, attr in (("end_user", "end_user"), ("session", "session_id"), ("tag", "tag")):
        if name in p:
            text = p[name].strip()[:200]
            if text and text.isprintable():
                values[attr] = accepted[name] = text
            else:
                errors.append(Problem.ignored(name, "expected printable text."))
    if "prompt" in p:
        _prompt_filter(p["prompt"], values, accepted, errors)
    if "q" in p:
        q = p["q"]
        if len(q) > MAX_SEARCH:
            errors.append(Problem(f"The search was cut to its first {MAX_SEARCH} characters.", "q"))
            q = q[:MAX_SEARCH]
        values["search"] = accepted["q"] = q
    for name in PASS_THROUGH:
        raw = str(params.get(name) or "")
        if raw and len(raw) <= MAX_SEARCH and raw.isprintable():
            accepted[name] = raw
    grain = _grain(p.get("res", ""), start, end, errors)
    if "res" in p and p["res"] in RESOLUTIONS:
        accepted["res"] = p["res"]
    filters = RequestFilters(start=start, end=end, **values)  # type: ignore[arg-type]
    return ParsedFilters(filters, range_name, grain, errors, accepted)
