"""Alert rules: readable refusals for bad input, the webhook URL encrypted at rest and shown masked, audited changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.crypto import SecretBox
from llm_console.db.alert_tables import AlertRule
from llm_console.db.models import AuditEvent
from llm_console.services.alerts_rules import (
    AlertError,
    RuleInput,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    set_rule_enabled,
    update_rule,
    webhook_url,
)
from tests.db.seeding import add_rows, directory_rows
from tests.services.conftest import everything_stored

HOOK = "https://hooks.slack.com/services/T0AAAA/B0BBBB/XyZsecretTokenValue123"


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    add_rows(engine, *directory_rows())
    return engine


def form(**kw: str) -> dict[str, str]:
    return {
        "name": "errors",
        "kind": "error_rate",
        "threshold": "5",
        "window_minutes": "5",
        "min_requests": "10",
        "scope_type": "all",
        "cooldown_minutes": "30",
        "notify_resolved": "on",
        **kw,
    }


def create(engine: Engine, box: SecretBox, **kw: str) -> int:
    return create_rule(engine, box, RuleInput.from_form(form(**kw)), actor="ops@example.com").id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"webhook_url": "ftp://hooks.example.com/x"}, "must start with https://"),
        ({"webhook_url": "hooks.slack.com/services/x"}, "must start with https://"),
        ({"webhook_url": "https://user:pw@hooks.example.com/x"}, "no user name or password"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "link-local"),
        ({"webhook_url": "https://"}, "no host name"),
        ({"email_to": "oncall@example.com, not-an-address"}, "'not-an-address' is not an e-mail address"),
        ({"email_to": "a@b.example\r\nBcc: x@evil.example"}, "is not an e-mail address"),
        ({"threshold": "-5"}, "threshold must be more than 0"),
        ({"threshold": "0"}, "threshold must be more than 0"),
        ({"threshold": "120"}, "at most 100%"),
        ({"threshold": ""}, "a threshold is required"),
        ({"threshold": "five"}, "threshold must be a number, got 'five'"),
        ({"threshold": "nan"}, "threshold must be a finite number"),
        ({"window_minutes": "0"}, "window (minutes) must be between 1 and 1440"),
        ({"cooldown_minutes": "-1"}, "cool-down (minutes) must be between 1"),
        ({"min_requests": "1.5"}, "minimum requests must be a whole number"),
        ({"kind": "cpu"}, "kind must be one of"),
        ({"name": "  "}, "name must be 1-200"),
        ({"scope_type": "team"}, "watches one of: all traffic, model alias, deployment"),
        ({"scope_type": "alias", "scope_value": "no-such-alias"}, "no model alias named 'no-such-alias'"),
        ({"scope_type": "all", "scope_value": "gpt"}, "choose what the value narrows to"),
        ({"kind": "budget_warning", "scope_type": "team", "scope_value": "nobody"}, "no team named 'nobody'"),
        ({"kind": "budget_warning", "scope_type": "user", "scope_value": "999"}, "no user with id 999"),
        ({"kind": "latency", "threshold": "500", "percentile": "42"}, "percentile must be one of 50, 90, 95, 99"),
    ],
)
def test_bad_input_is_refused_with_a_readable_reason(
    seeded: Engine, box: SecretBox, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(AlertError) as refused:
        create(seeded, box, **fields)
    assert message in str(refused.value)
    assert list_rules(seeded) == []


def test_duplicate_names_are_refused(seeded: Engine, box: SecretBox) -> None:
    create(seeded, box)
    with pytest.raises(AlertError, match="a rule named 'errors' already exists"):
        create(seeded, box)


def test_scopes_given_by_name_are_stored_as_ids(seeded: Engine, box: SecretBox) -> None:
    team = get_rule(
        seeded, create(seeded, box, name="t", kind="budget_warning", scope_type="team", scope_value="research")
    )
    user = get_rule(
        seeded, create(seeded, box, name="u", kind="budget_exceeded", scope_type="user", scope_value="bob@example.com")
    )
    down = get_rule(seeded, create(seeded, box, name="d", kind="deployment_down", scope_value="gpt-b", threshold=""))
    assert (team.scope_type, team.scope_value) == ("team", "1")
    assert (user.scope_type, user.scope_value) == ("user", "2")
    assert (down.scope_type, down.scope_value, down.threshold) == ("deployment", "2", None)


def test_budget_kind_defaults_to_each_team(seeded: Engine, box: SecretBox) -> None:
    rule = get_rule(seeded, create(seeded, box, kind="budget_exceeded", scope_type="all", threshold=""))
    assert (rule.scope_type, rule.scope_value) == ("team", "")


def test_the_webhook_url_is_stored_encrypted_and_shown_masked(seeded: Engine, box: SecretBox, db_path: Path) -> None:
    rule_id = create(seeded, box, webhook_url=HOOK, email_to="oncall@example.com; Lead@Example.com lead@example.com")
    view = get_rule(seeded, rule_id)
    assert view.webhook_display == "https://hooks.slack.com/***"
    assert view.email_to == ("oncall@example.com", "lead@example.com")  # lower-cased like user e-mails, once
    assert HOOK not in repr(view)
    with Session(seeded) as s:
        raw = s.exec(select(AlertRule.webhook_url_encrypted)).one()
    assert raw and HOOK not in raw and "XyZsecretTokenValue123" not in raw
    assert webhook_url(seeded, box, rule_id) == HOOK
    assert b"XyZsecretTokenValue123" not in everything_stored(seeded, db_path)  # audit trail included


def test_edits_keep_the_webhook_unless_cleared_and_are_audited(seeded: Engine, box: SecretBox) -> None:
    rule_id = create(seeded, box, webhook_url=HOOK)
    update_rule(seeded, box, rule_id, RuleInput.from_form(form(threshold="7.5")), actor="lead@example.com")
    assert webhook_url(seeded, box, rule_id) == HOOK and get_rule(seeded, rule_id).threshold == 7.5
    update_rule(seeded, box, rule_id, RuleInput.from_form(form()), actor="lead@example.com", clear_webhook=True)
    assert webhook_url(seeded, box, rule_id) is None and get_rule(seeded, rule_id).webhook_display == ""
    assert not set_rule_enabled(seeded, rule_id, False, actor="lead@example.com").enabled
    assert delete_rule(seeded, rule_id, actor="lead@example.com") == "errors"
    with Session(seeded) as s:
        audit = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [a.action for a in audit] == [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.update",
        "alert_rule.disable",
        "alert_rule.delete",
    ]
    assert audit[1].before["threshold"] == 5.0 and audit[1].after["threshold"] == 7.5
    assert audit[0].after["webhook"] == "https://hooks.slack.com/***"
    assert audit[2].after["webhook"] == ""
    with pytest.raises(AlertError, match="does not exist"):
        get_rule(seeded, rule_id)


def test_a_missing_checkbox_means_no_resolved_notice(seeded: Engine, box: SecretBox) -> None:
    fields = form()
    del fields["notify_resolved"]
    rule = create_rule(seeded, box, RuleInput.from_form(fields), actor="ops@example.com")
    assert rule.notify_resolved is False and rule.enabled is True


def test_renaming_onto_another_rule_is_refused_and_changes_nothing(seeded: Engine, box: SecretBox) -> None:
    create(seeded, box)
    other = create(seeded, box, name="latency", kind="latency", threshold="800")
    with pytest.raises(AlertError, match="a rule named 'errors' already exists"):
        update_rule(seeded, box, other, RuleInput.from_form(form()), actor="ops@example.com")
    assert sorted(r.name for r in list_rules(seeded)) == ["errors", "latency"]
    assert get_rule(seeded, other).kind == "latency"
