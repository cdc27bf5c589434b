"""The RBAC matrix: every page, event handler and backend route the app registers, against who may use it.

The lists below are the expected policy, written by hand. The tests read what the app really registers
(its pages with their on-load events, every state's event handlers, the backend routes) and fail on
anything missing from the matrix, so a new handler or route cannot ship without a decision. Then every
handler is called over a real websocket as anonymous, viewer, member, operator and admin, and the guard's
decision for each (its "refused event" log line, or none) must match the matrix.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
import socketio
from reflex.state import State
from reflex_base.utils.format import format_event_handler

from llm_console.auth.guard import event_roles, public_events
from llm_console.auth.roles import ROLE_RANK
from llm_console.services.sessions import COOKIE_NAME
from tests.conftest import run_cli
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Console
from tests.e2e.test_socket_guard import NAMESPACE, in_thread, session_cookie

NOBODY = "nobody"  # refused for every caller (Reflex's generic setvar)
PUBLIC = "public"
ROLES = ("anonymous", "viewer", "member", "operator", "admin")
RANK = {"anonymous": -1, **ROLE_RANK}
DASHBOARD = ("load", "set_param", "export", "clear_filters", "live")

# state class -> handler -> lowest role allowed (PUBLIC: anyone, NOBODY: no one).
HANDLERS: dict[str, dict[str, str]] = {
    "SessionState": {"check": PUBLIC},
    "LoginState": {"load": PUBLIC},
    "OverviewState": dict.fromkeys(DASHBOARD, "operator"),
    "UsageState": dict.fromkeys(DASHBOARD, "operator"),
    "EmbeddingsState": dict.fromkeys(DASHBOARD, "operator"),
    "CostsState": dict.fromkeys(DASHBOARD, "operator"),
    "SpendState": dict.fromkeys(DASHBOARD, "viewer"),  # team-scoped below operator
    "LimitsState": dict.fromkeys(DASHBOARD, "viewer"),  # own usage; the organization's table from operator up
    "LimitsFormState": dict.fromkeys(("open_new", "open_edit", "close", "submit", "clear"), "admin"),
    "TiersState": dict.fromkeys(DASHBOARD, "operator"),  # tiers, holders, upgrade suggestions: organization-wide
    "TierFormState": dict.fromkeys(
        ("open_new", "open_edit", "close", "submit", "ask_delete", "cancel_delete", "confirm_delete"), "admin"
    ),
    "TierAssignState": dict.fromkeys(("open_assign", "close", "submit"), "admin"),
    # Spend administration: LLMC_SPEND_ADMIN_ROLE (admin by default) may lower the right to operators, so the
    # guard lets operators through and each handler checks may_administer_spend itself (see
    # test_spend_admin_socket.py: an operator's call writes nothing under the default). `load` only fills the
    # lists for those allowed; anyone signed in may call it (it is an on-load of the viewer-level Limits page).
    "SpendAdminState": {
        "load": "viewer",
        **dict.fromkeys(
            ("open_reset", "open_raise", "ask_revoke", "close", "submit_reset", "submit_raise", "submit_revoke"),
            "operator",
        ),
    },
    "PromptsState": dict.fromkeys(("load", "search_prompts", "goto_page"), "viewer"),
    "PromptDetailState": dict.fromkeys((*DASHBOARD, "select_version", "choose_diff"), "viewer"),
    # Members write versions and labels; the service refuses the production label below operator.
    "PromptFormState": dict.fromkeys(
        (
            *("open_new", "open_version", "close", "set_kind", "add_message", "remove_message"),
            *("set_role", "set_content", "set_text", "submit"),
        ),
        "member",
    ),
    "PromptLabelState": dict.fromkeys(("open_move", "close", "submit"), "member"),
    "FleetState": dict.fromkeys(DASHBOARD, "viewer"),  # read-only: no container actions
    "FleetDeploymentState": dict.fromkeys(DASHBOARD, "viewer"),
    "FleetKvState": dict.fromkeys(DASHBOARD, "viewer"),
    "ThrottleAnalyticsState": dict.fromkeys(DASHBOARD, "operator"),  # organization-wide refusals and abuse
    "AnalyticsState": dict.fromkeys(DASHBOARD, "operator"),  # organization-wide figures, like Usage
    "LogsState": dict.fromkeys((*DASHBOARD, "open_request", "close_request", "next_page", "first_page"), "viewer"),
    "CatalogState": dict.fromkeys(("load", "search_catalog", "toggle_compare", "clear_compare"), "viewer"),
    "CatalogEditState": dict.fromkeys(("save", "refresh_metadata"), "operator"),
    "UsersState": {
        **dict.fromkeys(("load", "apply_filters", "set_filter", "goto"), "operator"),
        **dict.fromkeys(("change_role", "toggle_active"), "admin"),
    },
    "InvitesState": {"load": "operator", **dict.fromkeys(("set_open", "create", "revoke"), "admin")},
    "TeamsState": {
        **dict.fromkeys(("load", "select"), "operator"),
        **dict.fromkeys(("create", "update", "delete", "add_member", "set_member_role", "remove_member"), "admin"),
    },
    "ServiceAccountsState": {
        "load": "operator",
        **dict.fromkeys(("create", "mint", "dismiss_secret", "deactivate"), "admin"),
    },
    "AuditState": dict.fromkeys(
        ("load", "set_param", "apply_text", "open_event", "close_event", "next_page", "first_page", "clear_filters"),
        "operator",
    ),
    "InviteState": {"load": PUBLIC},
    "KeysState": {
        **dict.fromkeys(("load", "set_filter", "search_keys", "goto_page", "dismiss_secret"), "viewer"),
        **dict.fromkeys(("ask", "cancel", "confirm"), "member"),
    },
    "KeyFormState": dict.fromkeys(
        ("open_create", "open_edit", "close", "choose_owner_type", "choose_owner", "toggle_alias", "submit"), "member"
    ),
    "ConfigIOState": {
        "load": "viewer",
        "set_allow_private": "admin",
        **dict.fromkeys(("set_text", "set_litellm", "preview", "apply", "load_current", "export"), "operator"),
    },
    "ConfigState": {
        "load": "viewer",
        **dict.fromkeys(("toggle_provider", "toggle_deployment", "test_deployment", "check_all"), "operator"),
    },
    "ProviderFormState": dict.fromkeys(
        ("new_provider", "edit_provider", "close_provider", "save_provider"), "operator"
    ),
    "DeploymentFormState": dict.fromkeys(
        ("new_deployment", "edit_deployment", "close_deployment", "save_deployment"), "operator"
    ),
    "DeleteState": dict.fromkeys(
        ("ask_delete_provider", "ask_delete_deployment", "cancel_delete", "confirm_delete"), "operator"
    ),
    "RoutingState": dict.fromkeys(("load", "select_alias", "run_preview"), "viewer"),
    "AlertsState": dict.fromkeys(
        (
            *("load", "next_page", "first_page", "toggle", "new_rule", "edit_rule", "close_form", "choose_kind"),
            *("save_rule", "send_test", "ask_delete", "cancel_delete", "confirm_delete"),
        ),
        "operator",
    ),
    "TelemetryState": {
        **dict.fromkeys(("load", "live"), "operator"),  # status and settings, read-only; no secret is sent
        **dict.fromkeys(("edit", "close_form", "save_langfuse", "save_otlp", "send_test"), "admin"),
    },
    "RoutingEditState": dict.fromkeys(
        (
            "set_strategy",
            "set_weight",
            "set_field",
            "add_link",
            "remove_link",
            "add_fallback",
            "remove_fallback",
            "save",
            "set_create_open",
            "create_alias",
            "delete_alias",
        ),
        "operator",
    ),
}

# page route -> lowest role whose on-load shows its content (PUBLIC: no sign-in needed).
PAGES: dict[str, str] = {
    "login": PUBLIC,
    "invite": PUBLIC,
    "organization": "operator",
    "audit": "operator",
    "alerts": "operator",
    "index": "operator",
    "usage": "operator",
    "embeddings": "operator",
    "costs": "operator",
    "spend": "viewer",
    "logs": "viewer",
    "config/routing": "viewer",
    "models": "viewer",
    "keys": "viewer",
    "config/yaml": "viewer",
    "config/telemetry": "operator",
    "config": "viewer",
    "limits": "viewer",
    "fleet": "viewer",
    "fleet/deployment": "viewer",
    "fleet/kv-cache": "viewer",
    "analytics/limits": "operator",
    "limits/tiers": "operator",
    "analytics": "operator",
    "prompts": "viewer",
    "prompts/detail": "viewer",
}

# backend route -> what an anonymous caller gets (status codes) for its first method.
ROUTES: dict[str, set[int]] = {
    "/v1/chat/completions": {401},
    "/v1/completions": {401},
    "/v1/embeddings": {401},
    "/v1/rerank": {401},
    "/v1/responses": {401},
    "/v1/messages": {401},
    "/v1/models": {401},
    "/v1/limits": {401},
    "/v1/feedback": {401},
    "/v1/prompts/{name:path}": {401},
    "/v1/models/{model:path}": {401},
    "/gateway/health": {200},  # liveness only: no configuration in it
    "/gateway/openapi.json": {200},  # the public API description
    "/metrics": {200, 401},  # 401 when LLMC_METRICS_TOKEN is set
    "/auth/login": {303},
    "/auth/logout": {303},
    "/auth/oidc/login": {302, 303},  # to the IdP, or back to /login when OIDC is off
    "/auth/oidc/callback": {303},
    "/auth/invite/accept": {303},  # back to /invite?error=...  # back to /login?error=... without a pending sign-in
    "/api/v1/analytics/summary": {401},
    "/api/v1/analytics/timeseries": {401},
    "/api/v1/analytics/by-model": {401},
    "/api/v1/analytics/breakdown": {401},
    "/api/v1/analytics/user-spend": {401},
    "/api/v1/analytics/requests": {401},
    "/api/v1/analytics/requests/export": {401},
    "/api/v1/analytics/requests/{request_id}": {401},
    "/api/v1/analytics": {401, 404, 405},
    "/api/v1/analytics/{rest:path}": {401, 404, 405},
    "/api/v1/openapi.json": {200},
}


def _app_states() -> Iterator[type]:
    stack: list[type] = [State]
    while stack:
        cls = stack.pop()
        stack.extend(cls.get_substates())  # type: ignore[attr-defined]
        if cls.__module__.startswith("llm_console."):
            yield cls


def registered_handlers() -> dict[str, tuple[str, str]]:
    """Every event handler of the app's own states: event name -> (class, handler)."""
    import llm_console.llm_console  # noqa: F401  (registers every state)

    out: dict[str, tuple[str, str]] = {}
    for cls in _app_states():
        for name, handler in cls.event_handlers.items():  # type: ignore[attr-defined]
            out[format_event_handler(handler)] = (cls.__name__, name)
    return out


