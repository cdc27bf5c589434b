"""Backend routes that set and clear the httpOnly session cookie (Reflex state never sees the token)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from llm_console import routes as urls
from llm_console.auth.cookies import session_token
from llm_console.services.context import get_context
from llm_console.services.sessions import COOKIE_NAME, end_session, start_session
from llm_console.services.users import authenticate

MAX_FORM_BYTES = 8192


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def login(request: Request) -> Response:
    ctx = get_context()
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return _back(f"{urls.LOGIN}?error=invalid")
    form = await request.form()
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    if not email or not password or len(email) > 320 or len(password) > 1024:
        return _back(f"{urls.LOGIN}?error=invalid")
    user = await asyncio.to_thread(authenticate, ctx.engine, email, password)
    if user is None:
        return _back(f"{urls.LOGIN}?error=invalid&email={quote(email[:320])}")
    token = await asyncio.to_thread(
        start_session,
        ctx.engine,
        user,
        ttl_hours=ctx.settings.session_ttl_hours,
        client_ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )
    resp = _back(urls.OVERVIEW)
    resp.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(ctx.settings.session_ttl_hours * 3600),
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return resp


async def logout(request: Request) -> Response:
    ctx = get_context()
    token = session_token(request.headers.get("cookie"))
    await asyncio.to_thread(end_session, ctx.engine, token)
    ctx.sessions.forget(token)
    resp = _back(urls.LOGIN)
    resp.delete_cookie(COOKIE_NAME, path="/")
    return resp


AUTH_ROUTES = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]
