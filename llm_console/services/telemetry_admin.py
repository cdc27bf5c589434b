"""The Telemetry page's service: both sinks as the console shows them, saving them (audited), testing them.

Secrets are write-only, as provider keys are: the Langfuse secret key and the OTLP header values are
encrypted with the SecretBox, never returned (only whether one is set), never logged, and audited only as
set or not. An empty secret field keeps the one in force, the environment's included. URLs pass the same
SSRF guard as provider base URLs (the allow-list admits private collectors). Saving writes an audit event,
which is how every gateway process notices the change and reloads its exporters.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.telemetry_tables import TelemetrySink, TelemetryStatus
from llm_console.gateway.ssrf import SSRFError, check_url
from llm_console.services.audit import record
from llm_console.services.deployments import ConfigError, allowlist, check_upstream_url, validate_base_url
from llm_console.settings import Settings
from llm_console.telemetry.config import (
    DEFAULT_LANGFUSE_HOST,
    DEFAULT_SERVICE_NAME,
    LANGFUSE,
    OTLP,
    LangfuseConfig,
    OtlpConfig,
    TelemetryConfigError,
    check_sample_rate,
    configs_from,
    load_config,
    otlp_traces_url,
    parse_headers,
    stored_rows,
)
from llm_console.telemetry.status import SinkStatus, as_utc, read_status, sink_status

__all__ = [
    "LangfuseView",
    "OtlpView",
    "SinkStatus",
    "TelemetryConfigError",
    "load_views",
    "save_langfuse",
    "save_otlp",
    "test_sink",
]

MAX_KEY = 500


@dataclass(frozen=True)
class LangfuseView:
    enabled: bool
    host: str
    public_key: str
    secret_set: bool
    include_bodies: bool
    sample_rate: float
    source: str  # console | environment | default
    updated_at: datetime | None
    updated_by: str
    status: SinkStatus


@dataclass(frozen=True)
class OtlpView:
    enabled: bool
    endpoint: str
    header_names: list[str]
    headers_set: bool
    service_name: str
    include_bodies: bool
    sample_rate: float
    source: str
    updated_at: datetime | None
    updated_by: str
    status: SinkStatus


def _status(row: TelemetryStatus | None, cfg: LangfuseConfig | OtlpConfig) -> SinkStatus:
    st = sink_status(row, active=cfg.active, since=cfg.updated_at)
    if cfg.problem and cfg.enabled:  # the settings in force cannot be used: that is the error to show
        return SinkStatus("error", st.last_ok_at, cfg.problem, st.last_error_at, st.exported, st.dropped)
    return st


def load_views(engine: Engine, box: SecretBox, settings: Settings) -> tuple[LangfuseView, OtlpView]:
    """Both sinks as configured now (the saved row, else the environment) with their shared status.

    Secrets are decrypted only to tell whether they still can be; the views carry none."""
    rows, status = stored_rows(engine), read_status(engine)
    langfuse, otlp = configs_from(rows, box, settings)
    lf_row, ot_row = rows.get(LANGFUSE), rows.get(OTLP)
    lf = LangfuseView(
        enabled=langfuse.enabled,
        host=langfuse.host,
        public_key=langfuse.public_key,
        secret_set=bool(lf_row.secret_encrypted) if lf_row is not None else bool(langfuse.secret_key),
        include_bodies=langfuse.include_bodies,
        sample_rate=langfuse.sample_rate,
        source=langfuse.source,
        updated_at=as_utc(langfuse.updated_at),
        updated_by=langfuse.updated_by,
        status=_status(status.get(LANGFUSE), langfuse),
    )
    env_headers = settings.otel_exporter_headers.get_secret_value() if settings.otel_exporter_headers else ""
    ot = OtlpView(
        enabled=otlp.enabled,
        endpoint=otlp.endpoint,
        header_names=sorted(ot_row.header_names or []) if ot_row is not None else sorted(n for n, _ in otlp.headers),
        headers_set=bool(ot_row.headers_encrypted) if ot_row is not None else bool(env_headers),
        service_name=otlp.service_name,
        include_bodies=otlp.include_bodies,
        sample_rate=otlp.sample_rate,
        source=otlp.source,
        updated_at=as_utc(otlp.updated_at),
        updated_by=otlp.updated_by,
        status=_status(status.get(OTLP), otlp),
    )
    return lf, ot


def _credential(raw: str | None, label: str) -> str:
    value = (raw or "").strip()
    if len(value) > MAX_KEY:
        raise TelemetryConfigError(f"The {label} is longer than {MAX_KEY} characters.")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise TelemetryConfigError(f"The {label} contains spaces, line breaks or control characters.")
    return value


def _checked_url(engine: Engine, settings: Settings, raw: str, label: str) -> str:
    """A normalised http(s) URL that passes the gateway's SSRF guard (or is allow-listed)."""
    try:
        url = validate_base_url(raw)
        return check_upstream_url(url, allowlist(engine, settings.upstream_allowlist))
    except ConfigError as exc:
        message = str(exc).replace("base URL", f"{label} URL").replace("The upstream URL", f"The {label} URL")
        raise TelemetryConfigError(f"{label}: {message}") from None


