"""Reading the session cookie out of a raw Cookie header."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from llm_console.services.sessions import COOKIE_NAME


def session_token(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None
