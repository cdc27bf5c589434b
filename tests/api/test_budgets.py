"""Budgets (set with an audit event, validated) and the CLI that sets them and mints admin keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from llm_console import cli
from llm_console.db.models import AuditEvent, Budget, RateLimit, VirtualKey
from llm_console.services.budgets import BudgetError, get_budget, get_budgets, set_budget
from llm_console.services.keys import create_key, find_by_hash, hash_key
from llm_console.services.users import create_user
from tests.api.conftest import migrated_sqlite


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = migrated_sqlite(tmp_path / "b.db")
    create_user(eng, email="ana@example.com", password=None, role="member", actor="t")
    return eng


def audit(engine: Engine, action_prefix: str = "budget.") -> list[AuditEvent]:
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    return [e for e in rows if e.action.startswith(action_prefix)]


def test_set_update_and_clear(engine: Engine) -> None:
    stored = set_budget(engine, "user", 1, 5.0, None, actor="boss")
    assert stored is not None and (stored.daily_usd, stored.monthly_usd) == (5.0, None)
    set_budget(engine, "user", 1, 5.0, 100, actor="boss")
    assert [(b.entity_type, b.entity_id, b.daily_usd, b.monthly_usd) for b in get_budgets(engine)] == [
        ("user", 1, 5.0, 100.0)
    ]
    assert set_budget(engine, "user", 1, None, None, actor="boss") is None
    assert get_budget(engine, "user", 1) is None and get_budgets(engine, "user") == []
    assert set_budget(engine, "user", 1, None, None, actor="boss") is None  # nothing to clear: no event
    events = [(e.action, e.actor, e.target_type, e.target_id, e.before, e.after) for e in audit(engine)]
    assert events == [
        ("budget.set", "boss", "budget", "user:1", None, {"daily_usd": 5.0, "monthly_usd": None}),
        ("budget.set", "boss", "budget", "user:1", {"daily_usd": 5.0, "monthly_usd": None},
         {"daily_usd": 5.0, "monthly_usd": 100.0}),
        ("budget.clear", "boss", "budget", "user:1", {"daily_usd": 5.0, "monthly_usd": 100.0}, None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("entity", "ident", "daily", "monthly", "message"),
    [
        ("user", 1, -0.01, None, "non-negative"),
        ("user", 1, math.nan, None, "finite"),
        ("user", 1, None, math.inf, "finite"),
        ("user", 1, True, None, "number"),
        ("user", 1, "5", None, "number"),
        ("user", 1, 1e13, None, "larger"),
        ("org", 1, 1.0, None, "entity type"),
        ("user", -1, 1.0, None, "non-negative integer"),
        ("user", 99, 1.0, None, "no user with id 99"),
        ("team", 1, 1.0, None, "no team"),
        ("key", 1, 1.0, None, "no key"),
    ],
)
def test_invalid_budgets_write_nothing(
    engine: Engine, entity: str, ident: int, daily: object, monthly: object, message: str
) -> None:
    with pytest.raises(BudgetError, match=message):
        set_budget(engine, entity, ident, daily, monthly, actor="t")  # type: ignore[arg-type]
    with Session(engine) as s:
        assert s.exec(select(Budget)).all() == []
    assert audit(engine) == []


def test_zero_is_stored_and_means_no_limit(engine: Engine) -> None:
    stored = set_budget(engine, "user", 1, 0, 0.0, actor="t")
    assert stored is not None and (stored.daily_usd, stored.monthly_usd) == (0.0, 0.0)


def test_keys_carry_scopes(engine: Engine) -> None:
    minted = create_key(engine, name="dash", actor="t", scopes=["analytics", "analytics"])
    row = find_by_hash(engine, hash_key(minted.secret))
    assert row is not None and row.scopes == ["analytics"]
    assert audit(engine, "key.")[-1].after == {"name": "dash", "prefix": minted.prefix, "allowed_aliases": [],
                                               "scopes": ["analytics"]}  # fmt: skip
    plain = find_by_hash(engine, hash_key(create_key(engine, name="app", actor="t").secret))
    assert plain is not None and plain.scopes == []
    with pytest.raises(ValueError, match="unknown scope 'admin'"):
        create_key(engine, name="x", actor="t", scopes=["admin"])


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Engine:
    monkeypatch.setenv("LLMC_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("LLMC_DATA_DIR", str(tmp_path / "data"))
    return engine


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_set_budget(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "set-budget", "--user", "ANA@example.com", "--daily", "5") == (
        0,
        "user ANA@example.com: budget daily $5.00, monthly none\n",
        "",
    )
    code, out, _ = run(capsys, "set-budget", "--user", "ana@example.com", "--monthly", "120.5")
    assert code == 0 and "daily $5.00, monthly $120.50" in out  # the daily limit is kept
    code, out, _ = run(capsys, "set-budget", "--user", "ana@example.com", "--daily", "none")
    assert code == 0 and "daily none, monthly $120.50" in out
    budget = get_budget(cli_db, "user", 1)
    assert budget is not None and (budget.daily_usd, budget.monthly_usd) == (None, 120.5)
    code, out, _ = run(capsys, "set-budget", "--user", "ana@example.com", "--monthly", "none")
    assert code == 0 and out == "user ana@example.com: no budget\n" and get_budget(cli_db, "user", 1) is None
    key = create_key(cli_db, name="k", actor="t")
    assert run(capsys, "set-budget", "--key-id", str(key.id), "--daily", "1")[0] == 0
    assert get_budget(cli_db, "key", key.id) is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "nobody@example.com", "--daily", "1"], "no user 'nobody@example.com'"),
        (["--team", "ghosts", "--daily", "1"], "no team 'ghosts'"),
        (["--key-id", "999", "--daily", "1"], "no key with id 999"),
        (["--user", "ana@example.com", "--daily", "-1"], "non-negative"),
        (["--user", "ana@example.com", "--daily", "nan"], "finite"),
        (["--user", "ana@example.com", "--monthly", "ten"], "--monthly must be an amount of USD"),
        (["--user", "ana@example.com"], "nothing to set"),
    ],
)
def test_cli_set_budget_errors_are_one_line(
    cli_db: Engine, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "set-budget", *argv)
    assert code == 2 and out == ""
    assert err.startswith("llm-console: error: ") and message in err and err.count("\n") == 1


def test_cli_set_budget_needs_exactly_one_entity(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "set-budget", "--daily", "1")[0] == 2
    assert run(capsys, "set-budget", "--user", "a@b.c", "--team", "x", "--daily", "1")[0] == 2


def test_cli_create_key_with_scope(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "create-key", "--name", "dash", "--scope", "analytics")
    assert code == 0 and "with scopes analytics" in err
    row = find_by_hash(cli_db, hash_key(out.strip()))
    assert row is not None and row.scopes == ["analytics"]
    code, out, _ = run(capsys, "create-key", "--scope", "analytics, analytics", "--scope", "analytics")
    assert code == 0
    code, out, err = run(capsys, "create-key", "--scope", "analytics,admin")
    assert (code, out) == (2, "") and "unknown scope 'admin'" in err
    with Session(cli_db) as s:
        assert len(s.exec(select(VirtualKey)).all()) == 2  # the refused one was never minted


def test_cli_set_limits(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "set-limits", "--user", "ana@example.com", "--rpm", "60", "--tpd", "100000")
    assert (code, err) == (0, "") and out == "ana@example.com: RPM 60, TPM none, RPD none, TPD 100,000\n"
    code, out, _ = run(capsys, "set-limits", "--user", "ANA@example.com", "--rpm", "none", "--tpm", "5000")
    assert code == 0 and "RPM none, TPM 5,000, RPD none, TPD 100,000" in out  # TPD kept
    assert run(capsys, "set-limits", "--default", "--rpm", "10")[0] == 0
    with Session(cli_db) as s:
        assert s.get(RateLimit, ("default", 0)).rpm == 10  # type: ignore[union-attr]
        assert s.get(RateLimit, ("user", 1)).tpm == 5000  # type: ignore[union-attr]
    for argv, message in (
        (["--user", "ana@example.com"], "nothing to set"),
        (["--user", "ana@example.com", "--rpm", "-5"], "--rpm must be a whole number"),
        (["--user", "ana@example.com", "--rpm", "0"], "RPM must be a whole number above 0"),
        (["--team", "ghosts", "--rpm", "1"], "No team is named 'ghosts'"),
    ):
        code, out, err = run(capsys, "set-limits", *argv)
        assert code == 2 and out == "" and message in err and err.count("\n") == 1, (argv, err)