def _save(
    engine: Engine, actor: str, sink: str, apply: dict[str, Any], audit_after: dict[str, Any]
) -> tuple[dict[str, Any] | None, TelemetrySink]:
    with session(engine) as s:
        row = s.get(TelemetrySink, sink)
        before = _audit_fields(row) if row is not None else None
        if row is None:
            row = TelemetrySink(name=sink)
        for name, value in apply.items():
            setattr(row, name, value)
        row.updated_at = datetime.now(UTC)
        row.updated_by = actor[:320]
        s.add(row)
        record(
            s,
            actor=actor,
            action="telemetry.update",
            target_type="telemetry_sink",
            target_id=sink,
            before=before,
            after=audit_after,
        )
        s.commit()
        s.refresh(row)
        return before, row


def _audit_fields(row: TelemetrySink) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "enabled": row.enabled,
        "endpoint": row.endpoint,
        "include_bodies": row.include_bodies,
        "sample_rate": row.sample_rate,
    }
    if row.name == LANGFUSE:
        fields |= {"public_key": row.public_key, "secret_key_set": bool(row.secret_encrypted)}
    else:
        fields |= {"header_names": list(row.header_names or []), "headers_set": bool(row.headers_encrypted)}
        fields["service_name"] = row.service_name
    return fields


def save_langfuse(
    engine: Engine,
    box: SecretBox,
    settings: Settings,
    actor: str,
    *,
    enabled: bool,
    host: str,
    public_key: str,
    secret_key: str | None,
    include_bodies: bool,
    sample_rate: float,
) -> LangfuseView:
    """Store the Langfuse sink; an empty `secret_key` keeps the one in force. Raises TelemetryConfigError."""
    rate = check_sample_rate(sample_rate)
    public = _credential(public_key, "public key")
    secret = _credential(secret_key, "secret key")
    host = host.strip() or DEFAULT_LANGFUSE_HOST
    url = _checked_url(engine, settings, host, "Langfuse host")
    if not secret:
        secret = _current_langfuse_secret(engine, box, settings)
    if enabled and not public:
        raise TelemetryConfigError("Enter the Langfuse project's public key (pk-lf-…) to turn the export on.")
    if enabled and not secret:
        raise TelemetryConfigError("Enter the Langfuse project's secret key (sk-lf-…) to turn the export on.")
    apply = {
        "enabled": enabled,
        "endpoint": url,
        "public_key": public,
        "secret_encrypted": box.encrypt(secret) if secret else None,
        "include_bodies": include_bodies,
        "sample_rate": rate,
    }
    after = {"enabled": enabled, "endpoint": url, "public_key": public, "secret_key_set": bool(secret)}
    _save(engine, actor, LANGFUSE, apply, after | {"include_bodies": include_bodies, "sample_rate": rate})
    return load_views(engine, box, settings)[0]


def _current_langfuse_secret(engine: Engine, box: SecretBox, settings: Settings) -> str:
    """The secret in force (the saved one, else the environment's), kept when the form leaves it empty."""
    langfuse, _ = load_config(engine, box, settings)
    if langfuse.problem and "decrypt" in langfuse.problem:
        raise TelemetryConfigError(langfuse.problem)
    return langfuse.secret_key