def expected_role(cls: str, handler: str) -> str:
    if handler == "setvar":
        return NOBODY
    return HANDLERS[cls][handler]


def test_every_handler_is_in_the_matrix_and_declares_that_role() -> None:
    handlers = registered_handlers()
    missing = sorted(f"{c}.{h}" for c, h in handlers.values() if h != "setvar" and h not in HANDLERS.get(c, {}))
    assert missing == [], f"event handlers missing from the RBAC matrix: {missing}"
    stale = sorted(f"{c}.{h}" for c, hs in HANDLERS.items() for h in hs if (c, h) not in handlers.values())
    assert stale == [], f"matrix entries for handlers that no longer exist: {stale}"
    declared, public = event_roles(), public_events()
    for event, (cls, name) in handlers.items():
        want = expected_role(cls, name)
        if want == PUBLIC:
            assert event in public, f"{cls}.{name} should be public"
        elif want == NOBODY:
            assert event not in public and event not in declared, f"{cls}.{name} must be refused to everyone"
        else:
            assert event not in public, f"{cls}.{name} must not be public"
            assert declared.get(event) == want, f"{cls}.{name}: declares {declared.get(event)}, matrix says {want}"


def test_every_page_is_in_the_matrix_and_its_loader_needs_that_role() -> None:
    from llm_console.llm_console import app

    app._apply_decorated_pages()
    pages = dict(app._unevaluated_pages)
    assert sorted(set(pages) - set(PAGES)) == [], "pages missing from the RBAC matrix"
    assert sorted(set(PAGES) - set(pages)) == [], "matrix entries for pages that no longer exist"
    declared = event_roles()
    for route, page in pages.items():
        loaders = page.on_load if isinstance(page.on_load, list) else [page.on_load] if page.on_load else []
        names = [format_event_handler(h) for h in loaders]
        protected = [declared[n] for n in names if n in declared]
        want = PAGES[route]
        if want == PUBLIC:
            assert protected == [], route
        elif protected:
            assert max(protected, key=lambda r: ROLE_RANK[r]) == want, route
        else:  # a page with no data of its own: signed in is enough
            assert want == "viewer" and any(n in public_events() for n in names), route


