"""Spend administration over a real websocket: the reset and raise-budget handlers, called directly with
complete payloads as viewer, member and operator (LLMC_SPEND_ADMIN_ROLE left at its default, admin), write
nothing (no spend reset, no budget increase, no audit event), while the same call as an admin writes one of
each. Viewers and members are stopped by the event guard (the handlers need operator); operators pass the
guard and are refused by the handlers' own check of the setting, which this test tells apart in the log.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import pytest
from reflex_base.utils.format import format_event_handler
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from llm_console.db.engine import make_engine, session
from llm_console.db.models import AuditEvent
from llm_console.db.tier_tables import BudgetIncrease, SpendReset
from llm_console.services import budgets, users
from llm_console.state.spend_admin import SpendAdminState
from tests.e2e.conftest import Console
from tests.e2e.test_socket_guard import call, in_thread, session_cookie

pytestmark = pytest.mark.browser

RESET = format_event_handler(SpendAdminState.event_handlers["submit_reset"])
RAISE = format_event_handler(SpendAdminState.event_handlers["submit_raise"])
ACTIONS = ("spend.reset", "budget.increase")


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def target(engine: Engine) -> int:
    """A user with a daily budget, whose spend the calls try to reset and raise."""
    tag = secrets.token_hex(3)
    user = users.create_user(engine, email=f"spend-target-{tag}@localhost", password=None, role="member", actor="t")
    assert user.id is not None
    budgets.set_budget(engine, "user", user.id, 10.0, None, actor="t")
    return user.id


def cookie_for(console: Console, engine: Engine, role: str) -> str:
    tag = secrets.token_hex(3)
    email, password = f"spend-{role}-{tag}@localhost", f"spend-{role}-{tag}-password"
    users.create_user(engine, email=email, password=password, role=role, actor="t")
    return in_thread(session_cookie(console, email, password))


def written(engine: Engine, user_id: int) -> tuple[int, int, int]:
    """Spend resets, budget increases and their audit events for the target user."""
    with session(engine) as s:
        resets = s.exec(select(func.count()).select_from(SpendReset).where(SpendReset.entity_id == user_id)).one()
        raised = s.exec(
            select(func.count()).select_from(BudgetIncrease).where(BudgetIncrease.entity_id == user_id)
        ).one()
        audited = s.exec(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.target_id == f"user:{user_id}", AuditEvent.action.in_(ACTIONS))  # type: ignore[attr-defined]
        ).one()
    return int(resets), int(raised), int(audited)


def payloads(user_id: int, role: str) -> list[tuple[str, dict[str, object]]]:
    entity = f"user:{user_id}"
    reason = f"socket test as {role}"
    return [
        (RESET, {"form": {"entity": entity, "period": "day", "reason": reason}}),
        (RAISE, {"form": {"entity": entity, "period": "day", "amount": "5", "hours": "1", "reason": reason}}),
    ]


def refused_for(console: Console, since: int, role: str) -> set[str]:
    log = console.log.read_text(errors="replace")[since:]
    return set(re.findall(rf"refused event (\S+) for {role} ", log))


@pytest.mark.parametrize("role", ["viewer", "member", "operator"])
def test_reset_and_raise_are_refused_below_the_setting(
    console: Console, engine: Engine, target: int, role: str
) -> None:
    cookie = cookie_for(console, engine, role)
    since = len(console.log.read_text(errors="replace"))
    for name, payload in payloads(target, role):
        in_thread(call(console, name, payload, cookie, "/limits"))
    assert written(engine, target) == (0, 0, 0)
    refused = refused_for(console, since, role)
    if role == "operator":  # through the guard: the handler's own check of LLMC_SPEND_ADMIN_ROLE refused it
        assert RESET not in refused and RAISE not in refused
    else:
        assert {RESET, RAISE} <= refused


def test_the_same_calls_as_an_admin_write_one_of_each(console: Console, engine: Engine, target: int) -> None:
    cookie = cookie_for(console, engine, "admin")
    for name, payload in payloads(target, "admin"):
        in_thread(call(console, name, payload, cookie, "/limits"))
    deadline = time.monotonic() + 15
    while written(engine, target) != (1, 1, 2) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert written(engine, target) == (1, 1, 2)
    with session(engine) as s:
        reset = s.exec(select(SpendReset).where(SpendReset.entity_id == target)).one()
        raised = s.exec(select(BudgetIncrease).where(BudgetIncrease.entity_id == target)).one()
    assert (reset.period, reset.reason, reset.actor.startswith("spend-admin-")) == ("day", "socket test as admin", True)
    assert (raised.amount_usd, raised.period, raised.reason) == (5.0, "day", "socket test as admin")