def save_otlp(
    engine: Engine,
    box: SecretBox,
    settings: Settings,
    actor: str,
    *,
    enabled: bool,
    endpoint: str,
    headers: str | None,
    service_name: str,
    include_bodies: bool,
    sample_rate: float,
) -> OtlpView:
    """Store the OTLP sink; `headers` None keeps those in force, "" removes them. Raises TelemetryConfigError."""
    rate = check_sample_rate(sample_rate)
    name = service_name.strip() or DEFAULT_SERVICE_NAME
    if len(name) > 200 or not name.isprintable():
        raise TelemetryConfigError("The service name must be at most 200 printable characters.")
    url = ""
    if endpoint.strip():
        url = _checked_url(engine, settings, otlp_traces_url(endpoint), "OTLP endpoint")
    elif enabled:
        raise TelemetryConfigError("Enter the OTLP/HTTP endpoint (e.g. http://collector:4318) to turn the export on.")
    pairs = parse_headers(headers) if headers is not None else _current_otlp_headers(engine, box, settings)
    apply = {
        "enabled": enabled,
        "endpoint": url,
        "headers_encrypted": box.encrypt(orjson.dumps(pairs).decode()) if pairs else None,
        "header_names": [n for n, _ in pairs],
        "service_name": name,
        "include_bodies": include_bodies,
        "sample_rate": rate,
    }
    after = {"enabled": enabled, "endpoint": url, "header_names": [n for n, _ in pairs], "headers_set": bool(pairs)}
    after |= {"service_name": name, "include_bodies": include_bodies, "sample_rate": rate}
    _save(engine, actor, OTLP, apply, after)
    return load_views(engine, box, settings)[1]


def _current_otlp_headers(engine: Engine, box: SecretBox, settings: Settings) -> tuple[tuple[str, str], ...]:
    """The headers in force (saved, else the environment's), kept when the form leaves them alone."""
    _, otlp = load_config(engine, box, settings)
    if otlp.problem and ("decrypt" in otlp.problem or "HEADERS" in otlp.problem):
        raise TelemetryConfigError(f"{otlp.problem} Enter the headers again (or leave them empty).")
    return otlp.headers


async def test_sink(engine: Engine, box: SecretBox, settings: Settings, sink: str) -> tuple[bool, str]:
    """Send one test trace to the sink as configured now and say what happened, in plain words.

    For Langfuse the keys are checked first (the SDK's auth check: the project they belong to). The URL
    passes the SSRF guard again, with DNS, since names can change after the form was saved.
    """
    from llm_console.telemetry import probe  # the SDKs load only when a test is asked for

    if sink not in (LANGFUSE, OTLP):
        return False, f"Unknown sink {sink[:40]!r}: choose langfuse or otlp."
    langfuse, otlp = await asyncio.to_thread(load_config, engine, box, settings)
    allow = await asyncio.to_thread(allowlist, engine, settings.upstream_allowlist)
    timeout = min(settings.telemetry_export_timeout_s, 15.0)
    cfg: LangfuseConfig | OtlpConfig = langfuse if sink == LANGFUSE else otlp
    if cfg.problem:
        return False, cfg.problem
    if sink == LANGFUSE:
        if not (langfuse.host and langfuse.public_key and langfuse.secret_key):
            return False, "Langfuse is not configured: enter the host, public key and secret key first."
        url = langfuse.host
    else:
        if not otlp.endpoint:
            return False, "The OTLP export is not configured: enter the endpoint first."
        url = otlp.endpoint
    try:
        await check_url(url, allow)
    except SSRFError as exc:
        return False, f"Refused by the upstream guard: {exc}"
    if sink == LANGFUSE:
        return await asyncio.to_thread(probe.probe_langfuse, langfuse, timeout)
    return await asyncio.to_thread(probe.probe_otlp, otlp, timeout)


setattr(test_sink, "__test__", False)  # noqa: B010  (not a pytest test when a test module imports it by name)
