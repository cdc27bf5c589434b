""" "Send a test": one span straight through a fresh exporter, and for Langfuse the SDK's key check first.

Nothing here touches the running export pipeline: the Langfuse client is a per-key singleton inside its
SDK, so a test builds only the REST client and its own exporter, never a second `Langfuse` object.
Blocking calls: run them in a thread.
"""

from __future__ import annotations

import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from llm_console.telemetry.config import LangfuseConfig, OtlpConfig
from llm_console.telemetry.exporters import (
    capture_export_errors,
    failure_reason,
    langfuse_endpoint,
    langfuse_exporter,
    otlp_exporter,
)

TEST_SPAN = "llm-console connection test"


def _send(exporter: SpanExporter, endpoint: str, service: str, attributes: dict[str, str | bool]) -> tuple[bool, str]:
    tracer = TracerProvider(resource=Resource.create({"service.name": service})).get_tracer("llm_console.telemetry")
    span = tracer.start_span(TEST_SPAN, kind=SpanKind.CLIENT, attributes=attributes)
    span.end()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    with capture_export_errors() as captured:
        try:
            result = exporter.export([span])  # type: ignore[list-item]  # an ended SDK span is a ReadableSpan
        finally:
            exporter.shutdown()
    if result is SpanExportResult.SUCCESS:
        return True, trace_id
    return False, failure_reason(captured.reason(), endpoint)


def probe_otlp(cfg: OtlpConfig, timeout_s: float) -> tuple[bool, str]:
    ok, detail = _send(otlp_exporter(cfg, timeout_s), cfg.endpoint, cfg.service_name, {"llm_console.test": True})
    if not ok:
        return False, detail
    return True, f"The collector at {cfg.endpoint} accepted a test span ({TEST_SPAN!r}, trace id {detail})."


def _auth_check(cfg: LangfuseConfig, timeout_s: float) -> tuple[bool, str]:
    """The SDK's auth check (GET /api/public/projects with the key pair): (ok, project name or why not)."""
    import httpx
    from langfuse import __version__ as sdk_version
    from langfuse.api import LangfuseAPI
    from langfuse.api.core import ApiError

    with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
        api = LangfuseAPI(
            base_url=cfg.host,
            username=cfg.public_key,
            password=cfg.secret_key,
            x_langfuse_sdk_name="python",
            x_langfuse_sdk_version=sdk_version,
            x_langfuse_public_key=cfg.public_key,
            httpx_client=http,
            timeout=timeout_s,
        )
        try:
            projects = api.projects.get()
        except ApiError as exc:
            if exc.status_code in (401, 403):
                return False, f"Langfuse at {cfg.host} refused the keys (HTTP {exc.status_code}): check both keys."
            return False, f"Langfuse at {cfg.host} answered the key check with HTTP {exc.status_code}."
        except httpx.HTTPError as exc:
            return False, f"Langfuse at {cfg.host} could not be reached: {type(exc).__name__}: {exc}"
        except ValueError as exc:  # an answer that is not the project list (not a Langfuse server?)
            return False, f"{cfg.host} did not answer like Langfuse: {type(exc).__name__}"
    if not projects.data:
        return False, f"Langfuse at {cfg.host} knows the keys but finds no project for them."
    return True, projects.data[0].name


def probe_langfuse(cfg: LangfuseConfig, timeout_s: float) -> tuple[bool, str]:
    from langfuse import LangfuseOtelSpanAttributes as A

    started = time.monotonic()
    ok, project = _auth_check(cfg, timeout_s)
    if not ok:
        return False, project
    remaining = max(timeout_s - (time.monotonic() - started), 1.0)
    attributes: dict[str, str | bool] = {A.TRACE_NAME: TEST_SPAN, A.OBSERVATION_TYPE: "span", "llm_console.test": True}
    endpoint = langfuse_endpoint(cfg.host)
    sent, detail = _send(langfuse_exporter(cfg, remaining), endpoint, "llm-console", attributes)
    if not sent:
        return False, f"The keys are valid (project {project!r}), but the test trace was refused. {detail}"
    return True, f"Keys valid for project {project!r}; Langfuse accepted a test trace ({TEST_SPAN!r}, id {detail})."
