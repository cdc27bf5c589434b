"""Where each sink exports to: the Telemetry page's saved row when there is one, else the environment.

The runtime's export worker and the console's settings service both read it from here. Checks that need
no network (header syntax, sample rate) live here too; the SSRF check of URLs is the service's, at save.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

import orjson
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.telemetry_tables import TelemetrySink
from llm_console.settings import Settings

LANGFUSE, OTLP = "langfuse", "otlp"
SINKS = (LANGFUSE, OTLP)
DEFAULT_LANGFUSE_HOST = "https://cloud.langfuse.com"
DEFAULT_SERVICE_NAME = "llm-console"
OTLP_TRACES_PATH = "/v1/traces"
MAX_HEADERS = 20
MAX_HEADERS_CHARS = 8192
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
# Headers the exporter sets itself: a user value would break the request rather than add to it.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "host", "transfer-encoding"})

Headers = tuple[tuple[str, str], ...]


class TelemetryConfigError(ValueError):
    """A readable reason a telemetry setting was refused (shown on the page and in the sink's status)."""


@dataclass(frozen=True, slots=True)
class LangfuseConfig:
    enabled: bool
    host: str
    public_key: str
    secret_key: str = field(repr=False)
    include_bodies: bool
    sample_rate: float
    source: str  # console | environment | default
    updated_at: datetime | None = None
    updated_by: str = ""
    problem: str = ""  # why the settings in force cannot be used (shown as the sink's error)

    @property
    def active(self) -> bool:
        return self.enabled and not self.problem and bool(self.host and self.public_key and self.secret_key)


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    enabled: bool
    endpoint: str
    headers: Headers = field(repr=False)
    service_name: str
    include_bodies: bool
    sample_rate: float
    source: str
    updated_at: datetime | None = None
    updated_by: str = ""
    problem: str = ""

    @property
    def active(self) -> bool:
        return self.enabled and not self.problem and bool(self.endpoint)


def parse_headers(raw: str) -> Headers:
    """`name=value, name2=value2` (the OTEL_EXPORTER_OTLP_HEADERS form; values may be percent-encoded)."""
    if len(raw) > MAX_HEADERS_CHARS:
        raise TelemetryConfigError(f"The headers are longer than {MAX_HEADERS_CHARS} characters.")
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), unquote(value.strip())
        if not sep or not name:
            raise TelemetryConfigError(f"Header {part.strip()[:40]!r} is not name=value (e.g. Authorization=Bearer x).")
        if not _TOKEN.fullmatch(name):
            raise TelemetryConfigError(f"Header name {name[:40]!r} may hold only letters, digits and -_.!#$%&'*+^`|~.")
        if name.lower() in _RESERVED_HEADERS:
            raise TelemetryConfigError(f"Header {name!r} is set by the exporter itself and cannot be configured.")
        if not value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise TelemetryConfigError(f"Header {name!r} needs a value without line breaks or control characters.")
        out[name] = value
    if len(out) > MAX_HEADERS:
        raise TelemetryConfigError(f"At most {MAX_HEADERS} headers.")
    return tuple(out.items())