def test_every_backend_route_is_in_the_matrix() -> None:
    from llm_console.llm_console import app

    paths = {route.path for route in app.api_transformer.routes}  # type: ignore[union-attr]
    assert sorted(paths - set(ROUTES)) == [], "backend routes missing from the RBAC matrix"
    assert sorted(set(ROUTES) - paths) == [], "matrix entries for routes that no longer exist"


@pytest.mark.browser
def test_anonymous_callers_get_what_the_matrix_says_from_every_backend_route(console: Console) -> None:
    from llm_console.llm_console import app

    with httpx.Client(base_url=console.url, follow_redirects=False, timeout=30) as client:
        for route in app.api_transformer.routes:  # type: ignore[union-attr]
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            methods = set(route.methods or {"GET"})
            method = "GET" if "GET" in methods else sorted(methods - {"HEAD"})[0]
            resp = client.request(method, path, content=b"{}" if method == "POST" else None)
            assert resp.status_code in ROUTES[route.path], f"{method} {route.path}: {resp.status_code}"
            assert resp.status_code < 500


ROLE_USERS = {role: (f"rbac-{role}@localhost", f"rbac-{role}-password") for role in ("viewer", "member", "operator")}


def _cookies(console: Console) -> dict[str, str | None]:
    cookies: dict[str, str | None] = {"anonymous": None}
    for role, (email, password) in ROLE_USERS.items():
        env = {**console.env, "RBAC_PW": password}
        done = run_cli(env, "create-admin", email, "--role", role, "--password-env", "RBAC_PW")
        assert done.returncode == 0 or "exists" in done.stderr, done.stderr
        cookies[role] = in_thread(session_cookie(console, email, password))
    cookies["admin"] = in_thread(session_cookie(console, ADMIN_EMAIL, ADMIN_PASSWORD))
    return cookies


