"""POST /auth/invite/accept: the invite page's form creates the account, then signs it in (httpOnly cookie).

A plain form post, like sign-in, so the backend can set the cookie; every refusal goes back to the invite
page with a short error code (services.invitations.MESSAGES) and never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from llm_console import routes as urls
from llm_console.auth.session_cookie import MAX_FORM_BYTES, signed_in
from llm_console.services.context import get_context
from llm_console.services.invitations import MAX_TOKEN, InvitationError, accept
from llm_console.services.users import UserError

log = logging.getLogger("llm_console.auth")


def _back(token: str, code: str) -> RedirectResponse:
    token = token if len(token) <= MAX_TOKEN and token.isascii() and token.isprintable() else ""
    return RedirectResponse(f"{urls.INVITE}?token={quote(token, safe='')}&error={code}", status_code=303)


async def _form(request: Request) -> dict[str, str] | None:
    """The url-encoded form, read up to MAX_FORM_BYTES whatever Content-Length claims; None when unusable."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        return None
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
    except ClientDisconnect:
        return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), max_num_fields=10))
    except (UnicodeDecodeError, ValueError):
        return None


async def accept_invite(request: Request) -> Response:
    ctx = get_context()
    form = await _form(request)
    if form is None:
        return _back("", "invalid")
    token, name, password = form.get("token", ""), form.get("name", ""), form.get("password", "")
    try:
        user = await asyncio.to_thread(accept, ctx.engine, token=token, name=name, password=password)
    except InvitationError as exc:
        return _back(token, exc.code)
    except UserError:
        return _back(token, "invalid")
    log.info("invitation accepted: new user %s", user.id)
    return await signed_in(request, user, engine=ctx.engine, settings=ctx.settings)


INVITE_ROUTES = [Route("/auth/invite/accept", accept_invite, methods=["POST"])]
