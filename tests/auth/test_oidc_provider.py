"""The provider client against IdP behaviours the test IdP does not show: discovery mismatches, key rotation,
client authentication by form, groups only in userinfo, a userinfo answer about someone else.

The IdP here is an `httpx.MockTransport`, but the tokens are really signed and really verified."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import SecretStr

from llm_console.auth.oidc import OIDCConfig, OIDCError, OIDCProvider, PendingLogin, is_secure_url, parse_metadata

ISSUER = "https://idp.example.com/realms/main"
CLIENT = "llm-console"
CALLBACK = "https://llm.example.com/auth/oidc/callback"


class FakeIdP:
    """Discovery, JWKS, token and userinfo endpoints; what the console sent is kept for the assertions."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.auth_methods = ["client_secret_basic", "client_secret_post"]
        self.claims: dict[str, Any] = {}
        self.userinfo: dict[str, Any] = {"sub": "u-1"}
        self.jwks_fetches = 0
        self.token_requests: list[httpx.Request] = []

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        key = key or self.keys[-1]
        return jwt.encode({"alg": "RS256", "kid": str(key.kid)}, claims, key)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.discovery())
        if path.endswith("/certs"):
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        if path.endswith("/token"):
            self.token_requests.append(request)
            tokens = {"access_token": "at", "token_type": "Bearer", "id_token": self.sign(self.claims)}
            return httpx.Response(200, json=tokens)
        if path.endswith("/userinfo"):
            assert request.headers["authorization"] == "Bearer at"
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/certs",
            "userinfo_endpoint": f"{ISSUER}/userinfo",
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def provider(self, secret: str | None = "s3cret/+") -> OIDCProvider:
        config = OIDCConfig(ISSUER, CLIENT, SecretStr(secret) if secret else None, "openid email groups")
        return OIDCProvider(config, transport=httpx.MockTransport(self.handler))


def claims(nonce: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300, "nonce": nonce, **extra}


async def begin(idp: FakeIdP, provider: OIDCProvider) -> tuple[PendingLogin, dict[str, str]]:
    _, pending = await provider.begin(CALLBACK)
    idp.claims = claims(pending.nonce)
    return pending, {"state": pending.state, "code": "the-code"}


def test_only_https_or_this_machine() -> None:
    assert is_secure_url("https://idp.example.com/x")
    assert (
        is_secure_url("http://localhost:8080") and is_secure_url("http://127.0.0.2/") and is_secure_url("http://[::1]/")
    )
    for url in ("http://idp.example.com", "http://10.0.0.1", "ftp://localhost/", "https://", "http://[::1", "//x"):
        assert not is_secure_url(url), url
    with pytest.raises(OIDCError, match="must be an https URL"):
        OIDCProvider(OIDCConfig("http://idp.example.com", CLIENT))


def test_discovery_must_name_the_configured_issuer() -> None:
    doc = FakeIdP().discovery()
    assert parse_metadata(doc, ISSUER + "/").issuer == ISSUER
    with pytest.raises(OIDCError, match="set LLMC_OIDC_ISSUER to exactly"):
        parse_metadata({**doc, "issuer": "https://elsewhere.example.com"}, ISSUER)
    with pytest.raises(OIDCError, match="token_endpoint is not https"):
        parse_metadata({**doc, "token_endpoint": "http://idp.example.com/token"}, ISSUER)
    with pytest.raises(OIDCError, match="no jwks_uri"):
        parse_metadata({k: v for k, v in doc.items() if k != "jwks_uri"}, ISSUER)


async def test_code_exchange_sends_pkce_verifier_and_basic_auth() -> None:
    idp = FakeIdP()
    provider = idp.provider()
    pending, params = await begin(idp, provider)
    result = await provider.finish(pending, params)
    assert result["sub"] == "u-1"
    sent = idp.token_requests[0]
    form = dict(parse_qsl(sent.content.decode()))
    assert form == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": CALLBACK,
        "code_verifier": pending.code_verifier,
    }
    assert base64.b64decode(sent.headers["authorization"].split()[1]) == b"llm-console:s3cret%2F%2B"


async def test_form_client_auth_when_the_idp_only_takes_that() -> None:
    idp = FakeIdP()
    idp.auth_methods = ["client_secret_post"]
    provider = idp.provider()
    pending, params = await begin(idp, provider)
    await provider.finish(pending, params)
    form = dict(parse_qsl(idp.token_requests[0].content.decode()))
    assert form["client_id"] == CLIENT and form["client_secret"] == "s3cret/+"
    assert "authorization" not in idp.token_requests[0].headers


async def test_public_client_sends_only_its_id() -> None:
    idp = FakeIdP()
    provider = idp.provider(secret=None)
    pending, params = await begin(idp, provider)
    await provider.finish(pending, params)
    form = dict(parse_qsl(idp.token_requests[0].content.decode()))
    assert form["client_id"] == CLIENT and "client_secret" not in form


async def test_groups_from_userinfo_and_a_userinfo_about_someone_else() -> None:
    idp = FakeIdP()
    provider = idp.provider()
    idp.userinfo = {"sub": "u-1", "groups": ["ml-ops"], "email": "not-this@example.com"}
    pending, params = await begin(idp, provider)
    idp.claims["email"] = "ada@example.com"
    merged = await provider.finish(pending, params)
    assert merged["groups"] == ["ml-ops"] and merged["email"] == "ada@example.com"  # the ID token wins
    idp.userinfo = {"sub": "u-2", "groups": ["llm-admins"]}
    pending, params = await begin(idp, provider)
    with pytest.raises(OIDCError, match="another subject"):
        await provider.finish(pending, params)


async def test_rotated_keys_are_fetched_again() -> None:
    idp = FakeIdP()
    provider = idp.provider()
    nonce = "n"
    assert await provider.verify_id_token(idp.sign(claims(nonce)), nonce=nonce)
    idp.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k2"}))  # the IdP rotates
    assert await provider.verify_id_token(idp.sign(claims(nonce)), nonce=nonce)
    assert idp.jwks_fetches == 2
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k3"})  # unknown, and no refetch within 30 s
    with pytest.raises(OIDCError, match="InvalidKeyId"):
        await provider.verify_id_token(idp.sign(claims(nonce), stranger), nonce=nonce)
    assert idp.jwks_fetches == 2


async def test_idp_errors_are_refusals_never_crashes() -> None:
    idp = FakeIdP()
    provider = idp.provider()
    pending, params = await begin(idp, provider)

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "<b>no</b>"})
        return idp.handler(request)

    provider._transport = httpx.MockTransport(refuse)
    with pytest.raises(OIDCError, match="invalid_grant") as caught:
        await provider.finish(pending, params)
    assert caught.value.code == "oidc_failed"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OIDCError) as caught:
        await OIDCProvider(provider.config, transport=httpx.MockTransport(down)).begin(CALLBACK)
    assert caught.value.code == "oidc_unavailable"
