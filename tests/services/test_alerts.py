"""Alert evaluation against seeded rollups, budgets and health rows, at injected instants (SQLite and PostgreSQL).

Each kind fires exactly at its threshold and not below, and resolves when the condition clears; a held
condition notifies once per cool-down, a flapping one no more; a disabled rule closes its events quietly.
Deliveries here go through `httpx.MockTransport` (the real receivers are in test_alerts_delivery.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console.crypto import SecretBox
from llm_console.db.alert_tables import AlertEvent
from llm_console.db.models import DeploymentHealth
from llm_console.db.queries import usage
from llm_console.services.alerts import evaluate, run_round
from llm_console.services.alerts_conditions import window
from llm_console.services.alerts_rules import RuleInput, create_rule, set_rule_enabled
from llm_console.settings import Settings
from tests.db.seeding import add_rows, at, backends_fixture, budget, db_fixture, directory_rows, rec, write  # noqa: F401
from tests.services.conftest import SECRET_KEY

NOW = at(10, 12, 30, 30)
HOOK = "https://hooks.example.com/services/T000/B000/secret-token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, secret_key=SECRET_KEY)  # type: ignore[call-arg]


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET_KEY)


@pytest.fixture
def engine(db: Engine) -> Engine:
    add_rows(db, *directory_rows())
    return db


def rule(engine: Engine, box: SecretBox, kind: str, **kw: object) -> int:
    fields: dict[str, object] = {"name": f"{kind} rule {len(kw)}", "kind": kind, **kw}
    view = create_rule(engine, box, RuleInput(**fields), actor="ops@example.com")  # type: ignore[arg-type]
    return view.id


def events(engine: Engine) -> list[AlertEvent]:
    with Session(engine) as s:
        return list(s.exec(select(AlertEvent).order_by(AlertEvent.id)))  # type: ignore[arg-type]


def traffic(
    engine: Engine, ok: int, failed: int, *, when: datetime = NOW, alias: str = "gpt", latency: float = 100.0
) -> None:
    """`ok` good and `failed` failed requests spread over the minute before `when`."""
    records = [
        rec(when - timedelta(seconds=1 + i % 50), alias=alias, status="ok" if i >= failed else "error", latency=latency)
        for i in range(ok + failed)
    ]
    write(engine, *records)


def firing(engine: Engine) -> list[str]:
    return [e.fingerprint for e in events(engine) if e.state == "firing"]


def test_error_rate_fires_at_the_threshold_and_not_below(engine: Engine, box: SecretBox, settings: Settings) -> None:
    traffic(engine, ok=19, failed=1)  # exactly 5%
    rule(engine, box, "error_rate", threshold=5.0, min_requests=20)
    rule(engine, box, "error_rate", name="stricter", threshold=5.01, min_requests=20)
    rule(engine, box, "error_rate", name="needs more traffic", threshold=1.0, min_requests=21)
    notices = evaluate(engine, settings, box, NOW)
    assert notices == []  # no channels on these rules: the events are the record
    [event] = events(engine)
    assert (event.fingerprint, event.state, event.subject) == ("all:", "firing", "all traffic")
    assert event.value == pytest.approx(5.0) and event.threshold == 5.0
    assert "5.0%" in event.message and "1 of 20 requests" in event.message


def test_error_rate_per_alias_opens_one_event_per_alias_over_the_threshold(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    traffic(engine, ok=5, failed=5, alias="gpt")
    traffic(engine, ok=10, failed=0, alias="llama")
    rule(engine, box, "error_rate", threshold=25.0, scope_type="alias", min_requests=5)
    evaluate(engine, settings, box, NOW)
    assert firing(engine) == ["alias:gpt"]
    assert events(engine)[0].subject == "model alias gpt"


def test_error_rate_resolves_when_the_window_moves_past_the_errors(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    traffic(engine, ok=10, failed=10)
    rule(engine, box, "error_rate", threshold=10.0, window_minutes=5, min_requests=10)
    evaluate(engine, settings, box, NOW)
    assert firing(engine) == ["all:"]
    evaluate(engine, settings, box, NOW + timedelta(minutes=4))  # the errors are still inside the window
    assert firing(engine) == ["all:"]
    evaluate(engine, settings, box, NOW + timedelta(minutes=6))
    [event] = events(engine)
    assert event.state == "resolved" and event.open_key is None
    assert event.resolved_at is not None


def test_the_window_is_whole_minutes_up_to_now() -> None:
    start, end = window(at(10, 12, 30, 30), 5)
    assert (start, end) == (at(10, 12, 26), at(10, 12, 30, 30))


def test_latency_fires_at_the_threshold_and_not_below(engine: Engine, box: SecretBox, settings: Settings) -> None:
    traffic(engine, ok=20, failed=0, latency=900.0)
    start, end = window(NOW, 5)
    p95 = usage.totals(engine, start, end, grain="m").latency_p(0.95)
    assert 750 < p95 <= 1000  # histogram-interpolated, as the dashboards show it
    rule(engine, box, "latency", threshold=p95, percentile=95)
    rule(engine, box, "latency", name="slower", threshold=p95 + 0.01, percentile=95)
    rule(engine, box, "latency", name="median", threshold=p95, percentile=50)
    evaluate(engine, settings, box, NOW)
    [event] = events(engine)
    assert event.state == "firing" and event.value == pytest.approx(p95)
    assert "P95 latency of all traffic" in event.message


def test_budget_warning_from_80_percent_and_exceeded_from_100(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    add_rows(engine, budget("team", 1, daily=10.0))
    warn = rule(engine, box, "budget_warning", scope_type="team")
    over = rule(engine, box, "budget_exceeded", scope_type="team")
    write(engine, rec(NOW - timedelta(minutes=5), team_id=1, cost=7.99))
    evaluate(engine, settings, box, NOW)
    assert events(engine) == []  # 79.9%
    write(engine, rec(NOW - timedelta(minutes=4), team_id=1, cost=0.01))
    evaluate(engine, settings, box, NOW)
    [event] = events(engine)
    assert (event.rule_id, event.fingerprint, event.subject) == (warn, "team:1", "team research")
    assert "80% of its daily budget" in event.message and "$8.00 of $10.00" in event.message
    write(engine, rec(NOW - timedelta(minutes=3), team_id=1, cost=2.0))
    evaluate(engine, settings, box, NOW)
    assert {(e.rule_id, e.state) for e in events(engine)} == {(warn, "firing"), (over, "firing")}
    # The next day the daily budget starts over: both resolve.
    evaluate(engine, settings, box, NOW + timedelta(days=1))
    assert {e.state for e in events(engine)} == {"resolved"}


def test_budget_rule_for_one_entity_ignores_the_others(engine: Engine, box: SecretBox, settings: Settings) -> None:
    add_rows(engine, budget("user", 1, monthly=1.0), budget("user", 2, monthly=1.0))
    write(engine, rec(NOW, user_id=1, cost=2.0), rec(NOW, user_id=2, cost=2.0))
    rule(engine, box, "budget_exceeded", scope_type="user", scope_value="bob@example.com")
    evaluate(engine, settings, box, NOW + timedelta(seconds=10))
    assert firing(engine) == ["user:2"]
    assert "monthly budget" in events(engine)[0].message


def health(engine: Engine, deployment_id: int, status: str, when: datetime) -> None:
    with Session(engine) as s:
        row = s.get(DeploymentHealth, deployment_id) or DeploymentHealth(deployment_id=deployment_id)
        row.status, row.checked_at = status, when
        row.last_error = "connection refused" if status == "error" else None
        s.add(row)
        s.commit()


def test_deployment_down_fires_on_a_failed_check_and_resolves_on_a_good_one(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    rule(engine, box, "deployment_down", window_minutes=0)
    health(engine, 1, "error", NOW)
    health(engine, 2, "loading", NOW)  # starting up is not down
    health(engine, 3, "available", NOW)
    evaluate(engine, settings, box, NOW)
    [event] = events(engine)
    assert (event.fingerprint, event.state) == ("deployment:1", "firing")
    assert "gpt-a is down" in event.message and "connection refused" in event.message
    health(engine, 1, "available", NOW + timedelta(minutes=1))
    evaluate(engine, settings, box, NOW + timedelta(minutes=1))
    assert events(engine)[0].state == "resolved"


def test_deployment_down_waits_for_its_window_before_notifying(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    rule(engine, box, "deployment_down", window_minutes=5, webhook_url=HOOK)
    health(engine, 1, "error", NOW)
    assert evaluate(engine, settings, box, NOW) == []
    assert events(engine)[0].state == "pending"
    assert evaluate(engine, settings, box, NOW + timedelta(minutes=4)) == []
    [notice] = evaluate(engine, settings, box, NOW + timedelta(minutes=5))
    assert notice.kind == "firing" and notice.webhook_url == HOOK and notice.channels == ("webhook",)
    assert events(engine)[0].state == "firing"


class Receiver:
    """An httpx transport that records the Slack JSON it is sent and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return httpx.Response(self.status, text="ok")

    @property
    def titles(self) -> list[str]:
        return [str(b["text"]).split("\n")[0] for b in self.bodies]


