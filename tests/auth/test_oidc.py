"""OIDC sign-in against a real OpenID provider (pytest-iam's Canaille): the full code flow through the IdP's
own login form, then every refusal: wrong state, replayed code, another audience, expiry, bad signatures,
nonce; linking by (issuer, subject); local login switched off; service accounts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.auth.oidc import OIDCConfig, OIDCError, OIDCProvider, PendingLogin
from llm_console.auth.routes import PENDING_COOKIE
from llm_console.db.models import AuditEvent, User
from llm_console.services.sessions import COOKIE_NAME, resolve
from llm_console.services.users import create_user
from tests.auth.conftest import CALLBACK, PASSWORD, ConsoleApp, IdP, idp_sign_in, oidc_env, path_and_query, query

NONCE = "nonce-for-crafted-tokens"


async def start(web: httpx.AsyncClient) -> tuple[str, str]:
    """Press the SSO button: (the IdP authorization URL, the sealed pending-login cookie)."""
    resp = await web.get("/auth/oidc/login")
    assert resp.status_code == 302, resp.headers.get("location")
    cookie = resp.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "path=/auth/oidc" in cookie.lower() and "samesite=lax" in cookie.lower()
    return resp.headers["location"], resp.cookies[PENDING_COOKIE]


async def full_sign_in(web: httpx.AsyncClient, username: str) -> httpx.Response:
    authorize, _ = await start(web)
    back = await idp_sign_in(authorize, username)
    return await web.get(path_and_query(back))


def refused_with(resp: httpx.Response, code: str) -> None:
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/login?error={code}"
    assert COOKIE_NAME not in resp.cookies


def user_by_email(engine: Engine, email: str) -> User | None:
    with Session(engine) as s:
        return s.exec(select(User).where(User.email == email)).first()


def audit_actions(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]  # type: ignore[arg-type]


def provider_for(idp: IdP, client_id: str | None = None, secret: str | None = None) -> OIDCProvider:
    cid, sec = (client_id, secret) if client_id else (idp.client_id, idp.client_secret)
    return OIDCProvider(OIDCConfig(idp.issuer, cid, SecretStr(sec) if sec else None, "openid email profile groups"))


async def real_tokens(provider: OIDCProvider, username: str) -> tuple[PendingLogin, dict[str, Any]]:
    """A real token response of the IdP for `provider`'s client, through the real login form."""
    authorize, pending = await provider.begin(CALLBACK)
    back = await idp_sign_in(authorize, username)
    meta = await provider.metadata()
    code = provider.accept_response(pending, query(back), meta)
    return pending, await provider.exchange(code, pending, meta)


def idp_signing_key(idp: IdP) -> RSAKey:
    key = RSAKey.import_key(idp.server.app.config["CANAILLE_OIDC"]["ACTIVE_JWKS"][0])
    key.ensure_kid()
    return key


def crafted(idp: IdP, key: Any, alg: str = "RS256", kid: str | None = None, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "crafted", "aud": idp.client_id, "iat": now, "exp": now + 300, "nonce": NONCE}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": kid or key.kid}, claims, key, algorithms=[alg])


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(provider: OIDCProvider, token: str, reason: str, nonce: str = NONCE) -> None:
    with pytest.raises(OIDCError) as caught:
        await provider.verify_id_token(token, nonce=nonce)
    assert caught.value.code == "oidc_failed"
    assert reason in str(caught.value)


