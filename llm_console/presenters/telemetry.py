"""Telemetry page values: each sink's card (status in words, times, counts, settings, never a secret), the
edit dialog's starting values, and the submitted form read back as the service needs it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from llm_console.services import telemetry_admin as admin

STATUS_LABELS = {"off": "Off", "ok": "Connected", "error": "Error", "waiting": "Waiting for data"}
SOURCE_LABELS = {"console": "set in the console", "environment": "environment variables", "default": "defaults"}


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def when(value: datetime | None, now: datetime) -> str:
    """An instant in UTC and how long ago it was; "never" when there is none."""
    if value is None:
        return "never"
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({_ago((now - value).total_seconds())})"


def status_facts(s: admin.SinkStatus, now: datetime) -> dict[str, str]:
    error = s.last_error or ""
    return {
        "state": s.state,
        "label": STATUS_LABELS.get(s.state, s.state),
        "last_export": when(s.last_ok_at, now),
        "last_error": f"{when(s.last_error_at, now)}: {error}" if error else "none",
        "exported": f"{s.exported:,}",
        "dropped": f"{s.dropped:,}",
    }


def _common(v: admin.LangfuseView | admin.OtlpView, now: datetime) -> dict[str, str]:
    source = SOURCE_LABELS.get(v.source, v.source)
    if v.source == "console" and v.updated_at is not None:
        source += f", {when(v.updated_at, now)} by {v.updated_by or 'unknown'}"
    return {
        **status_facts(v.status, now),
        "enabled": "yes" if v.enabled else "no",
        "bodies": "yes" if v.include_bodies else "no (metadata only)",
        "sample": f"{v.sample_rate * 100:g}% of requests",
        "source": source,
    }


def langfuse_card(v: admin.LangfuseView, now: datetime) -> dict[str, str]:
    """What the Langfuse card shows: status, counts, settings; the secret only as set or not."""
    return {
        **_common(v, now),
        "target": v.host or "not set",
        "public_key": v.public_key or "not set",
        "secret": "set" if v.secret_set else "not set",
    }


def otlp_card(v: admin.OtlpView, now: datetime) -> dict[str, str]:
    """What the OTLP card shows; header values are secrets, so only their names."""
    return {
        **_common(v, now),
        "target": v.endpoint or "not set",
        "headers": ", ".join(v.header_names) if v.headers_set and v.header_names else "none",
        "service_name": v.service_name,
    }


def form_values(v: admin.LangfuseView | admin.OtlpView) -> dict[str, str]:
    """The dialog's starting values (no secrets: only whether one is stored)."""
    common = {
        "enabled": "true" if v.enabled else "",
        "include_bodies": "true" if v.include_bodies else "",
        "sample_rate": f"{v.sample_rate:g}",
    }
    if isinstance(v, admin.LangfuseView):
        return {**common, "target": v.host, "public_key": v.public_key, "secret_set": "true" if v.secret_set else ""}
    return {
        **common,
        "target": v.endpoint,
        "service_name": v.service_name,
        "secret_set": "true" if v.headers_set else "",
    }


def ticked(form: dict[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("on", "true", "1")


def sample_rate(form: dict[str, Any]) -> float:
    """The submitted sample rate as a fraction (the service checks the range)."""
    raw = str(form.get("sample_rate", "")).strip()
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"The sample rate must be a number from 0 to 1, not {raw[:40]!r}.") from None


def secret(form: dict[str, Any], name: str) -> str | None:
    """A write-only field: empty keeps the one in force (None), anything else replaces it."""
    value = str(form.get(name, "")).strip()
    return value or None


class LangfuseFields(TypedDict):
    """The keyword arguments of `telemetry_admin.save_langfuse`, read from its dialog."""

    enabled: bool
    host: str
    public_key: str
    secret_key: str | None
    include_bodies: bool
    sample_rate: float


class OtlpFields(TypedDict):
    """The keyword arguments of `telemetry_admin.save_otlp`, read from its dialog."""

    enabled: bool
    endpoint: str
    headers: str | None
    service_name: str
    include_bodies: bool
    sample_rate: float


def langfuse_fields(form: dict[str, Any]) -> LangfuseFields:
    """The submitted Langfuse dialog; ValueError when the sample rate is not a number."""
    return LangfuseFields(
        enabled=ticked(form, "enabled"),
        host=str(form.get("target", "")).strip(),
        public_key=str(form.get("public_key", "")).strip(),
        secret_key=secret(form, "secret_key"),
        include_bodies=ticked(form, "include_bodies"),
        sample_rate=sample_rate(form),
    )


def otlp_fields(form: dict[str, Any]) -> OtlpFields:
    """The submitted OTLP dialog: ticking "clear headers" removes them (""), an empty field keeps them (None)."""
    return OtlpFields(
        enabled=ticked(form, "enabled"),
        endpoint=str(form.get("target", "")).strip(),
        headers="" if ticked(form, "clear_headers") else secret(form, "headers"),
        service_name=str(form.get("service_name", "")).strip(),
        include_bodies=ticked(form, "include_bodies"),
        sample_rate=sample_rate(form),
    )