async def test_a_held_condition_notifies_once_per_cooldown(engine: Engine, box: SecretBox, settings: Settings) -> None:
    traffic(engine, ok=0, failed=20)
    rule(engine, box, "error_rate", threshold=50.0, window_minutes=60, cooldown_minutes=10, webhook_url=HOOK)
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        for minute in (0, 1, 2):
            await run_round(engine, settings, box, NOW + timedelta(minutes=minute), client=client)
        assert receiver.titles == ["[FIRING] Error-rate spike: all traffic"]
        await run_round(engine, settings, box, NOW + timedelta(minutes=10), client=client)
        assert len(receiver.bodies) == 2
    [event] = events(engine)  # still one open event for the subject
    assert event.notifications == 2 and event.notice == "" and event.pending == []
    assert event.deliveries["webhook"]["ok"] is True


async def test_a_flapping_condition_waits_out_the_cooldown(engine: Engine, box: SecretBox, settings: Settings) -> None:
    rule(engine, box, "deployment_down", window_minutes=0, cooldown_minutes=30, webhook_url=HOOK)
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:

        async def at_minute(minute: int, status: str) -> None:
            when = NOW + timedelta(minutes=minute)
            health(engine, 1, status, when)
            await run_round(engine, settings, box, when, client=client)

        await at_minute(0, "error")
        await at_minute(1, "available")
        await at_minute(2, "error")  # back within the cool-down: a new event, no message
        await at_minute(3, "available")  # never announced, so no "resolved" either
        await at_minute(4, "error")
        assert receiver.titles == [
            "[FIRING] Deployment down: deployment gpt-a",
            "[RESOLVED] Deployment down: deployment gpt-a",
        ]
        await at_minute(30, "error")
    assert receiver.titles[-1] == "[FIRING] Deployment down: deployment gpt-a"
    assert len(receiver.bodies) == 3
    assert [e.state for e in events(engine)] == ["resolved", "resolved", "firing"]


