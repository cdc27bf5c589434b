"""Keys managed from the console: team scope, owners, rotation, limits and budgets (admin-only), expiry,
hostile names, and the 7-day usage figures of the keys page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.logstore import write_batch
from llm_console.db.models import AuditEvent, Budget, Membership, ModelAlias, RateLimit, Team, User, VirtualKey
from llm_console.db.records import LogRecord
from llm_console.presenters.keys import bars, parse_budget, parse_expiry, parse_limits, row
from llm_console.services import key_admin
from llm_console.services.key_admin import (
    KeyBudget,
    KeyLimits,
    KeySpec,
    create_console_key,
    rotate_key,
    set_key_limits,
    update_key,
)
from llm_console.services.key_list import get_key, key_choices, list_keys
from llm_console.services.keys import (
    KeyAdminError,
    KeyPermissionError,
    can_manage_key,
    create_key,
    find_by_hash,
    hash_key,
    revoke_key,
)
from llm_console.services.scope import Scope, scope_for

from .conftest import everything_stored

NOW = datetime(2026, 5, 20, 15, 0, tzinfo=UTC)


@dataclass
class Org:
    engine: Engine
    ids: dict[str, int]
    keys: dict[str, int]

    def scope(self, who: str) -> Scope:
        with session(self.engine) as s:
            user = s.get(User, self.ids[who])
            assert user is not None
            role = user.role
        return scope_for(self.engine, user_id=self.ids[who], role=role)


def _user(s: object, email: str, role: str, kind: str = "person") -> User:
    user = User(email=email, name=email.split("@")[0], role=role, kind=kind)
    s.add(user)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    return user


@pytest.fixture
def org(engine: Engine) -> Org:
    """Two teams: alice (member) and vera (viewer) in A, bob (member) in B; an admin, an operator, a service account,
    two models, and one key for each kind of owner."""
    ids: dict[str, int] = {}
    with session(engine) as s:
        for name, role, kind in [
            ("admin", "admin", "person"),
            ("operator", "operator", "person"),
            ("alice", "member", "person"),
            ("bob", "member", "person"),
            ("vera", "viewer", "person"),
            ("ci-bot", "viewer", "service"),
        ]:
            ids[name] = _user(s, f"{name}@example.com", role, kind).id or 0
        for team in ("A", "B"):
            t = Team(name=f"Team {team}")
            s.add(t)
            s.flush()
            ids[team] = t.id or 0
        for user, team in [("alice", "A"), ("vera", "A"), ("bob", "B")]:
            s.add(Membership(user_id=ids[user], team_id=ids[team]))
        s.add(ModelAlias(alias="gpt"))
        s.add(ModelAlias(alias="llama"))
        s.commit()
    keys = {
        "team-a": create_key(engine, name="team-a", actor="t", team_id=ids["A"]).id,
        "team-b": create_key(engine, name="team-b", actor="t", team_id=ids["B"]).id,
        "alice": create_key(engine, name="alice", actor="t", user_id=ids["alice"]).id,
        "bob": create_key(engine, name="bob", actor="t", user_id=ids["bob"]).id,
        "svc": create_key(engine, name="svc", actor="t", user_id=ids["ci-bot"]).id,
        "org": create_key(engine, name="org", actor="t").id,
    }
    return Org(engine, ids, keys)


def names(org: Org, who: str, **kw: object) -> set[str]:
    return {r.name for r in list_keys(org.engine, org.scope(who), now=NOW, **kw).rows}  # type: ignore[arg-type]


def audit(engine: Engine) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]


def key_row(engine: Engine, key_id: int) -> VirtualKey:
    with session(engine) as s:
        found = s.get(VirtualKey, key_id)
    assert found is not None
    return found


def count_keys(engine: Engine) -> int:
    with session(engine) as s:
        return len(list(s.exec(select(VirtualKey))))


def test_each_role_lists_only_its_scope(org: Org) -> None:
    everything = {"team-a", "team-b", "alice", "bob", "svc", "org"}
    assert names(org, "admin") == names(org, "operator") == everything
    assert names(org, "alice") == {"team-a", "alice"}
    assert names(org, "bob") == {"team-b", "bob"}
    assert names(org, "vera") == {"team-a"}
    page = list_keys(org.engine, org.scope("alice"), now=NOW)
    assert page.total == 2 and all(r.can_manage for r in page.rows)
    assert not any(r.can_manage for r in list_keys(org.engine, org.scope("vera"), now=NOW).rows)
    assert get_key(org.engine, org.scope("alice"), org.keys["team-b"]) is None
    assert get_key(org.engine, org.scope("alice"), org.keys["team-a"]) is not None


def test_owners_are_named(org: Org) -> None:
    rows = {r.name: r for r in list_keys(org.engine, org.scope("admin"), now=NOW).rows}
    assert (rows["team-a"].owner_type, rows["team-a"].owner) == ("team", "Team A")
    assert (rows["alice"].owner_type, rows["alice"].owner) == ("user", "alice")
    assert (rows["svc"].owner_type, rows["svc"].owner) == ("service", "ci-bot")
    assert (rows["org"].owner_type, rows["org"].owner) == ("", "")


def test_member_cannot_touch_another_teams_keys(org: Org) -> None:
    alice, engine = org.scope("alice"), org.engine
    before = len(audit(engine))
    for key in ("team-b", "bob", "svc", "org"):
        with pytest.raises(KeyAdminError, match="No such key"):
            revoke_key(engine, org.keys[key], actor="alice", scope=alice)
        with pytest.raises(KeyAdminError, match="No such key"):
            rotate_key(engine, org.keys[key], scope=alice, actor="alice")
        with pytest.raises(KeyAdminError, match="No such key"):
            update_key(engine, org.keys[key], KeySpec("mine", "user", org.ids["alice"]), scope=alice, actor="alice")
        assert key_row(engine, org.keys[key]).revoked_at is None
    assert len(audit(engine)) == before and count_keys(engine) == 6


def test_viewer_reads_but_cannot_change(org: Org) -> None:
    vera = org.scope("vera")
    with pytest.raises(KeyPermissionError, match="Viewers cannot revoke"):
        revoke_key(org.engine, org.keys["team-a"], actor="vera", scope=vera)
    with pytest.raises(KeyPermissionError):
        rotate_key(org.engine, org.keys["team-a"], scope=vera, actor="vera")
    with pytest.raises(KeyPermissionError, match="Viewers cannot create"):
        create_console_key(org.engine, KeySpec("v", "team", org.ids["A"]), scope=vera, actor="vera")
    assert not can_manage_key(vera, key_row(org.engine, org.keys["team-a"]))
    assert key_row(org.engine, org.keys["team-a"]).revoked_at is None


def test_member_manages_own_and_team_keys(org: Org) -> None:
    alice = org.scope("alice")
    assert revoke_key(org.engine, org.keys["team-a"], actor="alice@example.com", scope=alice) is True
    assert revoke_key(org.engine, org.keys["team-a"], actor="alice@example.com", scope=alice) is False
    minted = rotate_key(org.engine, org.keys["alice"], scope=alice, actor="alice@example.com")
    assert key_row(org.engine, minted.id).user_id == org.ids["alice"]


@pytest.mark.parametrize(
    ("owner_type", "owner", "message"),
    [
        ("team", "B", "yourself or for teams you belong to"),
        ("user", "bob", "yourself or for teams you belong to"),
        ("user", "admin", "yourself or for teams you belong to"),
        ("service", "ci-bot", "yourself or for teams you belong to"),
    ],
)
def test_member_cannot_create_for_others(org: Org, owner_type: str, owner: str, message: str) -> None:
    spec = KeySpec("sneaky", owner_type, org.ids[owner])
    with pytest.raises(KeyPermissionError, match=message):
        create_console_key(org.engine, spec, scope=org.scope("alice"), actor="alice")
    assert count_keys(org.engine) == 6
    assert not any(e.action == "key.create" and e.actor == "alice" for e in audit(org.engine))


def test_owner_choices_follow_the_scope(org: Org) -> None:
    mine = key_choices(org.engine, org.scope("alice"))
    assert [c.label for c in mine.users] == ["alice"] and [c.label for c in mine.teams] == ["Team A"]
    assert mine.services == [] and mine.aliases == ["gpt", "llama"]
    every = key_choices(org.engine, org.scope("operator"))
    assert {c.label for c in every.users} == {"admin", "operator", "alice", "bob", "vera"}
    assert [c.label for c in every.teams] == ["Team A", "Team B"] and [c.label for c in every.services] == ["ci-bot"]


def test_member_creates_for_self_and_team(org: Org) -> None:
    alice = org.scope("alice")
    own = create_console_key(org.engine, KeySpec(" mine ", "user", org.ids["alice"]), scope=alice, actor="alice")
    team = create_console_key(
        org.engine, KeySpec("team", "team", org.ids["A"], ("llama", "gpt", "gpt")), scope=alice, actor="alice"
    )
    assert (key_row(org.engine, own.id).name, key_row(org.engine, own.id).user_id) == ("mine", org.ids["alice"])
    stored = key_row(org.engine, team.id)
    assert (stored.team_id, stored.user_id, stored.allowed_aliases, stored.created_by) == (
        org.ids["A"],
        None,
        ["gpt", "llama"],
        "alice",
    )
    with pytest.raises(KeyAdminError, match="No model named 'claude'"):
        create_console_key(org.engine, KeySpec("x", "user", org.ids["alice"], ("claude",)), scope=alice, actor="a")
    with pytest.raises(KeyAdminError, match="service account does not exist"):
        create_console_key(org.engine, KeySpec("x", "service", org.ids["bob"]), scope=org.scope("admin"), actor="a")
    with pytest.raises(KeyAdminError, match="Choose who owns"):
        create_console_key(org.engine, KeySpec("x", "robot", 1), scope=org.scope("admin"), actor="a")


def test_secret_is_never_stored_nor_audited(org: Org, db_path: Path) -> None:
    admin = org.scope("admin")
    spec = KeySpec("ci", "service", org.ids["ci-bot"])
    minted = create_console_key(org.engine, spec, scope=admin, actor="admin", limits=KeyLimits(rpm=5))
    rotated = rotate_key(org.engine, minted.id, scope=admin, actor="admin")
    stored = everything_stored(org.engine, db_path)
    for secret in (minted.secret, rotated.secret):
        assert secret.encode() not in stored and secret[14:].encode() not in stored
        assert key_row(org.engine, find_by_hash(org.engine, hash_key(secret)).id).prefix == secret[:14]  # type: ignore[union-attr]
    trail = repr([e.model_dump() for e in audit(org.engine)])
    for secret in (minted.secret, rotated.secret):
        assert secret not in trail and hash_key(secret) not in trail and secret[14:20] not in trail


def test_rotate_keeps_everything_but_the_secret(org: Org) -> None:
    admin = org.scope("admin")
    spec = KeySpec("prod", "team", org.ids["A"], ("gpt",), NOW + timedelta(days=30))
    limits, budget = KeyLimits(rpm=60, tpd=1_000_000), KeyBudget(5.0, 100.0)
    old = create_console_key(org.engine, spec, scope=admin, actor="admin", limits=limits, budget=budget, now=NOW)
    new = rotate_key(org.engine, old.id, scope=org.scope("alice"), actor="alice@example.com", now=NOW)

    was, now = key_row(org.engine, old.id), key_row(org.engine, new.id)
    assert was.revoked_at is not None and now.revoked_at is None and now.rotated_from_id == old.id
    assert (now.name, now.team_id, now.user_id, now.allowed_aliases) == ("prod", org.ids["A"], None, ["gpt"])
    assert now.expires_at is not None and now.expires_at.replace(tzinfo=UTC) == NOW + timedelta(days=30)
    assert new.secret != old.secret and new.prefix != old.prefix
    with session(org.engine) as s:
        rl = s.get(RateLimit, ("key", new.id))
        b = s.get(Budget, ("key", new.id))
    assert rl is not None and (rl.rpm, rl.tpm, rl.rpd, rl.tpd) == (60, None, None, 1_000_000)
    assert b is not None and (b.daily_usd, b.monthly_usd) == (5.0, 100.0)
    trail = [(e.action, e.target_id, e.actor) for e in audit(org.engine) if e.actor == "alice@example.com"]
    assert trail == [
        ("key.rotate", str(new.id), "alice@example.com"),
        ("key.revoke", str(old.id), "alice@example.com"),
        ("limits.set", f"key:{new.id}", "alice@example.com"),
        ("budget.set", f"key:{new.id}", "alice@example.com"),
    ]
    rotate_event = next(e for e in audit(org.engine) if e.action == "key.rotate")
    assert rotate_event.after is not None and rotate_event.after["rotated_from_id"] == old.id
    with pytest.raises(KeyAdminError, match="revoked"):
        rotate_key(org.engine, old.id, scope=admin, actor="admin")


def test_rotate_is_one_transaction(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = org.scope("admin")
    key = create_console_key(
        org.engine, KeySpec("k", "team", org.ids["A"]), scope=admin, actor="a", budget=KeyBudget(1.0, None)
    )
    events, keys = len(audit(org.engine)), count_keys(org.engine)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(key_admin, "put_budget", boom)  # the last write of the rotation
    with pytest.raises(RuntimeError):
        rotate_key(org.engine, key.id, scope=admin, actor="a")
    assert key_row(org.engine, key.id).revoked_at is None
    assert count_keys(org.engine) == keys and len(audit(org.engine)) == events


def test_rotating_an_expired_key_is_refused(org: Org) -> None:
    admin = org.scope("admin")
    key = create_key(org.engine, name="old", actor="t", team_id=org.ids["A"], expires_at=NOW - timedelta(days=1))
    with pytest.raises(KeyAdminError, match="expired"):
        rotate_key(org.engine, key.id, scope=admin, actor="a", now=NOW)


def test_expiry_must_be_in_the_future(org: Org) -> None:
    admin = org.scope("admin")

    def spec(when: datetime | None) -> KeySpec:
        return KeySpec("k", "user", org.ids["admin"], expires_at=when)

    for when in (NOW, NOW - timedelta(seconds=1), parse_expiry("2026-05-20")):
        with pytest.raises(KeyAdminError, match="in the future"):
            create_console_key(org.engine, spec(when), scope=admin, actor="a", now=NOW)
    assert count_keys(org.engine) == 6
    ok = create_console_key(org.engine, spec(parse_expiry("2026-05-21")), scope=admin, actor="a", now=NOW)
    stored = key_row(org.engine, ok.id).expires_at
    assert stored is not None and stored.replace(tzinfo=UTC) == datetime(2026, 5, 21, tzinfo=UTC)
    with pytest.raises(KeyAdminError, match="in the future"):
        update_key(org.engine, ok.id, spec(NOW), scope=admin, actor="a", now=NOW)
    update_key(org.engine, ok.id, spec(None), scope=admin, actor="a", now=NOW)  # clearing the expiry is fine
    assert key_row(org.engine, ok.id).expires_at is None
    assert parse_expiry("") is None and parse_expiry("2030-01-02") == datetime(2030, 1, 2, tzinfo=UTC)
    with pytest.raises(KeyAdminError, match="YYYY-MM-DD"):
        parse_expiry("next tuesday")


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "'; DROP TABLE virtual_keys; --", "100%_off", "é 🔑"],
)
def test_hostile_names_are_kept_as_text(org: Org, name: str) -> None:
    minted = create_console_key(org.engine, KeySpec(name, "team", org.ids["A"]), scope=org.scope("alice"), actor="a")
    listed = list_keys(org.engine, org.scope("alice"), search=name, now=NOW)
    assert [r.name for r in listed.rows] == [name] and listed.rows[0].id == minted.id
    assert row(listed.rows[0], listed.days)["name"] == name
    assert count_keys(org.engine) == 7


@pytest.mark.parametrize(("name", "message"), [("", "Give the key a name"), ("a\x00b", "control"), ("x" * 201, "200")])
def test_bad_names_are_refused(org: Org, name: str, message: str) -> None:
    with pytest.raises(KeyAdminError, match=message):
        create_console_key(org.engine, KeySpec(name, "team", org.ids["A"]), scope=org.scope("alice"), actor="a")


def test_search_escapes_like_wildcards(org: Org) -> None:
    admin = org.scope("admin")
    create_console_key(org.engine, KeySpec("50%_discount", "team", org.ids["A"]), scope=admin, actor="a")
    assert names(org, "admin", search="%") == {"50%_discount"}
    assert names(org, "admin", search="_") == {"50%_discount"}  # "_" matches itself, not any character
    assert names(org, "admin", search="TEAM") == {"team-a", "team-b"}
    prefix = key_row(org.engine, org.keys["bob"]).prefix
    assert names(org, "admin", search=prefix) == {"bob"}


def test_status_filter_and_pages(org: Org) -> None:
    admin = org.scope("admin")
    revoke_key(org.engine, org.keys["bob"], actor="t")
    create_key(org.engine, name="stale", actor="t", expires_at=NOW - timedelta(hours=1))
    create_key(org.engine, name="later", actor="t", expires_at=NOW + timedelta(hours=1))
    assert names(org, "admin", status="revoked") == {"bob"}
    assert names(org, "admin", status="expired") == {"stale"}
    assert names(org, "admin", status="active") == {"team-a", "team-b", "alice", "svc", "org", "later"}
    assert names(org, "admin", status="bogus") == names(org, "admin", status="all")
    statuses = {r.name: r.status for r in list_keys(org.engine, admin, now=NOW).rows}
    assert (statuses["bob"], statuses["stale"], statuses["later"]) == ("revoked", "expired", "active")
    for i in range(25):
        create_key(org.engine, name=f"bulk-{i:02d}", actor="t")
    first = list_keys(org.engine, admin, page=1, page_size=25, now=NOW)
    second = list_keys(org.engine, admin, page=2, page_size=25, now=NOW)
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (33, 2, 25, 8)
    assert not {r.id for r in first.rows} & {r.id for r in second.rows}
    assert first.rows[0].name == "bulk-24"  # newest first
    assert list_keys(org.engine, admin, page=99, page_size=25, now=NOW).page == 2


def test_limits_and_budgets_are_admin_only(org: Org) -> None:
    alice, operator = org.scope("alice"), org.scope("operator")
    own = create_console_key(org.engine, KeySpec("mine", "user", org.ids["alice"]), scope=alice, actor="alice")
    events = len(audit(org.engine))
    for scope in (alice, operator):
        with pytest.raises(KeyPermissionError, match="Only admins"):
            set_key_limits(org.engine, own.id, scope=scope, actor="x", budget=KeyBudget(1000.0, None))
        with pytest.raises(KeyPermissionError, match="Only admins"):
            set_key_limits(org.engine, own.id, scope=scope, actor="x", limits=KeyLimits(rpm=10_000))
        with pytest.raises(KeyPermissionError, match="Only admins"):
            update_key(
                org.engine,
                own.id,
                KeySpec("renamed", "user", org.ids["alice"]),
                scope=scope,
                actor="x",
                budget=KeyBudget(None, 1e6),
            )
        with pytest.raises(KeyPermissionError, match="Only admins"):
            create_console_key(
                org.engine, KeySpec("new", "team", org.ids["A"]), scope=scope, actor="x", limits=KeyLimits(tpm=5)
            )
    assert len(audit(org.engine)) == events and count_keys(org.engine) == 7
    assert key_row(org.engine, own.id).name == "mine"
    with session(org.engine) as s:
        assert s.get(Budget, ("key", own.id)) is None and s.get(RateLimit, ("key", own.id)) is None

    admin = org.scope("admin")
    set_key_limits(org.engine, own.id, scope=admin, actor="boss", limits=KeyLimits(rpm=10), budget=KeyBudget(2.5))
    set_key_limits(org.engine, own.id, scope=admin, actor="boss", limits=KeyLimits(rpm=10))  # unchanged: no event
    listed = get_key(org.engine, alice, own.id)
    assert listed is not None and listed.limits == KeyLimits(rpm=10) and listed.budget == KeyBudget(2.5, None)
    shown = row(listed, (NOW,) * 7)
    assert (shown["limits"], shown["budget"]) == ("10 RPM", "$2.50/day")
    set_key_limits(org.engine, own.id, scope=admin, actor="boss", limits=KeyLimits(), budget=KeyBudget())
    assert [e.action for e in audit(org.engine)[events:]] == [
        "limits.set",
        "budget.set",
        "limits.clear",
        "budget.clear",
    ]
    with session(org.engine) as s:
        assert s.get(Budget, ("key", own.id)) is None and s.get(RateLimit, ("key", own.id)) is None


def test_member_edit_without_limits_keeps_the_admins_limits(org: Org) -> None:
    admin, alice = org.scope("admin"), org.scope("alice")
    key = create_console_key(
        org.engine, KeySpec("k", "team", org.ids["A"]), scope=admin, actor="a", limits=KeyLimits(rpm=3)
    )
    update_key(org.engine, key.id, KeySpec("renamed", "user", org.ids["alice"], ("gpt",)), scope=alice, actor="al")
    stored = key_row(org.engine, key.id)
    assert (stored.name, stored.user_id, stored.team_id, stored.allowed_aliases) == (
        "renamed",
        org.ids["alice"],
        None,
        ["gpt"],
    )
    with session(org.engine) as s:
        kept = s.get(RateLimit, ("key", key.id))
    assert kept is not None and kept.rpm == 3
    event = audit(org.engine)[-1]
    assert event.action == "key.update" and event.actor == "al"
    assert event.before == {"name": "k", "allowed_aliases": [], "user_id": None, "team_id": org.ids["A"]}
    assert event.after == {"name": "renamed", "allowed_aliases": ["gpt"], "user_id": org.ids["alice"], "team_id": None}
    with pytest.raises(KeyPermissionError):  # now alice's own key: she may not hand it to team B
        update_key(org.engine, key.id, KeySpec("renamed", "team", org.ids["B"]), scope=alice, actor="al")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"rpm": "ten"}, "RPM must be a whole number"),
        ({"tpm": "1.5"}, "TPM must be a whole number"),
        ({"rpd": "0"}, "RPD must be a whole number above 0"),
        ({"tpd": "-4"}, "TPD must be a whole number above 0"),
        ({"daily_usd": "lots"}, "daily budget must be an amount"),
        ({"monthly_usd": "-1"}, "monthly budget must be between"),
        ({"monthly_usd": "nan"}, "monthly budget must be an amount"),
        ({"daily_usd": "1e99"}, "daily budget must be between"),
    ],
)
def test_form_numbers_are_checked(form: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):  # KeyAdminError (parsing) or LimitsError (range)
        parse_limits(form)
        parse_budget(form)


def test_form_numbers_parse() -> None:
    assert parse_limits({"rpm": " 60 ", "tpm": "", "rpd": "1,000"}) == KeyLimits(rpm=60, rpd=1000)
    assert parse_budget({"daily_usd": "$2.50", "monthly_usd": ""}) == KeyBudget(2.5, None)
    assert parse_limits({}) == KeyLimits() and parse_budget({}) == KeyBudget()


def _records(key_id: int, day: datetime, n: int) -> list[LogRecord]:
    return [
        LogRecord(
            id=str(uuid.uuid4()), created_at=day + timedelta(minutes=i), endpoint="/v1/chat/completions", key_id=key_id
        )
        for i in range(n)
    ]


def test_sparkline_counts_come_from_the_daily_rollups(org: Org) -> None:
    a, b = org.keys["team-a"], org.keys["alice"]
    today = datetime(2026, 5, 20, tzinfo=UTC)
    write_batch(
        org.engine,
        [
            *_records(a, today - timedelta(days=6, hours=-1), 2),  # the oldest day shown
            *_records(a, today - timedelta(days=2, hours=-3), 5),
            *_records(a, today + timedelta(hours=9), 3),  # today, before NOW
            *_records(a, today - timedelta(days=7, hours=-12), 40),  # eight days ago: not shown
            *_records(b, today - timedelta(days=1, hours=-23), 1),
            *_records(org.keys["team-b"], today, 9),  # another team's key: not on alice's page
        ],
    )
    page = list_keys(org.engine, org.scope("alice"), now=NOW)
    counts = {r.name: r.daily_requests for r in page.rows}
    assert counts == {"team-a": (2, 0, 0, 0, 5, 0, 3), "alice": (0, 0, 0, 0, 0, 1, 0)}
    assert page.days[0] == today - timedelta(days=6) and page.days[-1] == today
    shown = {r.name: row(r, page.days) for r in page.rows}
    assert shown["team-a"]["requests_7d"] == "10" and shown["team-a"]["bar4"] == "22px"
    assert shown["team-a"]["bar0"] == "9px" and shown["team-a"]["bar1"] == "1px"
    assert "May 14 2" in shown["team-a"]["spark_label"] and "May 20 3" in shown["team-a"]["spark_label"]
    assert bars((0, 0)) == {"bar0": "1px", "bar1": "1px"}


def test_the_sparkline_is_one_query_for_the_whole_page(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event

    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "usage_rollups" in statement:
            seen.append(statement)

    event.listen(org.engine, "before_cursor_execute", count)
    try:
        for i in range(20):
            create_key(org.engine, name=f"k{i}", actor="t")
        list_keys(org.engine, org.scope("admin"), now=NOW)
    finally:
        event.remove(org.engine, "before_cursor_execute", count)
    assert len(seen) == 1


def test_organization_keys_are_for_operators_and_admins(org: Org) -> None:
    made = create_console_key(org.engine, KeySpec("shared", "org", 0), scope=org.scope("operator"), actor="op")
    stored = key_row(org.engine, made.id)
    assert (stored.user_id, stored.team_id) == (None, None)
    with pytest.raises(KeyPermissionError):
        create_console_key(org.engine, KeySpec("shared", "org", 0), scope=org.scope("alice"), actor="alice")
    assert key_choices(org.engine, org.scope("admin")).organization
    assert not key_choices(org.engine, org.scope("alice")).organization


def test_an_unchanged_owner_keeps_both_user_and_team(org: Org) -> None:
    both = create_key(org.engine, name="both", actor="t", user_id=org.ids["vera"], team_id=org.ids["A"])
    alice = org.scope("alice")  # manages it through team A, though vera is its user
    update_key(org.engine, both.id, KeySpec("both-renamed", "user", org.ids["vera"]), scope=alice, actor="al")
    stored = key_row(org.engine, both.id)
    assert (stored.name, stored.user_id, stored.team_id) == ("both-renamed", org.ids["vera"], org.ids["A"])
    with pytest.raises(KeyPermissionError):  # but she may not hand it to another person
        update_key(org.engine, both.id, KeySpec("x", "user", org.ids["bob"]), scope=alice, actor="al")


def test_a_deactivated_owners_keys_stop_working(engine: Engine) -> None:
    from llm_console.services.users import create_user

    user = create_user(engine, email="leaver@example.com", password=None, role="member", actor="t")
    minted = create_key(engine, name="leaver", actor="t", user_id=user.id)
    found = find_by_hash(engine, hash_key(minted.secret))
    assert found is not None and found.revoked_at is None
    with session(engine) as s:
        row = s.get(User, user.id)
        assert row is not None
        row.is_active = False
        s.add(row)
        s.commit()
    found = find_by_hash(engine, hash_key(minted.secret))
    assert found is not None and found.revoked_at is not None
    with session(engine) as s:  # reported revoked, not written: reactivating the owner revives the key
        stored = s.get(VirtualKey, minted.id)
        assert stored is not None and stored.revoked_at is None


def test_a_members_team_role_decides_whether_they_act_for_the_team(org: Org) -> None:
    """Alice is a console member but only a viewer *in* team A: she reads its keys and may not act for it."""
    with session(org.engine) as s:
        row = s.get(Membership, (org.ids["alice"], org.ids["A"]))
        assert row is not None
        row.role = "viewer"
        s.add(row)
        s.commit()
    alice = org.scope("alice")
    assert "team-a" in names(org, "alice")  # still visible
    with pytest.raises(KeyPermissionError):
        revoke_key(org.engine, org.keys["team-a"], actor="alice@example.com", scope=alice)
    with pytest.raises(KeyPermissionError, match="teams you belong to"):
        create_console_key(org.engine, KeySpec("t", "team", org.ids["A"]), scope=alice, actor="alice")
    assert [c.label for c in key_choices(org.engine, alice).teams] == []
    assert key_row(org.engine, org.keys["team-a"]).revoked_at is None
    assert revoke_key(org.engine, org.keys["alice"], actor="alice@example.com", scope=alice) is True  # her own