def check_sample_rate(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TelemetryConfigError("The sample rate must be a number from 0 to 1.")
    if not 0.0 <= value <= 1.0:
        raise TelemetryConfigError(f"The sample rate must be from 0 to 1 (1 exports every call), not {value:g}.")
    return float(value)


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: `/v1/traces` is added to a collector's base address that lacks it."""
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint or urlsplit(endpoint).path.endswith(OTLP_TRACES_PATH):
        return endpoint
    return endpoint + OTLP_TRACES_PATH


def stored_rows(engine: Engine) -> dict[str, TelemetrySink]:
    with session(engine) as s:
        return {row.name: row for row in s.exec(select(TelemetrySink))}


def env_url(raw: str, variable: str) -> tuple[str, str]:
    """An address from the environment, and what is wrong with it ("" when nothing). A URL with
    credentials is refused outright: it would be shown on the page and written in errors."""
    url = raw.strip().rstrip("/")
    if not url:
        return "", ""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return "", f"{variable} is not a valid URL."
    if parts.username or parts.password:
        return "", f"{variable} may not contain user:password@; put credentials in the keys or headers."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "", f"{variable} must be an http(s)://host[:port] URL."
    return url, ""


def env_langfuse(settings: Settings) -> LangfuseConfig:
    secret = settings.langfuse_secret_key.get_secret_value() if settings.langfuse_secret_key else ""
    given = bool(settings.langfuse_host or settings.langfuse_public_key or secret)
    host, problem = env_url(settings.langfuse_host or DEFAULT_LANGFUSE_HOST, "LLMC_LANGFUSE_HOST")
    return LangfuseConfig(
        enabled=bool(settings.langfuse_public_key and secret),
        host=host,
        public_key=settings.langfuse_public_key.strip(),
        secret_key=secret,
        include_bodies=settings.langfuse_include_bodies,
        sample_rate=settings.langfuse_sample_rate,
        source="environment" if given else "default",
        problem=problem,
    )


def env_otlp(settings: Settings) -> OtlpConfig:
    raw = settings.otel_exporter_headers.get_secret_value() if settings.otel_exporter_headers else ""
    endpoint, problem = env_url(settings.otel_exporter_endpoint, "LLMC_OTEL_EXPORTER_ENDPOINT")
    headers: Headers = ()
    try:
        headers = parse_headers(raw) if raw else ()
    except TelemetryConfigError as exc:
        problem = problem or f"LLMC_OTEL_EXPORTER_HEADERS: {exc}"
    return OtlpConfig(
        enabled=bool(endpoint) or bool(problem and settings.otel_exporter_endpoint),
        endpoint=otlp_traces_url(endpoint),
        headers=headers,
        service_name=settings.otel_service_name,
        include_bodies=settings.otel_include_bodies,
        sample_rate=settings.otel_sample_rate,
        source="environment" if settings.otel_exporter_endpoint or raw else "default",
        problem=problem,
    )


_UNREADABLE = "The stored {} cannot be decrypted with this LLMC_SECRET_KEY; enter it again on the Telemetry page."


def stored_langfuse(row: TelemetrySink, box: SecretBox) -> LangfuseConfig:
    secret, problem = "", ""
    try:
        secret = box.decrypt(row.secret_encrypted) if row.secret_encrypted else ""
    except ValueError:
        problem = _UNREADABLE.format("Langfuse secret key")
    return LangfuseConfig(
        enabled=row.enabled,
        host=row.endpoint,
        public_key=row.public_key,
        secret_key=secret,
        include_bodies=row.include_bodies,
        sample_rate=row.sample_rate,
        source="console",
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        problem=problem,
    )


def stored_otlp(row: TelemetrySink, box: SecretBox) -> OtlpConfig:
    headers: Headers = ()
    problem = ""
    try:
        if row.headers_encrypted:
            headers = tuple((str(k), str(v)) for k, v in orjson.loads(box.decrypt(row.headers_encrypted)))
    except ValueError:
        problem = _UNREADABLE.format("OTLP headers")
    return OtlpConfig(
        enabled=row.enabled,
        endpoint=row.endpoint,
        headers=headers,
        service_name=row.service_name or DEFAULT_SERVICE_NAME,
        include_bodies=row.include_bodies,
        sample_rate=row.sample_rate,
        source="console",
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        problem=problem,
    )


def load_config(engine: Engine, box: SecretBox, settings: Settings) -> tuple[LangfuseConfig, OtlpConfig]:
    """Both sinks as they apply now, secrets decrypted (for the exporter; never for display). A sink whose
    settings cannot be used (a secret that no longer decrypts, a bad environment value) says why in
    `problem` and is not active; only a database error raises."""
    return configs_from(stored_rows(engine), box, settings)


def configs_from(
    rows: dict[str, TelemetrySink], box: SecretBox, settings: Settings
) -> tuple[LangfuseConfig, OtlpConfig]:
    langfuse = stored_langfuse(rows[LANGFUSE], box) if LANGFUSE in rows else env_langfuse(settings)
    otlp = stored_otlp(rows[OTLP], box) if OTLP in rows else env_otlp(settings)
    return langfuse, otlp
