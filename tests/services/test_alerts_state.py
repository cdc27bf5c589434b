"""The Alerts page's handlers called directly, as any connected socket could call them.

Viewers and members get nothing and change nothing; operators create, edit, toggle and delete rules, and a
webhook URL never lands in any state var.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.state import State
from sqlalchemy.engine import Engine

import llm_console.state.alerts as alerts_module
from llm_console.crypto import SecretBox
from llm_console.services.alerts_rules import list_rules, webhook_url
from llm_console.services.sessions import SessionUser
from llm_console.settings import Settings
from llm_console.state.alerts import REFUSED, AlertsState
from tests.services.test_alerts_rules import form

HOOK = "https://hooks.slack.com/services/T1/B2/state-canary-token-91c2"


class Page:
    def __init__(self, engine: Engine, box: SecretBox, state: AlertsState) -> None:
        self.engine, self.box, self.state = engine, box, state
        self.who: SessionUser | None = None

    def sign_in(self, role: str | None) -> None:
        self.who = None if role is None else SessionUser(1, f"{role}@example.com", role, role)

    async def call(self, handler: str, *args: Any) -> Any:
        return await AlertsState.event_handlers[handler].fn(self.state, *args)

    def everything(self) -> str:
        return json.dumps(self.state.dict(), default=str)


@pytest.fixture
def page(engine: Engine, box: SecretBox, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="x" * 32)  # type: ignore[call-arg]
    context = SimpleNamespace(engine=engine, settings=settings, runtime=SimpleNamespace(box=box))
    monkeypatch.setattr(alerts_module, "get_context", lambda: context)
    root = State(_reflex_internal_init=True)
    p = Page(engine, box, root.get_substate(AlertsState.get_full_name().split(".")[1:]))

    async def current_user(state: object) -> SessionUser | None:
        return p.who

    monkeypatch.setattr(alerts_module, "current_user", current_user)
    yield p


def rule_form(**kw: str) -> dict[str, str]:
    """The rules tests' form, with both channels filled in."""
    return form(**{"scope_value": "", "webhook_url": HOOK, "email_to": "oncall@example.com", **kw})


@pytest.mark.parametrize("role", [None, "viewer", "member"])
async def test_below_operator_nothing_is_shown_or_changed(page: Page, role: str | None) -> None:
    page.sign_in("operator")
    await page.call("new_rule")
    await page.call("save_rule", rule_form())
    page.sign_in(role)
    await page.call("load")
    assert page.state.error == REFUSED and page.state.rules == [] and page.state.events == []
    rule_id = str(list_rules(page.engine)[0].id)
    await page.call("save_rule", rule_form(name="sneaky"))
    await page.call("toggle", rule_id, False)
    page.state.confirm = {"id": rule_id, "name": "errors"}
    await page.call("confirm_delete")
    [rule] = list_rules(page.engine)
    assert (rule.name, rule.enabled) == ("errors", True)


async def test_an_operator_creates_edits_toggles_and_deletes_a_rule(page: Page) -> None:
    page.sign_in("operator")
    await page.call("load")
    assert page.state.rules == [] and page.state.error == "" and page.state.smtp_ready is False
    await page.call("new_rule")
    assert page.state.form_open and page.state.form["kind"] == "error_rate"
    await page.call("choose_kind", "budget_warning")
    assert [c["value"] for c in page.state.scope_choices] == ["team", "user", "key"]
    assert page.state.form["scope_type"] == "team"
    await page.call("choose_kind", "error_rate")
    await page.call("save_rule", rule_form(email_to="not an address"))
    assert "is not an e-mail address" in page.state.form_error and page.state.form_open
    await page.call("save_rule", rule_form())
    assert not page.state.form_open and page.state.notice == "Saved rule errors."
    [row] = page.state.rules
    assert row["channels"] == "webhook https://hooks.slack.com/*** · e-mail oncall@example.com"
    assert row["condition"] == "error rate ≥ 5% over 5 min (≥ 10 requests)"
    assert row["scope"] == "all traffic" and row["enabled"] == "true"

    await page.call("toggle", row["id"], False)
    await page.call("edit_rule", row["id"])
    assert page.state.form["has_webhook"] == "true" and page.state.form["threshold"] == "5"
    await page.call("save_rule", rule_form(threshold="9", webhook_url=""))
    [rule] = list_rules(page.engine)
    assert (rule.threshold, rule.enabled) == (9.0, False)  # an edit keeps the rule disabled
    assert webhook_url(page.engine, page.box, rule.id) == HOOK  # an empty field keeps the stored URL
    assert "state-canary-token" not in page.everything()

    await page.call("ask_delete", row["id"])
    assert page.state.confirm_open and page.state.confirm["name"] == "errors"
    await page.call("confirm_delete")
    assert list_rules(page.engine) == [] and page.state.rules == []


async def test_forged_ids_are_ignored(page: Page) -> None:
    page.sign_in("operator")
    await page.call("edit_rule", "1; DROP TABLE alert_rules")
    await page.call("toggle", "-3", True)
    await page.call("edit_rule", "424242")
    assert page.state.form_open is False and "does not exist" in page.state.error
