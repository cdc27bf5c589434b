"""OpenID Connect sign-in against any standards-compliant provider, configured from settings alone.

Discovery (cached), the authorization request (authorization code + PKCE S256, `state`, `nonce`), the code
exchange, and the ID token's checks: signature against the provider's JWKS (asymmetric algorithms only),
`iss`, `aud`, `azp`, `exp`, `iat`, `nonce`. No Reflex, no database: routes and `services.oidc_accounts` do
the rest. Every refusal is an `OIDCError` whose `code` is the login page's error key; its message is for
the log and never holds a token.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import SecretStr

from llm_console.settings import Settings

# Asymmetric only: "none" and the HMAC family (keyed with the public client secret) are never accepted.
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519")
LEEWAY_S = 60
PENDING_TTL_S = 600
DISCOVERY_TTL_S = 3600.0
JWKS_MIN_REFRESH_S = 30.0
HTTP_TIMEOUT_S = 10.0
MAX_DOCUMENT_BYTES = 1_000_000
CALLBACK_PATH = "/auth/oidc/callback"


class OIDCError(ValueError):
    """A sign-in attempt that stops here: `code` picks the login page's message, `str()` is for the log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class OIDCConfig:
    """What one provider needs from settings; hashable, so a provider object is cached per configuration."""

    issuer: str
    client_id: str
    client_secret: SecretStr | None = field(default=None, repr=False)
    scopes: str = "openid email profile"

    @classmethod
    def from_settings(cls, settings: Settings) -> OIDCConfig | None:
        if not settings.oidc_enabled:
            return None
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        return cls(
            issuer=str(settings.oidc_issuer),
            client_id=str(settings.oidc_client_id),
            client_secret=settings.oidc_client_secret,
            scopes=" ".join(scopes),
        )


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    signing_algs: tuple[str, ...]
    iss_parameter: bool


@dataclass(frozen=True)
class PendingLogin:
    """One started sign-in: kept encrypted in a short-lived httpOnly cookie of the browser that started it."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    issuer: str


class PendingSealer:
    """Encrypts and authenticates a `PendingLogin` for its cookie (Fernet, key derived for this use only)."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"llm-console", info=b"oidc-pending-login").derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, pending: PendingLogin) -> str:
        raw = {"s": pending.state, "n": pending.nonce, "v": pending.code_verifier, "r": pending.redirect_uri}
        return self._fernet.encrypt(json.dumps({**raw, "i": pending.issuer}).encode()).decode()

    def open(self, value: str | None) -> PendingLogin:
        if not value or len(value) > 4096:
            raise OIDCError("oidc_state", "no sign-in in progress in this browser")
        try:
            raw = json.loads(self._fernet.decrypt(value.encode(), ttl=PENDING_TTL_S))
            return PendingLogin(raw["s"], raw["n"], raw["v"], raw["r"], raw["i"])
        except (InvalidToken, ValueError, KeyError, TypeError) as exc:
            raise OIDCError("oidc_state", "the sign-in cookie is expired or was not made here") from exc


