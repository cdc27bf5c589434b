"""The keys page's event handlers called directly, as any connected socket could call them.

Each handler re-checks the caller: a viewer or a stranger changes nothing, a member cannot set limits or
budgets through the form, and the one-time secret is in state only until its dialog is dismissed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlmodel import select

import llm_console.state.key_forms as key_forms_module
import llm_console.state.keys as keys_module
from llm_console.db.engine import session
from llm_console.db.models import Budget, RateLimit, User, VirtualKey
from llm_console.services.keys import hash_key
from llm_console.services.sessions import SessionUser
from llm_console.state.key_forms import KeyFormState
from llm_console.state.keys import KeysState
from tests.services.test_keys_admin import Org, org  # noqa: F401  (the seeded organization fixture)


@dataclass
class FakeCache:
    invalidated: int = 0

    def invalidate(self) -> None:
        self.invalidated += 1


@dataclass
class Page:
    org: Org
    keys: KeysState
    form: KeyFormState
    cache: FakeCache
    who: list[SessionUser | None] = field(default_factory=list)

    def sign_in(self, name: str | None) -> None:
        if name is None:
            self.who[:] = [None]
            return
        with session(self.org.engine) as s:
            user = s.get(User, self.org.ids[name])
            assert user is not None
            self.who[:] = [SessionUser(user.id or 0, user.email, user.name, user.role)]

    def url(self, query: dict[str, str]) -> None:
        as_path = "/keys?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "/keys"
        self.keys.parent_state._update_router_vars(  # type: ignore[union-attr]
            {"pathname": "/keys", "query": query, "asPath": as_path}, {}
        )

    async def call(self, state: Any, handler: str, *args: Any) -> Any:
        return await type(state).event_handlers[handler].fn(state, *args)

    def stored(self, key_id: int) -> VirtualKey:
        with session(self.org.engine) as s:
            row = s.get(VirtualKey, key_id)
        assert row is not None
        return row

    def count(self) -> int:
        with session(self.org.engine) as s:
            return len(list(s.exec(select(VirtualKey))))


@pytest.fixture
def page(org: Org, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:  # noqa: F811
    cache = FakeCache()
    context = SimpleNamespace(engine=org.engine, runtime=SimpleNamespace(keys=cache, config_changed=cache.invalidate))
    monkeypatch.setattr(keys_module, "get_context", lambda: context)
    monkeypatch.setattr(key_forms_module, "get_context", lambda: context)
    root = State(_reflex_internal_init=True)
    keys = root.get_substate(KeysState.get_full_name().split(".")[1:])
    form = root.get_substate(KeyFormState.get_full_name().split(".")[1:])
    p = Page(org, keys, form, cache, [None])

    async def current_user(state: object) -> SessionUser | None:
        return p.who[0]

    monkeypatch.setattr(keys_module, "current_user", current_user)
    p.url({})
    yield p


async def test_lists_only_the_callers_scope(page: Page) -> None:
    page.sign_in("alice")
    assert await page.call(page.keys, "load") is None
    assert {r["name"] for r in page.keys.rows} == {"team-a", "alice"} and page.keys.can_create
    shown = repr(page.keys.rows)
    for key_id in page.org.keys.values():
        assert page.stored(key_id).key_hash not in shown
    assert all(r["prefix"].startswith("sk-llmc-") and r["prefix"].endswith("…") for r in page.keys.rows)
    page.sign_in("vera")
    await page.call(page.keys, "load")
    assert [r["name"] for r in page.keys.rows] == ["team-a"] and not page.keys.can_create
    assert page.keys.rows[0]["manage"] == ""


async def test_filters_live_in_the_url(page: Page) -> None:
    page.sign_in("admin")
    page.url({"q": "team", "status": "active"})
    await page.call(page.keys, "load")
    assert {r["name"] for r in page.keys.rows} == {"team-a", "team-b"}
    assert (page.keys.search, page.keys.status) == ("team", "active")
    spec = await page.call(page.keys, "set_filter", "status", "revoked")
    assert "/keys?q=team&status=revoked" in repr(spec)
    assert await page.call(page.keys, "set_filter", "evil", "x") is None
    assert "/keys?status=active" in repr(await page.call(page.keys, "search_keys", {"q": ""}))


async def test_strangers_get_nothing(page: Page) -> None:
    page.sign_in(None)
    assert "/login" in repr(await page.call(page.keys, "load"))
    assert page.keys.rows == []
    await page.call(page.form, "open_create")
    assert not page.form.open
    await page.call(page.form, "submit", {"name": "x"})
    page.keys.confirm_action, page.keys.confirm_id = "revoke", str(page.org.keys["org"])
    await page.call(page.keys, "confirm")
    assert page.count() == 6 and page.stored(page.org.keys["org"]).revoked_at is None


async def test_viewer_cannot_create_or_revoke(page: Page) -> None:
    page.sign_in("vera")
    await page.call(page.keys, "load")
    await page.call(page.keys, "ask", "revoke", str(page.org.keys["team-a"]))
    assert page.keys.confirm_action == ""
    await page.call(page.form, "open_create")
    assert not page.form.open
    page.form.owner_type, page.form.owner_id = "team", str(page.org.ids["A"])
    await page.call(page.form, "submit", {"name": "x"})
    page.keys.confirm_action, page.keys.confirm_id = "revoke", str(page.org.keys["team-a"])
    await page.call(page.keys, "confirm")
    assert page.count() == 6 and page.stored(page.org.keys["team-a"]).revoked_at is None


async def test_create_shows_the_secret_once(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.keys, "load")
    await page.call(page.form, "open_create")
    assert page.form.open and page.form.owner_id == str(page.org.ids["alice"]) and not page.form.is_admin
    assert [o["label"] for o in page.form.owner_types] == ["User", "Team"]
    await page.call(page.form, "choose_owner_type", "team")
    assert [o["label"] for o in page.form.owner_options] == ["Team A"] and page.form.owner_id == str(page.org.ids["A"])
    await page.call(page.form, "choose_owner", str(page.org.ids["B"]))  # not offered: ignored
    assert page.form.owner_id == str(page.org.ids["A"])
    await page.call(page.form, "toggle_alias", "gpt", True)
    await page.call(page.form, "toggle_alias", "no-such-model", True)
    await page.call(page.form, "submit", {"name": "journey", "expires": ""})

    secret = page.keys.new_secret
    assert secret.startswith("sk-llmc-") and not page.form.open and page.form.error == ""
    with session(page.org.engine) as s:
        made = s.exec(select(VirtualKey).where(VirtualKey.key_hash == hash_key(secret))).one()
    assert (made.name, made.team_id, made.allowed_aliases) == ("journey", page.org.ids["A"], ["gpt"])
    assert "journey" in {r["name"] for r in page.keys.rows} and secret not in repr(page.keys.rows)
    await page.call(page.keys, "dismiss_secret", True)  # the dialog is still open: keep it
    assert page.keys.new_secret == secret
    await page.call(page.keys, "dismiss_secret", False)
    assert page.keys.new_secret == "" and page.keys.secret_title == ""
    page.keys.new_secret = secret  # never dismissed: the next visit (or the next user on this tab) never sees it
    await page.call(page.keys, "load")
    assert page.keys.new_secret == "" and page.keys.secret_title == ""


async def test_form_errors_stay_in_the_dialog(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.form, "open_create")
    await page.call(page.form, "submit", {"name": "x", "expires": "2001-01-01"})
    assert page.form.error == "The expiry date must be in the future." and page.form.open
    await page.call(page.form, "submit", {"name": "   "})
    assert page.form.error == "Give the key a name." and page.keys.new_secret == ""
    assert page.count() == 6


async def test_member_cannot_set_limits_or_budget_through_the_form(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.form, "open_create")
    await page.call(page.form, "submit", {"name": "greedy", "rpm": "100000"})
    assert "Only admins" in page.form.error and page.count() == 6
    key_id = page.org.keys["alice"]
    await page.call(page.form, "open_edit", str(key_id))
    assert page.form.open and page.form.values["name"] == "alice"
    await page.call(page.form, "submit", {"name": "renamed", "daily_usd": "1000000"})
    assert "Only admins" in page.form.error
    assert page.stored(key_id).name == "alice"
    with session(page.org.engine) as s:
        assert s.get(Budget, ("key", key_id)) is None and s.get(RateLimit, ("key", key_id)) is None
    await page.call(page.form, "submit", {"name": "renamed"})  # without them, the edit goes through
    assert page.stored(key_id).name == "renamed" and page.keys.notice == "Saved renamed."


async def test_admin_sets_limits_and_budget(page: Page) -> None:
    page.sign_in("admin")
    await page.call(page.form, "open_create")
    assert page.form.is_admin and [o["label"] for o in page.form.owner_types] == [
        "User",
        "Team",
        "Service account",
        "Organization",
    ]
    await page.call(page.form, "choose_owner_type", "service")
    await page.call(page.form, "submit", {"name": "bot", "rpm": "60", "tpd": "", "daily_usd": "2.5", "monthly_usd": ""})
    assert page.form.error == ""
    with session(page.org.engine) as s:
        made = s.exec(select(VirtualKey).where(VirtualKey.name == "bot")).one()
        limits, budget = s.get(RateLimit, ("key", made.id)), s.get(Budget, ("key", made.id))
    assert made.user_id == page.org.ids["ci-bot"]
    assert limits is not None and (limits.rpm, limits.tpd) == (60, None)
    assert budget is not None and (budget.daily_usd, budget.monthly_usd) == (2.5, None)


async def test_revoke_after_confirmation_and_forget_the_cache(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.keys, "load")
    key_id = str(page.org.keys["team-a"])
    await page.call(page.keys, "ask", "revoke", key_id)
    assert (page.keys.confirm_action, page.keys.confirm_name) == ("revoke", "team-a")
    await page.call(page.keys, "confirm")
    assert page.stored(int(key_id)).revoked_at is not None and page.cache.invalidated == 1
    assert page.keys.confirm_action == "" and page.keys.notice == "Revoked team-a."
    assert next(r for r in page.keys.rows if r["id"] == key_id)["status"] == "revoked"


async def test_member_cannot_revoke_another_teams_key(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.keys, "load")
    other = str(page.org.keys["team-b"])
    await page.call(page.keys, "ask", "revoke", other)  # not on the page: nothing to confirm
    assert page.keys.confirm_action == ""
    page.keys.confirm_action, page.keys.confirm_id, page.keys.confirm_name = "revoke", other, "team-b"
    await page.call(page.keys, "confirm")
    assert page.keys.error == "No such key." and page.stored(int(other)).revoked_at is None
    await page.call(page.form, "open_edit", other)
    assert not page.form.open


async def test_rotate_shows_the_new_secret(page: Page) -> None:
    page.sign_in("alice")
    await page.call(page.keys, "load")
    old = page.org.keys["alice"]
    await page.call(page.keys, "ask", "rotate", str(old))
    await page.call(page.keys, "confirm")
    secret = page.keys.new_secret
    assert secret.startswith("sk-llmc-") and page.keys.secret_title == "New secret for alice"
    assert page.stored(old).revoked_at is not None and page.cache.invalidated == 1
    with session(page.org.engine) as s:
        new = s.exec(select(VirtualKey).where(VirtualKey.key_hash == hash_key(secret))).one()
    assert new.rotated_from_id == old


async def test_editing_offers_the_keys_own_owner(page: Page) -> None:
    from llm_console.services.keys import create_key

    both = create_key(page.org.engine, name="both", actor="t", user_id=page.org.ids["vera"], team_id=page.org.ids["A"])
    page.sign_in("alice")
    await page.call(page.form, "open_edit", str(both.id))
    assert (page.form.owner_type, page.form.owner_id) == ("user", str(page.org.ids["vera"]))
    assert [o["label"] for o in page.form.owner_options] == ["alice", "vera · Team A"]
    await page.call(page.form, "submit", {"name": "both", "expires": ""})
    assert page.form.error == "" and page.cache.invalidated == 1
    stored = page.stored(both.id)
    assert (stored.user_id, stored.team_id) == (page.org.ids["vera"], page.org.ids["A"])
