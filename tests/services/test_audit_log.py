"""Browsing the audit trail: filters, keyset pages newest first, secrets masked at any depth."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from reflex.istate.data import RouterData
from sqlalchemy.engine import Engine

from llm_console.auth.policy import ATTR
from llm_console.db.engine import session
from llm_console.db.models import AuditEvent, utcnow
from llm_console.services.audit import is_secret_key, mask, record
from llm_console.services.audit_log import AuditFilters, browse, diff, filter_options, get_event, parse_params
from llm_console.services.sessions import SessionUser
from llm_console.state import audit as audit_state_module
from llm_console.state import organization as org_state
from llm_console.state.audit import AuditState

WHOLE_KEY = "sk-llmc-" + "A" * 43


def add(engine: Engine, n: int, **kw: object) -> None:
    with session(engine) as s:
        for i in range(n):
            s.add(
                AuditEvent(
                    actor=str(kw.get("actor", "root@example.com")),
                    action=str(kw.get("action", "user.role")),
                    target_type=str(kw.get("target_type", "user")),
                    target_id=str(kw.get("target_id", i)),
                    created_at=kw.get("created_at", utcnow()),  # type: ignore[arg-type]
                    before=kw.get("before"),  # type: ignore[arg-type]
                    after=kw.get("after"),  # type: ignore[arg-type]
                )
            )
        s.commit()


def test_keyset_pages_newest_first_without_gaps_or_repeats(engine: Engine) -> None:
    add(engine, 23)
    seen: list[int] = []
    cursor = ""
    while True:
        page = browse(engine, AuditFilters(), cursor=cursor, limit=10)
        seen += [r.id for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 23
    assert browse(engine, AuditFilters(), cursor="not-a-number", limit=5).rows[0].id == seen[0]


def test_filters_by_actor_action_prefix_target_and_time(engine: Engine) -> None:
    add(engine, 2, actor="Ana@example.com", action="team.member.add", target_type="team", target_id="7")
    add(engine, 3, actor="bob@example.com", action="key.create", target_type="virtual_key")
    add(engine, 1, actor="bob@example.com", action="key_other", created_at=utcnow() - timedelta(days=3))

    def count(**kw: object) -> int:
        return len(browse(engine, AuditFilters(**kw), limit=100).rows)  # type: ignore[arg-type]

    assert count(actor="ana@example.com") == 2
    assert count(action="team.") == 2
    assert count(action="key.") == 3  # the prefix is literal: "key_other" does not match "key."
    assert count(action="key_") == 1 and count(action="%") == 0
    assert count(target_type="team", target_id="7") == 2
    assert count(start=utcnow() - timedelta(days=1)) == 5
    assert count(end=utcnow() - timedelta(days=1)) == 1
    assert count(actor="' OR 1=1 --") == 0
    assert filter_options(engine) == {
        "actor": ["Ana@example.com", "bob@example.com"],
        "type": ["team", "user", "virtual_key"],
    }


def test_url_parameters_are_validated() -> None:
    now = utcnow()
    parsed = parse_params({"actor": "a@x", "action": "user.", "type": "user", "target": "3", "range": "7d"}, now=now)
    f = parsed.filters
    assert (f.actor, f.action, f.target_type, f.target_id, f.start, f.end) == (
        "a@x",
        "user.",
        "user",
        "3",
        now - timedelta(days=7),
        None,
    )
    assert parsed.query_string(cursor="5") == "actor=a%40x&action=user.&type=user&target=3&range=7d&cursor=5"

    assert parse_params({}).range_name == "all" and parse_params({}).filters.start is None
    bad = parse_params({"range": "forever", "cursor": "1;DROP", "actor": "a\x00"})
    assert bad.range_name == "all" and "cursor" not in bad.params and "actor" not in bad.params
    assert len(bad.errors) == 3
    custom = parse_params({"from": "2026-01-01T00:00", "to": "2026-01-02T00:00"})
    assert custom.range_name == "custom" and custom.filters.start is not None
    backwards = parse_params({"from": "2026-01-02T00:00", "to": "2026-01-01T00:00"})
    assert backwards.range_name == "all" and backwards.errors


def test_secrets_are_masked_again_at_any_depth_when_read(engine: Engine) -> None:
    # An event written before masking covered nested fields (bypassing record()).
    add(
        engine,
        1,
        action="provider.update",
        before={"settings": {"headers": [{"Authorization": "Bearer abc"}], "client_secret": "s3"}, "api_key": "old"},
        after={
            "settings": {"nested": {"deeper": {"password": "hunter2"}}},
            "note": WHOLE_KEY,
            "prefix": "sk-llmc-abcdef",
        },
    )
    (entry,) = browse(engine, AuditFilters()).rows
    text = repr((entry.before, entry.after))
    for secret in ("Bearer abc", "s3", "old", "hunter2", WHOLE_KEY):
        assert secret not in text
    assert entry.after is not None and entry.after["prefix"] == "sk-llmc-abcdef"  # a display prefix is not a secret
    assert get_event(engine, entry.id) == entry
    assert "hunter2" not in repr(diff(entry.before, entry.after))


def test_record_masks_nested_secrets_and_keeps_the_old_behaviour(engine: Engine) -> None:
    assert mask({"api_key": "x", "password": "", "token": None, "name": "n"}) == {
        "api_key": "***",
        "password": "",
        "token": None,
        "name": "n",
    }
    assert mask(None) is None
    assert not is_secret_key("max_tokens") and not is_secret_key("prompt_tokens") and is_secret_key("metrics_token")
    with session(engine) as s:
        record(s, actor="a", action="x", target_type="t", after={"upstream": {"api_key": "deep-secret"}})
        s.commit()
    (entry,) = browse(engine, AuditFilters()).rows
    assert entry.after == {"upstream": {"api_key": "***"}}


def test_diff_marks_added_removed_changed_and_same() -> None:
    lines = diff({"role": "viewer", "email": "a@x", "gone": 1}, {"role": "admin", "email": "a@x", "new": [1, 2]})
    assert [(d.field, d.before, d.after, d.change) for d in lines] == [
        ("role", "viewer", "admin", "changed"),
        ("email", "a@x", "a@x", "same"),
        ("gone", "1", "", "removed"),
        ("new", "", "[1, 2]", "added"),
    ]
    assert diff(None, None) == []
    assert len(diff({"big": "x" * 10_000}, None)[0].before) <= 2001


def audit_state(engine: Engine, monkeypatch: pytest.MonkeyPatch, role: str | None, query: str) -> AuditState:
    async def signed_in(_state: object) -> SessionUser | None:
        return None if role is None else SessionUser(1, f"{role}@example.com", "", role)

    monkeypatch.setattr(org_state, "current_user", signed_in)
    monkeypatch.setattr(audit_state_module, "get_context", lambda: SimpleNamespace(engine=engine))
    state = AuditState(_reflex_internal_init=True)
    router = RouterData.from_router_data(
        {"headers": {"origin": "http://console.test"}, "pathname": "/audit", "asPath": f"/audit?{query}"}
    )
    object.__setattr__(state, "router", router)
    return state


@pytest.mark.parametrize("role", [None, "viewer", "member"])
async def test_the_audit_page_is_for_operators_and_admins(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, role: str | None
) -> None:
    add(engine, 3, before={"password": "pw"})
    state = audit_state(engine, monkeypatch, role, "")
    await AuditState.event_handlers["load"].fn(state)
    assert not state.ready and state.rows == []
    assert getattr(AuditState.event_handlers["load"].fn, ATTR) == "operator"


async def test_the_audit_page_loads_filters_and_opens_an_event(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    add(engine, 60, action="user.role", before={"role": "viewer"}, after={"role": "admin", "token": "t0ps3cret"})
    add(engine, 2, action="team.create", target_type="team")
    state = audit_state(engine, monkeypatch, "operator", "action=user.&id=1")
    await AuditState.event_handlers["load"].fn(state)

    assert state.ready and len(state.rows) == 50 and state.next_cursor
    assert {r["action"] for r in state.rows} == {"user.role"}
    assert state.current["action"] == "user." and state.detail_open and state.detail["id"] == "1"
    assert ("role", "viewer", "admin", "changed") in [
        (c["field"], c["before"], c["after"], c["change"]) for c in state.changes
    ]
    assert "t0ps3cret" not in repr(state.changes) and state.types == ["team", "user"]
