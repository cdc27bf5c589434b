"""Opening a console session from a backend route: the httpOnly cookie every sign-in path sets.

Local sign-in, OIDC sign-in and invitation acceptance all end here, so the cookie's flags live in one place.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import RedirectResponse

from llm_console import routes as urls
from llm_console.db.models import User
from llm_console.services.sessions import COOKIE_NAME, start_session
from llm_console.settings import Settings

MAX_FORM_BYTES = 8192
"""The largest sign-in or invitation form a route reads."""


async def signed_in(request: Request, user: User, *, engine: Engine, settings: Settings) -> RedirectResponse:
    """Open a session for `user` and send the browser to the Overview with its httpOnly cookie."""
    token = await asyncio.to_thread(
        start_session,
        engine,
        user,
        ttl_hours=settings.session_ttl_hours,
        client_ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )
    resp = RedirectResponse(urls.OVERVIEW, status_code=303)
    resp.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(settings.session_ttl_hours * 3600),
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return resp