def is_secure_url(url: str) -> bool:
    """https, or plain http to this machine only (a local test IdP); unlike authlib's check, no env override."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme == "https" and host:
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _field(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise OIDCError("oidc_unavailable", f"the discovery document has no {name}")
    if not is_secure_url(value):
        raise OIDCError("oidc_unavailable", f"the provider's {name} is not https: {value[:200]}")
    return value


def parse_metadata(doc: Mapping[str, Any], configured_issuer: str) -> ProviderMetadata:
    """Check the discovery document against the configured issuer (OIDC Discovery §4.3) and keep what we use."""
    issuer = doc.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != configured_issuer.rstrip("/"):
        raise OIDCError(
            "oidc_unavailable",
            f"the discovery document names issuer {str(issuer)[:200]!r}; set LLMC_OIDC_ISSUER to exactly that",
        )
    userinfo = doc.get("userinfo_endpoint")
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_field(doc, "authorization_endpoint"),
        token_endpoint=_field(doc, "token_endpoint"),
        jwks_uri=_field(doc, "jwks_uri"),
        userinfo_endpoint=_field(doc, "userinfo_endpoint") if userinfo else None,
        token_auth_methods=tuple(str(m) for m in methods),
        signing_algs=tuple(a for a in SIGNING_ALGS if a in algs) or ("RS256",),
        iss_parameter=doc.get("authorization_response_iss_parameter_supported") is True,
    )


class OIDCProvider:
    """One configured provider: caches its discovery document and keys, runs the sign-in's three steps."""

    def __init__(self, config: OIDCConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not is_secure_url(config.issuer):
            raise OIDCError("oidc_unavailable", "LLMC_OIDC_ISSUER must be an https URL (http only on loopback)")
        self.config = config
        self._transport = transport
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._jwks: KeySet | None = None
        self._last_refresh = -JWKS_MIN_REFRESH_S  # when an unknown key id last made us fetch the keys again
        self._used_states: dict[str, float] = {}

    def _client(self) -> httpx.AsyncClient:
        # One client per step: sign-ins are rare, and no pool outlives the event loop it was made on.
        return httpx.AsyncClient(transport=self._transport, timeout=HTTP_TIMEOUT_S, follow_redirects=False)

    async def _get_json(self, url: str, **kwargs: Any) -> Any:
        try:
            async with self._client() as http:
                resp = await http.get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise OIDCError("oidc_unavailable", f"cannot reach the provider at {url[:200]}: {exc!r}") from exc
        if resp.status_code != 200 or len(resp.content) > MAX_DOCUMENT_BYTES:
            raise OIDCError("oidc_unavailable", f"{url[:200]} answered HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError as exc:
            raise OIDCError("oidc_unavailable", f"{url[:200]} did not answer JSON") from exc

    async def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched at most once an hour."""
        now = time.monotonic()
        if self._metadata is not None and self._metadata[0] > now:
            return self._metadata[1]
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = await self._get_json(url)
        if not isinstance(doc, dict):
            raise OIDCError("oidc_unavailable", "the discovery document is not a JSON object")
        meta = parse_metadata(doc, self.config.issuer)
        self._metadata = (now + DISCOVERY_TTL_S, meta)
        return meta

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's public keys; fetched again when a token names an unknown key (rotation), at most
        once per JWKS_MIN_REFRESH_S so a stream of made-up key ids cannot make us hammer the IdP."""
        now = time.monotonic()
        if self._jwks is not None and (not refresh or now - self._last_refresh < JWKS_MIN_REFRESH_S):
            return self._jwks
        if refresh:
            self._last_refresh = now
        meta = await self.metadata()
        doc = await self._get_json(meta.jwks_uri)
        try:
            public = {"keys": [k for k in doc["keys"] if isinstance(k, dict) and k.get("kty") != "oct"]}
            keyset = KeySet.import_key_set(public)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise OIDCError("oidc_unavailable", "the provider's JWKS holds no usable public key") from exc
        self._jwks = keyset
        return keyset

    async def begin(self, redirect_uri: str) -> tuple[str, PendingLogin]:
        """The authorization URL to send the browser to, and what the callback must find again."""
        meta = await self.metadata()
        pending = PendingLogin(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            redirect_uri=redirect_uri,
            issuer=meta.issuer,
        )
        url = prepare_grant_uri(
            meta.authorization_endpoint,
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=self.config.scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
        )
        return url, pending

    def accept_response(self, pending: PendingLogin, params: Mapping[str, str], meta: ProviderMetadata) -> str:
        """Check the authorization response against the pending login (state, issuer, errors); return the code.

        A pending login is good for one response: a replayed callback finds its state already used.
        """
        state = params.get("state") or ""
        if not hmac.compare_digest(state.encode(), pending.state.encode()) or pending.issuer != meta.issuer:
            raise OIDCError("oidc_state", "the response's state does not match this browser's sign-in")
        now = time.monotonic()
        self._used_states = {s: t for s, t in self._used_states.items() if t > now}
        if pending.state in self._used_states:
            raise OIDCError("oidc_state", "this sign-in response was already used")
        self._used_states[pending.state] = now + PENDING_TTL_S
        iss = params.get("iss")
        if (iss is not None or meta.iss_parameter) and iss != meta.issuer:  # RFC 9207 mix-up defence
            raise OIDCError("oidc_failed", "the response's iss parameter names another issuer")
        if params.get("error"):
            raise OIDCError("oidc_denied", f"the provider returned error {params['error'][:100]!r}")
        code = params.get("code") or ""
        if not code or len(code) > 4096:
            raise OIDCError("oidc_failed", "the response carries no authorization code")
        return code

    async def finish(self, pending: PendingLogin, params: Mapping[str, str]) -> dict[str, Any]:
        """Accept the callback, exchange the code, verify the ID token; claims merged with userinfo's."""
        meta = await self.metadata()
        code = self.accept_response(pending, params, meta)
        tokens = await self.exchange(code, pending, meta)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OIDCError("oidc_failed", "the token response has no id_token (is the openid scope allowed?)")
        claims = await self.verify_id_token(id_token, nonce=pending.nonce)
        access = tokens.get("access_token")
        if meta.userinfo_endpoint and isinstance(access, str):
            claims = {**(await self.userinfo(meta.userinfo_endpoint, access, claims["sub"])), **claims}
        return claims

    async def exchange(self, code: str, pending: PendingLogin, meta: ProviderMetadata) -> dict[str, Any]:
        """The token request: the code, its PKCE verifier, and the client's authentication."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else None
        if secret and (
            "client_secret_basic" in meta.token_auth_methods or "client_secret_post" not in meta.token_auth_methods
        ):
            pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"  # RFC 6749 §2.3.1
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.config.client_id
            if secret:
                form["client_secret"] = secret
        try:
            async with self._client() as http:
                resp = await http.post(meta.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise OIDCError("oidc_unavailable", f"cannot reach the token endpoint: {exc!r}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or resp.status_code != 200:
            error = str(body.get("error"))[:100] if isinstance(body, dict) else None
            raise OIDCError("oidc_failed", f"the token endpoint refused the code: HTTP {resp.status_code} {error!r}")
        return body

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, azp, expiry, issue time and nonce all hold."""
        meta = await self.metadata()
        try:
            token = await self._decode(id_token, meta)
        except OIDCError:
            raise
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise OIDCError("oidc_failed", f"ID token signature or format refused: {type(exc).__name__}") from exc
        claims = dict(token.claims)
        rules = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": meta.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            rules.validate(claims)
        except ExpiredTokenError as exc:
            raise OIDCError("oidc_failed", "ID token expired") from exc
        except ClaimError as exc:
            raise OIDCError("oidc_failed", f"ID token claim {exc.claim} refused: {exc}") from exc
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and "azp" not in claims:
            raise OIDCError("oidc_failed", "ID token claim azp refused: several audiences and no azp")
        if "azp" in claims and claims["azp"] != self.config.client_id:
            raise OIDCError("oidc_failed", "ID token claim azp refused: it names another client")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise OIDCError("oidc_failed", "ID token claim nonce refused: missing or not this sign-in's")
        if not 0 < len(claims["sub"]) <= 255:
            raise OIDCError("oidc_failed", "ID token claim sub refused: empty or too long")
        return claims

    async def _decode(self, id_token: str, meta: ProviderMetadata) -> jwt.Token:
        if len(id_token) > 64_000:
            raise OIDCError("oidc_failed", "ID token too large")
        algs = list(meta.signing_algs)
        try:
            return jwt.decode(id_token, await self.keys(), algorithms=algs)
        except InvalidKeyIdError:  # an unknown key: the provider may have rotated its keys since the last fetch
            return jwt.decode(id_token, await self.keys(refresh=True), algorithms=algs)

    async def userinfo(self, url: str, access_token: str, subject: str) -> dict[str, Any]:
        """Claims from the userinfo endpoint (groups often live only there); empty when it has none for us."""
        try:
            body = await self._get_json(url, headers={"Authorization": f"Bearer {access_token}"})
        except OIDCError:
            return {}  # optional: the ID token alone signs the user in
        if not isinstance(body, dict) or "sub" not in body:
            return {}  # not a userinfo response we can attribute to anyone: unused
        if body["sub"] != subject:  # OIDC Core §5.3.2: a userinfo response for someone else is discarded
            raise OIDCError("oidc_failed", "the userinfo response names another subject")
        return {k: v for k, v in body.items() if k not in ("iss", "aud", "exp", "iat", "nonce", "azp")}