async def _emit_all(console: Console, events: list[str], cookie: str | None, sentinel: str) -> None:
    """Every event over one socket, then a sentinel the guard always refuses; wait until it is logged."""
    sio = socketio.AsyncClient(reconnection=False)
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    await sio.connect(
        f"{console.url}?token={uuid.uuid4()}",
        socketio_path="_event",
        transports=["websocket"],
        headers=headers,
        wait_timeout=10,
        namespaces=[NAMESPACE],
    )
    # The sentinel may be among `events` too: wait for its last refusal, not its first (events are handled in
    # order, so every refusal before it is logged by then).
    mark = f"refused event {sentinel} "
    before = console.log.read_text(errors="replace").count(mark)
    want = before + [*events, sentinel].count(sentinel)
    try:
        for name in [*events, sentinel]:
            router = {"pathname": "/", "query": {}, "asPath": "/"}
            await sio.emit("event", {"name": name, "payload": {}, "router_data": router}, namespace=NAMESPACE)
        for _ in range(240):
            await asyncio.sleep(0.5)
            if console.log.read_text(errors="replace").count(mark) >= want:
                break
        await asyncio.sleep(1.0)
    finally:
        await sio.disconnect()


@pytest.mark.browser
def test_each_handler_over_a_real_socket_is_refused_or_served_as_the_matrix_says(console: Console) -> None:
    handlers = registered_handlers()
    calls = {event: expected_role(*owner) for event, owner in handlers.items()}
    calls = {event: role for event, role in calls.items() if role != PUBLIC}
    setvars = [e for e, r in calls.items() if r == NOBODY]
    assert setvars, "expected Reflex's generic setvar handlers in the matrix"
    cookies = _cookies(console)
    problems: list[str] = []
    for role in ROLES:
        start = len(console.log.read_text(errors="replace"))
        in_thread(_emit_all(console, sorted(calls), cookies[role], setvars[0]))
        log = console.log.read_text(errors="replace")[start:]
        refused = set(re.findall(rf"refused event (\S+) for {'anonymous' if role == 'anonymous' else role} ", log))
        for event, want in calls.items():
            should_refuse = want == NOBODY or RANK[role] < RANK[want]
            if should_refuse != (event in refused):
                problems.append(f"{role} {'was served' if should_refuse else 'was refused'} {event} (needs {want})")
    assert problems == [], "\n".join(problems)
