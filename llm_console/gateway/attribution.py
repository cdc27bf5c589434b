"""Who a call is for: the caller's end user, session and tags, read from headers or the request body.

Headers win over the body: `X-LLMC-User`, `X-LLMC-Session-Id`, `X-LLMC-Tags` (comma-separated). In the body,
the OpenAI `user` field names the end user; `metadata` may carry `session_id`, `tags` (a comma-separated string
or a list) and, as Anthropic's Messages API has it, `user_id`. The body is forwarded untouched.

A header the gateway cannot store is refused (400, `invalid_attribution`): the caller chose it and can fix it.
A body value that is too long is cut to the column's size instead, since the same body works unchanged
against the provider itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_console.gateway.errors import GatewayError, bad_request

USER_HEADER = "x-llmc-user"
SESSION_HEADER = "x-llmc-session-id"
TAGS_HEADER = "x-llmc-tags"

MAX_USER = 200
MAX_SESSION = 200
MAX_TAG = 50
MAX_TAGS = 10


def _printable(value: str) -> bool:
    return value.isprintable()


def _header(headers: Mapping[str, str], name: str, limit: int) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise _refuse(name, f"at most {limit} characters, got {len(value)}")
    if not _printable(value):
        raise _refuse(name, "printable characters only")
    return value


def _refuse(name: str, why: str) -> GatewayError:
    header = "-".join(part.capitalize() for part in name.split("-")).replace("Llmc", "LLMC")
    return bad_request(f"Header {header}: {why}.", param=header, code="invalid_attribution")


def _body_text(value: Any, limit: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = "".join(ch for ch in str(value).strip() if ch.isprintable())
    return text[:limit] or None


def _tags(raw: Any, *, strict: bool) -> str | None:
    """Sorted, distinct, comma-joined; strict (a header) refuses what body values would have trimmed."""
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    tags: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            continue
        tag = item.strip() if isinstance(raw, str) else item.replace(",", " ").strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG or not _printable(tag):
            if strict:
                raise _refuse(TAGS_HEADER, f"each tag printable and at most {MAX_TAG} characters")
            tag = "".join(ch for ch in tag if ch.isprintable())[:MAX_TAG]
        tags.add(tag)
    if len(tags) > MAX_TAGS:
        if strict:
            raise _refuse(TAGS_HEADER, f"at most {MAX_TAGS} tags, got {len(tags)}")
        tags = set(sorted(tags)[:MAX_TAGS])
    return ",".join(sorted(tags)) or None


def attribution(headers: Mapping[str, str], data: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(end user, session id, tags) for a call; a bad X-LLMC-* header raises a 400."""
    meta = data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    user = _header(headers, USER_HEADER, MAX_USER)
    if user is None:
        user = _body_text(data.get("user"), MAX_USER) or _body_text(meta.get("user_id"), MAX_USER)
    session = _header(headers, SESSION_HEADER, MAX_SESSION)
    if session is None:
        session = _body_text(meta.get("session_id"), MAX_SESSION)
    raw_tags = headers.get(TAGS_HEADER)
    tags = _tags(raw_tags, strict=True) if raw_tags is not None else _tags(meta.get("tags"), strict=False)
    return user, session, tags