async def test_full_code_flow_with_pkce_signs_in(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    console.configure(**oidc_env(idp))
    person = idp.user(groups=("llm-members", "llm-operators"))
    authorize, _ = await start(web)
    params = query(authorize)
    assert authorize.startswith(idp.issuer + "/oauth/authorize?")
    assert params["response_type"] == "code" and params["client_id"] == idp.client_id
    assert params["redirect_uri"] == CALLBACK and params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and len(params["code_challenge"]) == 43
    assert "groups" in params["scope"].split()

    back = await idp_sign_in(authorize, person.user_name)
    assert back.startswith(CALLBACK) and query(back)["state"] == params["state"]
    done = await web.get(path_and_query(back))
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert 'llmc_oidc=""' in done.headers.get("set-cookie", "") or "llmc_oidc=;" in done.headers["set-cookie"]
    signed_in = resolve(engine, done.cookies[COOKIE_NAME])
    assert signed_in is not None and signed_in.email == person.emails[0] and signed_in.role == "operator"
    user = user_by_email(engine, person.emails[0])
    assert user is not None and user.last_login_at is not None
    assert (user.oidc_issuer, user.oidc_subject) == (idp.issuer, person.user_name)
    assert audit_actions(engine) == ["user.create", "user.oidc_link"]


async def test_public_client_relies_on_pkce(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    idp.client_id, idp.client_secret = idp.register(secret=False)
    console.configure(**oidc_env(idp))
    person = idp.user()
    done = await full_sign_in(web, person.user_name)
    assert done.headers["location"] == "/" and resolve(engine, done.cookies[COOKIE_NAME]) is not None
    provider = provider_for(idp)
    authorize, pending = await provider.begin(CALLBACK)
    meta = await provider.metadata()
    code = provider.accept_response(pending, query(await idp_sign_in(authorize, person.user_name)), meta)
    forged = PendingLogin(pending.state, pending.nonce, "x" * 64, pending.redirect_uri, pending.issuer)
    with pytest.raises(OIDCError, match="refused the code"):  # the IdP checks the verifier against the challenge
        await provider.exchange(code, forged, meta)


async def test_accounts_are_linked_by_issuer_and_subject(
    console: ConsoleApp, idp: IdP, engine: Engine, web: Any
) -> None:
    console.configure(**oidc_env(idp))
    person = idp.user(groups=("llm-admins",))
    first = await full_sign_in(web, person.user_name)
    user = user_by_email(engine, person.emails[0])
    assert first.headers["location"] == "/" and user is not None and user.role == "admin"

    idp.server.backend.update(person, emails=["renamed@example.com"])  # the email changes at the IdP
    idp.server.backend.save(person)
    idp.leave_all(person)  # and the groups: roles are re-applied at every sign-in
    again = await full_sign_in(web, person.user_name)
    assert again.headers["location"] == "/"
    with Session(engine) as s:
        users = s.exec(select(User)).all()
    assert [(u.id, u.role) for u in users] == [(user.id, "viewer")]
    assert audit_actions(engine) == ["user.create", "user.oidc_link", "user.role"]


async def test_wrong_state_is_refused(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    console.configure(**oidc_env(idp))
    person = idp.user()
    authorize, cookie = await start(web)
    back = query(await idp_sign_in(authorize, person.user_name))
    tampered = {**back, "state": back["state"][:-2] + "xx"}
    refused_with(await web.get("/auth/oidc/callback", params=tampered), "oidc_state")
    web.cookies.clear()  # another browser: the IdP's genuine answer, without the cookie that started it
    refused_with(await web.get("/auth/oidc/callback", params=back), "oidc_state")
    await start(web)  # a browser whose own sign-in is another one
    refused_with(await web.get("/auth/oidc/callback", params=back), "oidc_state")
    web.cookies.clear()
    refused_with(
        await web.get("/auth/oidc/callback", params=back, headers={"Cookie": f"{PENDING_COOKIE}={cookie[:-4]}AAAA"}),
        "oidc_state",
    )
    assert user_by_email(engine, person.emails[0]) is None


async def test_replayed_code_is_refused(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    console.configure(**oidc_env(idp))
    person = idp.user()
    authorize, cookie = await start(web)
    back = await idp_sign_in(authorize, person.user_name)
    assert (await web.get(path_and_query(back))).headers["location"] == "/"
    web.cookies.clear()
    replay = {"Cookie": f"{PENDING_COOKIE}={cookie}"}  # the same callback and the same cookie, again
    refused_with(await web.get(path_and_query(back), headers=replay), "oidc_state")
    fresh, _ = await start(web)  # a new sign-in in this browser, its state pasted onto the used code
    pasted = {**query(back), "state": query(fresh)["state"]}
    refused_with(await web.get("/auth/oidc/callback", params=pasted), "oidc_failed")
    assert len(audit_actions(engine)) == 2


async def test_replaying_one_code_twice_at_the_token_endpoint(idp: IdP) -> None:
    provider = provider_for(idp)
    person = idp.user()
    authorize, pending = await provider.begin(CALLBACK)
    back = query(await idp_sign_in(authorize, person.user_name))
    meta = await provider.metadata()
    code = provider.accept_response(pending, back, meta)
    assert "id_token" in await provider.exchange(code, pending, meta)
    with pytest.raises(OIDCError, match="invalid_grant") as caught:
        await provider.exchange(code, pending, meta)
    assert caught.value.code == "oidc_failed"
    with pytest.raises(OIDCError, match="already used"):
        provider.accept_response(pending, back, meta)


async def test_id_token_for_another_audience_is_refused(idp: IdP) -> None:
    person = idp.user()
    other_id, other_secret = idp.register()
    other = provider_for(idp, other_id, other_secret)
    pending, tokens = await real_tokens(other, person.user_name)  # a genuine token, issued to another client
    mine = provider_for(idp)
    assert (await other.verify_id_token(tokens["id_token"], nonce=pending.nonce))["sub"] == person.user_name
    await refused(mine, tokens["id_token"], "aud", nonce=pending.nonce)
    key = idp_signing_key(idp)
    await refused(mine, crafted(idp, key, aud="someone-else"), "aud")
    await refused(mine, crafted(idp, key, aud=[idp.client_id, "someone-else"]), "azp")
    await refused(mine, crafted(idp, key, aud=[idp.client_id, "x"], azp="x"), "azp")
    assert await mine.verify_id_token(crafted(idp, key, aud=[idp.client_id, "x"], azp=idp.client_id), nonce=NONCE)


async def test_expired_or_future_id_token_is_refused(idp: IdP) -> None:
    provider, key = provider_for(idp), idp_signing_key(idp)
    now = int(time.time())
    assert (await provider.verify_id_token(crafted(idp, key), nonce=NONCE))["sub"] == "crafted"  # the control
    await refused(provider, crafted(idp, key, iat=now - 900, exp=now - 120), "expired")
    await refused(provider, crafted(idp, key, exp=None), "exp")
    await refused(provider, crafted(idp, key, iat=now + 900, exp=now + 1200), "iat")
    await refused(provider, crafted(idp, key, iat=None), "iat")
    await refused(provider, crafted(idp, key, iss="http://evil.example"), "iss")


async def test_bad_signature_is_refused(idp: IdP) -> None:
    provider, real_key = provider_for(idp), idp_signing_key(idp)
    foreign = RSAKey.generate_key(2048, parameters={"kid": str(real_key.kid)})  # same key id, another key
    await refused(provider, crafted(idp, foreign), "BadSignature")
    header, payload, signature = crafted(idp, real_key).split(".")
    claims = json.loads(unb64(payload))
    tampered = f"{header}.{b64(json.dumps({**claims, 'sub': 'admin'}).encode())}.{signature}"
    await refused(provider, tampered, "BadSignature")
    unsigned = b64(b'{"alg":"none"}') + "." + payload + "."
    await refused(provider, unsigned, "UnsupportedAlgorithm")
    assert idp.client_secret is not None  # HMAC keyed with the client secret: an algorithm-confusion attempt
    await refused(
        provider,
        crafted(idp, OctKey.import_key(idp.client_secret), alg="HS256", kid=real_key.kid),
        "UnsupportedAlgorithm",
    )
    await refused(provider, "not.a-token", "signature")


async def test_missing_or_wrong_nonce_is_refused(idp: IdP) -> None:
    provider, key = provider_for(idp), idp_signing_key(idp)
    await refused(provider, crafted(idp, key, nonce=None), "nonce")
    await refused(provider, crafted(idp, key, nonce="another-sign-in"), "nonce")
    person = idp.user()
    pending, tokens = await real_tokens(provider, person.user_name)
    await refused(provider, tokens["id_token"], "nonce", nonce="not-" + pending.nonce)


async def test_idp_errors_and_mix_up_are_refused(console: ConsoleApp, idp: IdP, web: Any) -> None:
    console.configure(**oidc_env(idp))
    authorize, _ = await start(web)
    state = query(authorize)["state"]
    denied = {"state": state, "error": "access_denied", "error_description": "<script>x</script>", "iss": idp.issuer}
    refused_with(await web.get("/auth/oidc/callback", params=denied), "oidc_denied")
    authorize, _ = await start(web)
    mixed = {"state": query(authorize)["state"], "code": "abc", "iss": "http://evil.example"}
    refused_with(await web.get("/auth/oidc/callback", params=mixed), "oidc_failed")


async def test_unverified_email_never_links_an_existing_account(
    console: ConsoleApp, idp: IdP, engine: Engine, web: Any
) -> None:
    console.configure(**oidc_env(idp))
    local = create_user(engine, email="taken@example.com", password=PASSWORD, role="admin", actor="t")
    person = idp.user(email="taken@example.com", groups=("llm-admins",))  # Canaille sends no email_verified
    refused_with(await full_sign_in(web, person.user_name), "oidc_unlinked")
    with Session(engine) as s:
        stored = s.get(User, local.id)
        assert stored is not None and stored.oidc_subject is None and stored.last_login_at is None
        assert len(s.exec(select(User)).all()) == 1


async def test_service_accounts_and_disabled_users_cannot_sign_in(
    console: ConsoleApp, idp: IdP, engine: Engine, web: Any
) -> None:
    console.configure(**oidc_env(idp))
    robot, person = idp.user(), idp.user()
    with Session(engine) as s:
        s.add(User(email="robot@svc.local", kind="service", oidc_issuer=idp.issuer, oidc_subject=robot.user_name))
        s.add(User(email="gone@example.com", is_active=False, oidc_issuer=idp.issuer, oidc_subject=person.user_name))
        s.commit()
    refused_with(await full_sign_in(web, robot.user_name), "oidc_service")
    refused_with(await full_sign_in(web, person.user_name), "oidc_inactive")


async def test_no_role_refuses(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    console.configure(**oidc_env(idp, LLMC_OIDC_DEFAULT_ROLE="none"))
    outsider, insider = idp.user(groups=("marketing",)), idp.user(groups=("llm-members",))
    refused_with(await full_sign_in(web, outsider.user_name), "oidc_no_role")
    assert user_by_email(engine, outsider.emails[0]) is None
    assert (await full_sign_in(web, insider.user_name)).headers["location"] == "/"
    stored = user_by_email(engine, insider.emails[0])
    assert stored is not None and stored.role == "member"


async def test_local_login_can_be_switched_off(console: ConsoleApp, idp: IdP, engine: Engine, web: Any) -> None:
    create_user(engine, email="local@example.com", password=PASSWORD, role="admin", actor="t")
    form = {"email": "local@example.com", "password": PASSWORD}
    console.configure()
    assert (await web.post("/auth/login", data=form)).headers["location"] == "/"
    console.configure(**oidc_env(idp), LLMC_LOCAL_LOGIN_ENABLED="false")
    web.cookies.clear()
    refused_with(await web.post("/auth/login", data=form), "local_disabled")


async def test_sso_off_and_idp_unreachable(console: ConsoleApp, web: Any) -> None:
    refused_with(await web.get("/auth/oidc/login"), "oidc_disabled")
    refused_with(await web.get("/auth/oidc/callback", params={"code": "x", "state": "y"}), "oidc_disabled")
    console.configure(LLMC_OIDC_ISSUER="http://127.0.0.1:9", LLMC_OIDC_CLIENT_ID="c")
    refused_with(await web.get("/auth/oidc/login"), "oidc_unavailable")
    console.configure(LLMC_OIDC_ISSUER="http://idp.example.com", LLMC_OIDC_CLIENT_ID="c")
    refused_with(await web.get("/auth/oidc/login"), "oidc_unavailable")  # plain http off loopback