async def test_a_disabled_rule_closes_its_events_without_a_message(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    rule_id = rule(engine, box, "deployment_down", window_minutes=0, webhook_url=HOOK)
    health(engine, 1, "error", NOW)
    receiver = Receiver(status=503)  # the first message fails, so a retry is owed
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        await run_round(engine, settings, box, NOW, client=client)
        assert events(engine)[0].pending == ["webhook"]
        set_rule_enabled(engine, rule_id, False, actor="ops@example.com")
        await run_round(engine, settings, box, NOW + timedelta(minutes=1), client=client)
        await run_round(engine, settings, box, NOW + timedelta(minutes=2), client=client)
    assert len(receiver.bodies) == 1  # neither the retry nor a "resolved" message
    [event] = events(engine)
    assert event.state == "resolved" and event.notice == "" and event.pending == []


async def test_a_failing_webhook_is_recorded_and_retried_until_it_answers(
    engine: Engine, box: SecretBox, settings: Settings
) -> None:
    rule(engine, box, "deployment_down", window_minutes=0, webhook_url=HOOK, cooldown_minutes=60)
    health(engine, 1, "error", NOW)
    receiver = Receiver(status=500)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        done = await run_round(engine, settings, box, NOW, client=client)
        assert [d.ok for d in done.deliveries] == [False]
        [event] = events(engine)
        assert event.pending == ["webhook"] and event.deliveries["webhook"]["detail"].startswith("HTTP 500")
        receiver.status = 200
        await run_round(engine, settings, box, NOW + timedelta(minutes=1), client=client)
        await run_round(engine, settings, box, NOW + timedelta(minutes=2), client=client)
    assert len(receiver.bodies) == 2  # the failure, then one successful retry, then nothing owed
    [event] = events(engine)
    assert event.pending == [] and event.deliveries["webhook"] | {"at": ""} == {
        "notice": "firing",
        "ok": True,
        "detail": "HTTP 200",
        "attempts": 2,
        "at": "",
    }
