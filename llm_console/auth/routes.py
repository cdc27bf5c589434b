"""Backend routes that set and clear the httpOnly session cookie (Reflex state never sees the token).

Local sign-in posts a form; OIDC sign-in is two GETs: `/auth/oidc/login` sends the browser to the IdP with
its pending login sealed in a short-lived httpOnly cookie, and `/auth/oidc/callback` checks the answer
against that cookie (once), verifies the ID token and opens a session.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from llm_console import routes as urls
from llm_console.auth.cookies import session_token
from llm_console.auth.oidc import CALLBACK_PATH, PENDING_TTL_S, OIDCConfig, OIDCError, OIDCProvider, PendingSealer
from llm_console.auth.session_cookie import MAX_FORM_BYTES, signed_in
from llm_console.services.context import get_context
from llm_console.services.oidc_accounts import RolePolicy, SignInRefused, identity_from_claims, sign_in
from llm_console.services.sessions import COOKIE_NAME, end_session
from llm_console.services.users import authenticate
from llm_console.settings import Settings

PENDING_COOKIE = "llmc_oidc"
PENDING_PATH = "/auth/oidc"
log = logging.getLogger("llm_console.auth")


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _refused(code: str) -> RedirectResponse:
    return _back(f"{urls.LOGIN}?error={quote(code)}")


async def login(request: Request) -> Response:
    ctx = get_context()
    if not ctx.settings.local_login_enabled:
        return _refused("local_disabled")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return _back(f"{urls.LOGIN}?error=invalid")
    form = await request.form()
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    if not email or not password or len(email) > 320 or len(password) > 1024:
        return _back(f"{urls.LOGIN}?error=invalid")
    user = await asyncio.to_thread(authenticate, ctx.engine, email, password)
    if user is None or user.kind != "person":
        return _back(f"{urls.LOGIN}?error=invalid&email={quote(email[:320])}")
    return await signed_in(request, user, engine=ctx.engine, settings=ctx.settings)


async def logout(request: Request) -> Response:
    ctx = get_context()
    token = session_token(request.headers.get("cookie"))
    await asyncio.to_thread(end_session, ctx.engine, token)
    ctx.sessions.forget(token)
    resp = _back(urls.LOGIN)
    resp.delete_cookie(COOKIE_NAME, path="/")
    return resp


@lru_cache(maxsize=4)
def oidc_provider(config: OIDCConfig) -> OIDCProvider:
    """One provider object (discovery and key caches) per configuration, per process."""
    return OIDCProvider(config)


@lru_cache(maxsize=4)
def _sealer(secret_key: str) -> PendingSealer:
    return PendingSealer(secret_key)


def redirect_uri(settings: Settings, request: Request) -> str:
    """The callback URL: as configured, else under the public URL, else the address the browser used."""
    if settings.oidc_redirect_url:
        return settings.oidc_redirect_url
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


def _provider(settings: Settings) -> OIDCProvider | None:
    config = OIDCConfig.from_settings(settings)
    return oidc_provider(config) if config is not None else None


async def oidc_login(request: Request) -> Response:
    settings = get_context().settings
    try:
        provider = _provider(settings)
        if provider is None:
            return _refused("oidc_disabled")
        url, pending = await provider.begin(redirect_uri(settings, request))
    except OIDCError as exc:
        log.warning("OIDC sign-in could not start: %s", exc)
        return _refused(exc.code)
    resp = RedirectResponse(url, status_code=302)
    resp.set_cookie(
        PENDING_COOKIE,
        _sealer(settings.resolved_secret_key()).seal(pending),
        max_age=PENDING_TTL_S,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",  # the IdP's redirect back is a top-level GET from another site: Lax sends it, Strict not
        path=PENDING_PATH,
    )
    return resp


async def oidc_callback(request: Request) -> Response:
    ctx = get_context()
    settings = ctx.settings
    params = {k: v for k, v in request.query_params.items() if len(v) <= 8192}
    resp: Response
    try:
        provider = _provider(settings)
        if provider is None:
            raise OIDCError("oidc_disabled", "OIDC is not configured")
        pending = _sealer(settings.resolved_secret_key()).open(request.cookies.get(PENDING_COOKIE))
        claims = await provider.finish(pending, params)
        identity = identity_from_claims(claims, groups_claim=settings.oidc_groups_claim)
        policy = RolePolicy(settings.oidc_role_map, settings.oidc_default_role, settings.oidc_auto_provision)
        user = await asyncio.to_thread(sign_in, ctx.engine, identity, policy=policy)
    except (OIDCError, SignInRefused) as exc:
        log.warning("OIDC sign-in refused (%s): %s", exc.code, exc)
        resp = _refused(exc.code)
    else:
        log.info("OIDC sign-in: user %s (%s)", user.id, user.role)
        resp = await signed_in(request, user, engine=ctx.engine, settings=settings)
    resp.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)  # single use, whatever the outcome
    return resp


AUTH_ROUTES = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/oidc/login", oidc_login, methods=["GET"]),
    Route("/auth/oidc/callback", oidc_callback, methods=["GET"]),
]
