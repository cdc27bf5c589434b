"""The Telemetry page's service: views, saving (validated, audited, secrets write-only), status states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AuditEvent
from llm_console.db.telemetry_tables import TelemetryStatus
from llm_console.services import telemetry_admin as admin
from llm_console.telemetry.config import TelemetryConfigError, load_config, parse_headers
from llm_console.telemetry.status import Delta, sink_status, write_status
from tests.db.seeding import backends_fixture, db_fixture  # noqa: F401
from tests.services.conftest import everything_stored
from tests.telemetry.conftest import make_settings

LF = {"enabled": True, "host": "http://127.0.0.1:3001", "public_key": "pk-lf-1", "include_bodies": True}


def test_defaults_without_environment_or_saved_rows(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    lf, ot = admin.load_views(engine, box, make_settings(tmp_path))
    assert (lf.source, lf.enabled, lf.host, lf.secret_set, lf.include_bodies) == (
        "default",
        False,
        "https://cloud.langfuse.com",
        False,
        True,
    )
    assert (ot.source, ot.enabled, ot.endpoint, ot.service_name, ot.include_bodies) == (
        "default",
        False,
        "",
        "llm-console",
        False,
    )
    assert lf.status.state == ot.status.state == "off"
    assert (lf.status.exported, lf.status.dropped) == (0, 0)


def test_environment_defaults_show_without_their_secrets(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        langfuse_public_key="pk-lf-env",
        langfuse_secret_key=SecretStr("sk-lf-env-secret"),
        otel_exporter_endpoint="http://collector:4318",
        otel_exporter_headers=SecretStr("Authorization=Bearer%20tok-123,x-team=ml"),
        otel_sample_rate=0.5,
    )
    lf, ot = admin.load_views(engine, box, settings)
    assert (lf.source, lf.enabled, lf.public_key, lf.secret_set) == ("environment", True, "pk-lf-env", True)
    assert lf.status.state == "waiting"  # on, nothing exported yet
    assert (ot.source, ot.endpoint, ot.sample_rate) == ("environment", "http://collector:4318/v1/traces", 0.5)
    assert ot.header_names == ["Authorization", "x-team"] and ot.headers_set
    assert "tok-123" not in repr((lf, ot)) and "sk-lf-env-secret" not in repr((lf, ot))
    langfuse, otlp = load_config(engine, box, settings)
    assert langfuse.secret_key == "sk-lf-env-secret"
    assert dict(otlp.headers) == {"Authorization": "Bearer tok-123", "x-team": "ml"}  # %20 decoded


def test_save_langfuse_encrypts_audits_and_keeps_the_secret(
    engine: Engine, box: SecretBox, tmp_path: Path, db_path: Path
) -> None:
    settings = make_settings(tmp_path)
    view = admin.save_langfuse(engine, box, settings, "admin@x", secret_key="sk-lf-very-secret", sample_rate=0.5, **LF)
    assert (view.source, view.enabled, view.host, view.public_key, view.secret_set) == (
        "console",
        True,
        "http://127.0.0.1:3001",
        "pk-lf-1",
        True,
    )
    assert view.updated_by == "admin@x" and view.updated_at is not None
    assert view.status.state == "waiting"
    # An empty secret on the next save keeps the stored one.
    view = admin.save_langfuse(engine, box, settings, "admin@x", secret_key="", sample_rate=1.0, **LF)
    assert view.secret_set and view.sample_rate == 1.0
    assert load_config(engine, box, settings)[0].secret_key == "sk-lf-very-secret"
    assert b"sk-lf-very-secret" not in everything_stored(engine, db_path)
    with session(engine) as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.action == "telemetry.update")).scalars())
    assert [e.target_id for e in events] == ["langfuse", "langfuse"]
    assert events[0].before is None and events[1].before is not None
    assert events[1].after is not None and events[1].after["endpoint"] == "http://127.0.0.1:3001"
    assert "sk-lf-very-secret" not in repr([(e.before, e.after) for e in events])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": "ftp://example.com"}, "http"),
        ({"host": "http://user:pw@example.com"}, "credentials"),
        ({"host": "http://169.254.169.254"}, "link-local"),
        ({"host": "http://10.1.2.3:3000"}, "allow-list"),
        ({"public_key": ""}, "public key"),
        ({"public_key": "pk with space"}, "spaces"),
        ({"secret_key": None}, "secret key"),
        ({"sample_rate": 1.5}, "from 0 to 1"),
        ({"sample_rate": float("nan")}, "number from 0 to 1"),
    ],
)
def test_bad_langfuse_input_gets_a_readable_error(
    engine: Engine, box: SecretBox, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {**LF, "secret_key": "sk-lf-x", "sample_rate": 1.0} | changes
    with pytest.raises(ValueError, match=message):
        admin.save_langfuse(engine, box, make_settings(tmp_path), "admin@x", **values)  # type: ignore[arg-type]
    with session(engine) as s:
        assert s.exec(select(AuditEvent)).first() is None  # nothing half-written


def test_a_disabled_sink_may_be_saved_without_keys(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    values = {**LF, "enabled": False, "public_key": ""}
    view = admin.save_langfuse(engine, box, make_settings(tmp_path), "a", secret_key=None, sample_rate=1, **values)
    assert (view.enabled, view.secret_set, view.status.state) == (False, False, "off")


def test_save_otlp_adds_the_traces_path_and_keeps_or_clears_headers(
    engine: Engine, box: SecretBox, tmp_path: Path, db_path: Path
) -> None:
    settings = make_settings(tmp_path)
    common = {"enabled": True, "service_name": "gw-eu", "include_bodies": False, "sample_rate": 1.0}
    view = admin.save_otlp(
        engine, box, settings, "a", endpoint="http://127.0.0.1:4318/", headers="api-key=abc123, x-org=7", **common
    )
    assert view.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert (view.header_names, view.headers_set, view.service_name) == (["api-key", "x-org"], True, "gw-eu")
    view = admin.save_otlp(
        engine, box, settings, "a", endpoint="http://127.0.0.1:4318/v1/traces", headers=None, **common
    )
    assert view.header_names == ["api-key", "x-org"]
    assert dict(load_config(engine, box, settings)[1].headers) == {"api-key": "abc123", "x-org": "7"}
    assert b"abc123" not in everything_stored(engine, db_path)
    view = admin.save_otlp(engine, box, settings, "a", endpoint="http://127.0.0.1:4318", headers="", **common)
    assert (view.header_names, view.headers_set) == ([], False)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("novalue", "name=value"),
        ("bad name=1", "may hold only"),
        ("content-type=text/plain", "set by the exporter"),
        ("x=a\nb", "control characters"),
    ],
)
def test_bad_headers_are_refused(headers: str, message: str) -> None:
    with pytest.raises(TelemetryConfigError, match=message):
        parse_headers(headers)


def test_otlp_needs_an_endpoint_when_enabled(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Enter the OTLP/HTTP endpoint"):
        admin.save_otlp(
            engine,
            box,
            make_settings(tmp_path),
            "a",
            enabled=True,
            endpoint=" ",
            headers=None,
            service_name="",
            include_bodies=False,
            sample_rate=1.0,
        )


def test_saving_over_the_environment_keeps_its_secret(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, langfuse_public_key="pk-lf-1", langfuse_secret_key=SecretStr("sk-lf-from-env"))
    admin.save_langfuse(engine, box, settings, "a", secret_key=None, sample_rate=0.1, **LF)
    assert load_config(engine, box, settings)[0].secret_key == "sk-lf-from-env"


def test_a_changed_secret_key_is_a_readable_error(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    admin.save_langfuse(engine, box, settings, "a", secret_key="sk-lf-1", sample_rate=1.0, **LF)
    other = SecretBox("another-secret-key-0123456789abcdef")
    langfuse, _ = load_config(engine, other, settings)
    assert not langfuse.active and "Langfuse secret key cannot be decrypted" in langfuse.problem
    lf, _ = admin.load_views(engine, other, settings)
    assert (lf.status.state, lf.secret_set) == ("error", True)
    assert "enter it again" in lf.status.last_error
    # Saving with the secret left empty cannot keep what cannot be read: it says so.
    with pytest.raises(TelemetryConfigError, match="cannot be decrypted"):
        admin.save_langfuse(engine, other, settings, "a", secret_key=None, sample_rate=1.0, **LF)
    lf = admin.save_langfuse(engine, other, settings, "a", secret_key="sk-lf-2", sample_rate=1.0, **LF)
    assert lf.status.state == "waiting"


def test_bad_environment_values_are_the_sinks_error_never_shown(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        otel_exporter_endpoint="https://user:hunter2@collector:4318",
        langfuse_host="ftp://langfuse",
        langfuse_public_key="pk",
        langfuse_secret_key=SecretStr("sk"),
    )
    lf, ot = admin.load_views(engine, box, settings)
    assert (ot.status.state, ot.endpoint) == ("error", "")
    assert ot.status.last_error == (
        "LLMC_OTEL_EXPORTER_ENDPOINT may not contain user:password@; put credentials in the keys or headers."
    )
    assert (lf.status.state, lf.status.last_error) == (
        "error",
        "LLMC_LANGFUSE_HOST must be an http(s)://host[:port] URL.",
    )
    assert "hunter2" not in repr((lf, ot))
    settings = make_settings(tmp_path, otel_exporter_endpoint="http://c:4318", otel_exporter_headers=SecretStr("oops"))
    _, ot = admin.load_views(engine, box, settings)
    assert ot.status.state == "error" and ot.status.last_error.startswith("LLMC_OTEL_EXPORTER_HEADERS: Header 'oops'")


def test_status_counts_add_up_across_processes(db: Engine) -> None:
    t0 = datetime(2026, 3, 5, 12, tzinfo=UTC)
    # Two processes report: 10 + 5 exported, 2 + 1 dropped; the newest success and error win.
    write_status(db, {"otlp": Delta(exported=10, dropped=2, last_ok_at=t0 + timedelta(seconds=5))})
    write_status(
        db,
        {
            "otlp": Delta(
                exported=5, dropped=1, last_ok_at=t0, last_error="HTTP 503", last_error_at=t0 + timedelta(seconds=3)
            )
        },
    )
    with session(db) as s:
        row = s.get(TelemetryStatus, "otlp")
    assert row is not None
    assert (row.exported, row.dropped, row.last_error) == (15, 3, "HTTP 503")
    st = sink_status(row, active=True, since=None)
    assert st.last_ok_at == t0 + timedelta(seconds=5)  # the older success from the second process did not win
    assert st.state == "ok"  # the success (at +5 s) is newer than the error (at +3 s)
    assert sink_status(row, active=True, since=t0 + timedelta(seconds=6)).state == "waiting"
    assert sink_status(row, active=False, since=None).state == "off"
    write_status(db, {"otlp": Delta(last_error="refused", last_error_at=t0 + timedelta(seconds=9))})
    with session(db) as s:
        row = s.get(TelemetryStatus, "otlp")
    assert row is not None and sink_status(row, active=True, since=None).state == "error"
    assert (row.exported, row.dropped, row.last_error) == (15, 3, "refused")


def test_a_missing_status_row_is_created(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(TelemetryStatus.__table__.delete())  # type: ignore[attr-defined]
    write_status(db, {"langfuse": Delta(exported=4)})
    write_status(db, {"langfuse": Delta(exported=3)})
    with session(db) as s:
        row = s.get(TelemetryStatus, "langfuse")
    assert row is not None and row.exported == 7


async def test_test_sink_says_what_is_missing(engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    ok, message = await admin.test_sink(engine, box, settings, "langfuse")
    assert not ok and "not configured" in message
    ok, message = await admin.test_sink(engine, box, settings, "otlp")
    assert not ok and "not configured" in message
    ok, message = await admin.test_sink(engine, box, settings, "zipkin")
    assert not ok and "Unknown sink" in message
