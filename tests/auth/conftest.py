"""A real OpenID provider (pytest-iam runs Canaille in this process, on a real port), a console serving the
auth routes over ASGI, and a helper that signs in at the IdP's own login form as a browser would."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from llm_console.auth import routes as auth_routes
from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.services import context as console_context
from llm_console.settings import get_settings

CONSOLE = "http://console.test"
CALLBACK = f"{CONSOLE}/auth/oidc/callback"
PASSWORD = "correct horse battery staple"
SECRET_KEY = "auth-test-secret-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_llmc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LLMC_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'auth.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@dataclass
class IdP:
    """The pytest-iam server plus what one test registered in it."""

    server: Any
    client_id: str
    client_secret: str | None

    @property
    def issuer(self) -> str:
        return str(self.server.url).rstrip("/")

    def user(self, *, groups: tuple[str, ...] = (), email: str | None = None) -> Any:
        """A new IdP user (password `PASSWORD`) in the named groups, created when missing."""
        name = f"u{uuid.uuid4().hex[:10]}"
        user = self.server.random_user(user_name=name, emails=[email or f"{name}@example.com"], password=PASSWORD)
        for group_name in groups:
            self.join(user, group_name)
        return user

    def join(self, user: Any, group_name: str) -> None:
        models, backend = self.server.models, self.server.backend
        found = backend.query(models.Group, display_name=group_name)
        if found:
            group = found[0]
            backend.update(group, members=[*group.members, user])
            backend.save(group)
        else:
            self.server.random_group(display_name=group_name, members=[user])
        backend.reload(user)

    def leave_all(self, user: Any) -> None:
        backend = self.server.backend
        for group in list(user.groups):
            backend.update(group, members=[m for m in group.members if m.id != user.id])
            backend.save(group)
        backend.reload(user)

    def register(self, *, secret: bool = True, redirect: str = CALLBACK) -> tuple[str, str | None]:
        """Another client of this IdP: (client_id, secret)."""
        models, backend = self.server.models, self.server.backend
        client_id = f"c{uuid.uuid4().hex[:10]}"
        client_secret = uuid.uuid4().hex if secret else None
        client = models.Client(
            client_id=client_id,
            client_secret=client_secret,
            client_name=f"console {client_id}",
            client_uri=CONSOLE.replace("console.test", "localhost"),  # a trusted domain: no consent page
            redirect_uris=[redirect],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=["openid", "email", "profile", "groups"],
        )
        backend.save(client)
        backend.update(client, audience=[client])
        backend.save(client)
        return client_id, client_secret


@pytest.fixture
def idp(iam_server: Any) -> IdP:
    idp = IdP(iam_server, "", None)
    idp.client_id, idp.client_secret = idp.register()
    return idp


def oidc_env(idp: IdP, **extra: str) -> dict[str, str]:
    env = {
        "LLMC_OIDC_ISSUER": idp.issuer,
        "LLMC_OIDC_CLIENT_ID": idp.client_id,
        "LLMC_OIDC_SCOPES": "openid email profile groups",
        "LLMC_OIDC_REDIRECT_URL": CALLBACK,
        "LLMC_OIDC_ROLE_MAP": "llm-admins=admin,llm-operators=operator,llm-members=member",
    }
    if idp.client_secret:
        env["LLMC_OIDC_CLIENT_SECRET"] = idp.client_secret
    env.update(extra)
    return env


@dataclass
class ConsoleApp:
    """The console's auth routes over ASGI, on the process-wide context built from `LLMC_*`."""

    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    def configure(self, **env: str) -> None:
        self.close()
        for name in [n for n in os.environ if n.startswith("LLMC_")]:
            self.monkeypatch.delenv(name)
        self.monkeypatch.setenv("LLMC_DATABASE_URL", f"sqlite:///{(self.tmp_path / 'auth.db').as_posix()}")
        self.monkeypatch.setenv("LLMC_DATA_DIR", str(self.tmp_path / "data"))
        self.monkeypatch.setenv("LLMC_SECRET_KEY", SECRET_KEY)
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    def close(self) -> None:
        if console_context.get_context.cache_info().currsize:
            console_context.get_context().engine.dispose()
        console_context.get_context.cache_clear()
        get_settings.cache_clear()
        auth_routes.oidc_provider.cache_clear()

    def http(self) -> httpx.AsyncClient:
        """A browser of the console: its own cookie jar."""
        from starlette.applications import Starlette

        app = Starlette(routes=auth_routes.AUTH_ROUTES)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)


@pytest.fixture
def console(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleApp]:
    app = ConsoleApp(monkeypatch, tmp_path)
    app.configure()
    yield app
    app.close()


FORM_FIELD = re.compile(r'<input[^>]*name="(login|password)"')


async def idp_sign_in(authorize_url: str, username: str, password: str = PASSWORD) -> str:
    """Follow the IdP from the authorization URL through its login and password forms, as a browser would;
    return the URL it finally redirects to (the console's callback). A fresh cookie jar: no IdP session."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=20) as browser:
        resp = await browser.get(authorize_url)
        for _ in range(12):
            if resp.is_redirect:
                location = urljoin(str(resp.url), resp.headers["location"])
                if location.startswith(CONSOLE) or not location.startswith("http://localhost"):
                    return location
                resp = await browser.get(location)
                continue
            field = FORM_FIELD.search(resp.text) if resp.status_code == 200 else None
            if field is None:
                raise AssertionError(f"unexpected IdP page {resp.url}: HTTP {resp.status_code}\n{resp.text[:1500]}")
            value = username if field.group(1) == "login" else password
            resp = await browser.post(str(resp.url), data={field.group(1): value})
        raise AssertionError("the IdP never redirected back")


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


@pytest.fixture
async def web(console: ConsoleApp) -> AsyncIterator[httpx.AsyncClient]:
    """One browser's view of the console (configure the console before its first request)."""
    async with console.http() as http:
        yield http
