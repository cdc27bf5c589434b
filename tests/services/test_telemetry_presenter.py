"""The Telemetry page's cards and dialog values, worked out by hand: status words, times and how long ago,
counts, the sample rate as a share, header names but never their values, and the submitted forms read back
as the service's keyword arguments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_console.presenters.telemetry import (
    form_values,
    langfuse_card,
    langfuse_fields,
    otlp_card,
    otlp_fields,
    sample_rate,
    secret,
    when,
)
from llm_console.services.telemetry_admin import LangfuseView, OtlpView, SinkStatus

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def test_a_sinks_card_says_in_words_how_it_is_doing() -> None:
    status = SinkStatus(
        state="error",
        last_ok_at=NOW - timedelta(seconds=90),
        last_error="HTTP 503 from the collector",
        last_error_at=NOW - timedelta(seconds=12),
        exported=12345,
        dropped=7,
    )
    view = OtlpView(
        enabled=True,
        endpoint="http://collector:4318/v1/traces",
        header_names=["Authorization", "X-Scope"],
        headers_set=True,
        service_name="llm-console",
        include_bodies=False,
        sample_rate=0.125,
        source="console",
        updated_at=NOW - timedelta(hours=3),
        updated_by="admin@localhost",
        status=status,
    )
    card = otlp_card(view, NOW)
    assert card["state"] == "error" and card["label"] == "Error"
    assert card["last_export"] == "2026-03-04 11:58:30 UTC (2 min ago)"  # 90 s ago, 1.5 min rounds to 2
    assert card["last_error"] == "2026-03-04 11:59:48 UTC (12 s ago): HTTP 503 from the collector"
    assert card["exported"] == "12,345" and card["dropped"] == "7"
    assert card["sample"] == "12.5% of requests"  # 0.125 x 100
    assert card["headers"] == "Authorization, X-Scope"  # names only: values are secrets
    assert card["source"] == "set in the console, 2026-03-04 09:00:00 UTC (3.0 h ago) by admin@localhost"
    assert card["bodies"] == "no (metadata only)" and card["enabled"] == "yes"

    lf = LangfuseView(
        enabled=False,
        host="https://cloud.langfuse.com",
        public_key="",
        secret_set=False,
        include_bodies=True,
        sample_rate=1.0,
        source="default",
        updated_at=None,
        updated_by="",
        status=SinkStatus("off", None, "", None, 0, 0),
    )
    card = langfuse_card(lf, NOW)
    assert (card["label"], card["last_export"], card["last_error"]) == ("Off", "never", "none")
    assert (card["public_key"], card["secret"], card["source"]) == ("not set", "not set", "defaults")
    assert card["sample"] == "100% of requests"
    waiting = langfuse_card(replace(lf, status=SinkStatus("waiting", None, "", None, 0, 0)), NOW)
    assert waiting["label"] == "Waiting for data"
    assert when(NOW - timedelta(days=3), NOW) == "2026-03-01 12:00:00 UTC (3.0 days ago)"


def test_form_values_are_read_as_the_service_needs_them() -> None:
    assert sample_rate({"sample_rate": " 0.25 "}) == 0.25
    with pytest.raises(ValueError, match="sample rate must be a number from 0 to 1, not 'lots'"):
        sample_rate({"sample_rate": "lots"})
    with pytest.raises(ValueError, match="not ''"):
        sample_rate({})
    assert secret({"secret_key": "   "}, "secret_key") is None  # empty keeps the stored one
    assert secret({"secret_key": " sk-lf-1 "}, "secret_key") == "sk-lf-1"


def test_times_say_how_long_ago_and_read_naive_values_as_utc() -> None:
    assert when(None, NOW) == "never"
    assert when(NOW - timedelta(seconds=59), NOW) == "2026-03-04 11:59:01 UTC (59 s ago)"
    assert when(NOW - timedelta(minutes=59), NOW) == "2026-03-04 11:01:00 UTC (59 min ago)"
    assert when(NOW - timedelta(hours=23), NOW) == "2026-03-03 13:00:00 UTC (23.0 h ago)"
    naive = datetime(2026, 3, 4, 11, 30)  # stored without a zone: UTC, 30 min before NOW
    assert when(naive, NOW) == "2026-03-04 11:30:00 UTC (30 min ago)"
    assert when(NOW + timedelta(seconds=5), NOW).endswith("(0 s ago)")  # a clock a little ahead is "now"


def _otlp(**changes: Any) -> OtlpView:
    view = OtlpView(
        enabled=False,
        endpoint="",
        header_names=[],
        headers_set=False,
        service_name="llm-console",
        include_bodies=True,
        sample_rate=0.5,
        source="environment",
        updated_at=None,
        updated_by="",
        status=SinkStatus("off", None, "", None, 0, 0),
    )
    return replace(view, **changes)


def test_an_unset_otlp_sink_says_so_and_an_unknown_state_is_shown_as_is() -> None:
    card = otlp_card(_otlp(), NOW)
    assert (card["target"], card["headers"], card["source"]) == ("not set", "none", "environment variables")
    assert card["sample"] == "50% of requests"  # 0.5 x 100
    assert card["bodies"] == "yes" and card["enabled"] == "no"
    odd = otlp_card(_otlp(status=SinkStatus("paused", None, "", None, 0, 0)), NOW)
    assert (odd["state"], odd["label"]) == ("paused", "paused")
    # Names known but marked unset (headers cleared since): no names are claimed.
    assert otlp_card(_otlp(header_names=["Authorization"], headers_set=False), NOW)["headers"] == "none"
    console = otlp_card(_otlp(source="console", updated_at=NOW - timedelta(minutes=5), updated_by=""), NOW)
    assert console["source"] == "set in the console, 2026-03-04 11:55:00 UTC (5 min ago) by unknown"


def test_the_dialogs_start_from_the_stored_values_without_secrets() -> None:
    otlp = form_values(_otlp(endpoint="http://c:4318", header_names=["X-Key"], headers_set=True, sample_rate=0.25))
    assert otlp == {
        "enabled": "",
        "include_bodies": "true",
        "sample_rate": "0.25",
        "target": "http://c:4318",
        "service_name": "llm-console",
        "secret_set": "true",
    }
    lf = LangfuseView(
        enabled=True,
        host="https://lf.example",
        public_key="pk-lf-1",
        secret_set=True,
        include_bodies=False,
        sample_rate=1.0,
        source="console",
        updated_at=NOW,
        updated_by="a@x",
        status=SinkStatus("ok", NOW, "", None, 3, 0),
    )
    assert form_values(lf) == {
        "enabled": "true",
        "include_bodies": "",
        "sample_rate": "1",
        "target": "https://lf.example",
        "public_key": "pk-lf-1",
        "secret_set": "true",
    }


def test_submitted_dialogs_become_the_services_arguments() -> None:
    form = {"enabled": "on", "target": " https://lf.example ", "public_key": " pk ", "sample_rate": "0.1"}
    assert langfuse_fields(form) == {
        "enabled": True,
        "host": "https://lf.example",
        "public_key": "pk",
        "secret_key": None,  # left empty: the stored one stays
        "include_bodies": False,
        "sample_rate": 0.1,
    }
    otlp = {"target": "http://c:4318", "headers": "A=b", "service_name": " svc ", "include_bodies": "true"}
    assert otlp_fields({**otlp, "sample_rate": "1"}) == {
        "enabled": False,
        "endpoint": "http://c:4318",
        "headers": "A=b",
        "service_name": "svc",
        "include_bodies": True,
        "sample_rate": 1.0,
    }
    assert otlp_fields({**otlp, "sample_rate": "1", "clear_headers": "on"})["headers"] == ""  # clear beats typed
    assert otlp_fields({"sample_rate": "0"})["headers"] is None  # empty field: keep the stored headers
    with pytest.raises(ValueError, match="not 'half'"):
        otlp_fields({**otlp, "sample_rate": "half"})
