"""The OTLP/HTTP exporters both sinks send through, and the wrapper that tells the status what happened.

The OpenTelemetry exporter only answers SUCCESS or FAILURE. Why it failed is seen two ways, both for the
thread that is exporting only (`capture_export_errors`): the `requests.Session` handed to the exporter
(its public `session=` parameter) notes each HTTP answer of 400 or more and each connection error, and
the exporter's own log records ("Transient error …") are kept too. The wrapper puts the most specific
reason in the sink's status.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llm_console.telemetry.config import LangfuseConfig, OtlpConfig
from llm_console.telemetry.status import SinkCounters

LANGFUSE_OTLP_PATH = "/api/public/otel/v1/traces"
EXPORTER_LOGGER = "opentelemetry.exporter"
_GENERIC = "Failed to export spans batch due to timeout"
_TRANSIENT = re.compile(r"Transient error (.*) encountered while exporting \w+ batch, retrying in [\d.]+s\.$", re.S)
_REFUSED = re.compile(r"Failed to export \w+ batch code: (\d+|None), reason: (.*)$", re.S)


@dataclass
class Captured:
    """What one export on this thread ran into: the HTTP session's notes, and the exporter's log lines."""

    answers: list[str] = field(default_factory=list)  # "HTTP 401 Unauthorized", "cannot connect: …"
    logs: list[str] = field(default_factory=list)

    def reason(self) -> str | None:
        """The most specific reason: the last failed answer, else the last log line that names one."""
        if self.answers:
            return self.answers[-1]
        plain = [r for r in map(_plain, self.logs) if r]
        return plain[-1] if plain else None


class _Capture(logging.Handler):
    """Hands the exporter's warnings and errors to whichever capture is open on the emitting thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def current(self) -> Captured | None:
        return getattr(self.local, "captured", None)

    def emit(self, record: logging.LogRecord) -> None:
        captured = self.current()
        if captured is not None:
            captured.logs.append(record.getMessage())


_capture = _Capture()
_install_lock = threading.Lock()
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def connection_problem(exc: Exception) -> str:
    """A requests exception in a few words: "cannot connect: Connection refused", "no answer before …"."""
    if isinstance(exc, requests.Timeout):
        return "no answer before the timeout"
    if isinstance(exc, requests.ConnectionError):
        found = _ERRNO.search(str(exc))
        return f"cannot connect: {found.group(1).strip()}" if found else f"cannot connect: {type(exc).__name__}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class ObservedSession(requests.Session):
    """The exporter's HTTP session: tells an open capture what each failed request got back."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        captured = _capture.current()
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException as exc:
            if captured is not None:
                captured.answers.append(connection_problem(exc))
            raise
        if response.status_code >= 400 and captured is not None:
            captured.answers.append(f"HTTP {response.status_code} {response.reason or ''}".strip())
        return response


def _install() -> None:
    with _install_lock:
        logger = logging.getLogger(EXPORTER_LOGGER)
        if _capture not in logger.handlers:
            logger.addHandler(_capture)


@contextlib.contextmanager
def capture_export_errors() -> Iterator[Captured]:
    """Collect what exports on this thread run into inside the block."""
    _install()
    captured = Captured()
    previous = _capture.current()
    _capture.local.captured = captured
    try:
        yield captured
    finally:
        _capture.local.captured = previous


def _plain(message: str) -> str | None:
    """The reason inside one exporter log message, in plain words; None for the reason-less ones."""
    transient = _TRANSIENT.match(message)
    if transient:
        return transient.group(1)
    refused = _REFUSED.match(message)
    if refused:
        code, why = refused.groups()
        return why if code == "None" else f"HTTP {code} {why}".strip()
    return None if message.startswith(_GENERIC) else message


def failure_reason(reason: str | None, endpoint: str, previous: str = "") -> str:
    """One line saying why an export failed: its own reason, else the previous failure's (a retry that
    ran out of time has none of its own), else the timeout."""
    if not reason:
        reason = f"{previous} (still failing)" if previous else "no answer within the export timeout, retries included"
    return f"Export to {endpoint} failed: {reason}"


def reason_of(line: str) -> str:
    """The reason part of a `failure_reason` line (to repeat it for a later, reason-less failure)."""
    reason = line.split(" failed: ", 1)[-1]
    return reason.removesuffix(" (still failing)")


class CountingExporter(SpanExporter):
    """Delegates to the real exporter and counts the outcome: one gateway call per root span in a batch."""

    def __init__(self, inner: OTLPSpanExporter, counters: SinkCounters, endpoint: str) -> None:
        self._inner = inner
        self._counters = counters
        self._endpoint = endpoint
        self._last_reason = ""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        calls = sum(1 for s in spans if s.parent is None)
        with capture_export_errors() as captured:
            try:
                result = self._inner.export(spans)
            except Exception as exc:  # the processor would only log it; the status must say so
                captured.answers.append(f"{type(exc).__name__}: {exc}")
                result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._counters.exported(calls, len(spans))
        else:
            line = failure_reason(captured.reason(), self._endpoint, self._last_reason)
            self._last_reason = reason_of(line)
            self._counters.failed(calls, len(spans), line)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def langfuse_endpoint(host: str) -> str:
    return host.rstrip("/") + LANGFUSE_OTLP_PATH


def langfuse_headers(cfg: LangfuseConfig, sdk_version: str) -> dict[str, str]:
    """What the Langfuse SDK's own exporter sends (Basic auth with the key pair; ingestion version 4, which
    the SDK documents as required on a custom exporter for real-time processing)."""
    token = base64.b64encode(f"{cfg.public_key}:{cfg.secret_key}".encode()).decode("ascii")
    return {
        "Authorization": f"Basic {token}",
        "x-langfuse-sdk-name": "python",
        "x-langfuse-sdk-version": sdk_version,
        "x-langfuse-public-key": cfg.public_key,
        "x-langfuse-ingestion-version": "4",
    }


def langfuse_exporter(cfg: LangfuseConfig, timeout_s: float) -> OTLPSpanExporter:
    from langfuse import __version__ as sdk_version

    return OTLPSpanExporter(
        endpoint=langfuse_endpoint(cfg.host),
        headers=langfuse_headers(cfg, sdk_version),
        timeout=timeout_s,
        compression=Compression.Gzip,
        session=ObservedSession(),
    )


def otlp_exporter(cfg: OtlpConfig, timeout_s: float) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=cfg.endpoint, headers=dict(cfg.headers), timeout=timeout_s, session=ObservedSession()
    )
