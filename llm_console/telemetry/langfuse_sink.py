"""Langfuse export through the pinned SDK: one trace per call holding one generation.

The SDK (v5, OpenTelemetry underneath) starts observations "now" and its public `start_observation` takes
no start time, but a call is exported after it ended. The supported way round is the one the SDK is built
on: the generation is an OpenTelemetry span of the client's own TracerProvider, started with the call's
real start time, wrapped in the SDK's public `LangfuseGeneration` (which sets model, usage, cost, level and
completion start time as Langfuse attributes) and ended with `end(end_time=...)`; trace-level fields
(name, user, session, tags, metadata) come from the SDK's `propagate_attributes`, which its span processor
applies to spans started inside it. The provider is dedicated (`tracer_provider=`), never the global one.
"""

from __future__ import annotations

import math
from typing import Any

from opentelemetry.trace import SpanKind

from llm_console.db.records import LogRecord
from llm_console.services.request_detail import mask_secrets
from llm_console.telemetry.config import LANGFUSE, LangfuseConfig
from llm_console.telemetry.convert import (
    DeploymentInfo,
    ScoreRecord,
    body_value,
    ended_ns,
    first_token_at,
    genai_attributes,
    span_name,
    started_ns,
    tags,
    trace_id_for,
    trace_name,
)
from llm_console.telemetry.exporters import CountingExporter, langfuse_endpoint, langfuse_exporter
from llm_console.telemetry.status import SinkCounters
from llm_console.telemetry.tracing import SCOPE, RequestIds, dedicated_provider

# The SDK's span processor keeps the OpenTelemetry default queue (2048 spans), which drops silently when
# full; calls beyond this backlog are dropped (and counted) before that.
MAX_BACKLOG_SPANS = 1536
SEND_INTERVAL_S = 1.0
LANGFUSE_ID_LIMIT = 200  # the SDK drops user, session and tag values longer than this


class LangfuseClientBusy(RuntimeError):
    """Another Langfuse client with this public key is alive in the process (the SDK keeps one per key)."""


def _short(value: str | None) -> str | None:
    return value if value and len(value) <= LANGFUSE_ID_LIMIT and value.isascii() else None


def release_sdk_client(public_key: str, resources: object) -> None:
    """Forget the SDK's per-public-key singleton after shutting it down, so a reload with changed settings
    (same key, new host or secret) builds a new one instead of getting the old, shut-down client back.

    Langfuse 5.0.4 keeps these in `LangfuseResourceManager._instances` and removes them only in `reset()`,
    which would also shut down clients that are not ours; a test pins this behaviour for SDK upgrades.
    """
    from langfuse._client.resource_manager import LangfuseResourceManager

    with LangfuseResourceManager._lock:
        if LangfuseResourceManager._instances.get(public_key) is resources:
            del LangfuseResourceManager._instances[public_key]


class LangfuseSink:
    name = LANGFUSE

    def __init__(self, cfg: LangfuseConfig, counters: SinkCounters, timeout_s: float) -> None:
        from langfuse import Langfuse

        self.cfg = cfg
        self.counters = counters
        self._ids = RequestIds()
        self.provider = dedicated_provider("llm-console", self._ids)
        exporter = CountingExporter(langfuse_exporter(cfg, timeout_s), counters, langfuse_endpoint(cfg.host))
        self.client = Langfuse(
            public_key=cfg.public_key,
            secret_key=cfg.secret_key,
            base_url=cfg.host,
            timeout=max(1, math.ceil(timeout_s)),
            flush_interval=SEND_INTERVAL_S,
            tracer_provider=self.provider,
            span_exporter=exporter,
            should_export_span=lambda _span: True,  # the provider is ours alone: every span on it is for Langfuse
        )
        resources = getattr(self.client, "_resources", None)
        if resources is None or getattr(resources, "tracer_provider", None) is not self.provider:
            self.provider.shutdown()
            raise LangfuseClientBusy(
                f"another Langfuse client for public key {cfg.public_key!r} is already running in this process"
            )
        self._resources = resources
        self._tracer = self.provider.get_tracer(SCOPE)
        self.emitted_spans = 0

    @property
    def backlog(self) -> int:
        return self.emitted_spans - self.counters.settled_spans

    def _metadata(self, rec: LogRecord, dep: DeploymentInfo | None) -> dict[str, Any]:
        """Trace metadata: what ties the trace to the console (values the SDK keeps must be short)."""
        data = {
            "request_id": rec.id,
            "key_id": rec.key_id,
            "deployment_id": rec.deployment_id,
            "deployment": dep.name if dep is not None else None,
            "team_id": rec.team_id,
            "user_id": rec.user_id,
            "status_code": rec.status_code,
        }
        return {k: v for k, v in data.items() if v is not None}

    def export(self, rec: LogRecord, dep: DeploymentInfo | None) -> bool:
        """Hand one call to the SDK; False (and counted as dropped) when its sender is backed up."""
        from langfuse import LangfuseGeneration, propagate_attributes

        if self.backlog + 1 > MAX_BACKLOG_SPANS:
            self.counters.dropped(1)
            return False
        error = rec.status != "ok"
        prompt_only = max(rec.prompt_tokens - rec.cached_tokens, 0)
        usage = {
            "input": prompt_only,
            "output": rec.completion_tokens,
            "total": rec.prompt_tokens + rec.completion_tokens,
        }
        if rec.cached_tokens:
            usage["input_cached_tokens"] = rec.cached_tokens
        with (
            propagate_attributes(
                user_id=_short(rec.end_user),
                session_id=_short(rec.session_id),
                tags=[t for t in tags(rec) if _short(t)] or None,
                trace_name=trace_name(rec)[:LANGFUSE_ID_LIMIT],
                metadata=self._metadata(rec, dep),
            ),
            self._ids.trace(rec.id),
        ):
            span = self._tracer.start_span(
                span_name(rec), kind=SpanKind.CLIENT, attributes=genai_attributes(rec, dep), start_time=started_ns(rec)
            )
        generation = LangfuseGeneration(
            otel_span=span,
            langfuse_client=self.client,
            model=rec.model or rec.alias,
            usage_details=usage,
            cost_details={"total": rec.cost_usd},
            completion_start_time=first_token_at(rec),
            level="ERROR" if error else None,
            status_message=f"{rec.error_type or rec.status}: {rec.error_message or ''}".rstrip(": ")[:1000]
            if error
            else None,
            # bodies leave with anything that looks like a credential masked, as the console shows them
            input=body_value(mask_secrets(rec.request_body)) if self.cfg.include_bodies else None,
            output=body_value(mask_secrets(rec.response_body))
            if self.cfg.include_bodies and rec.response_body
            else None,
            metadata={"endpoint": rec.endpoint, "alias": rec.alias, "stream": rec.stream, "attempts": rec.attempts},
        )
        generation.end(end_time=ended_ns(rec))
        self.emitted_spans += 1
        return True

    def export_score(self, score: ScoreRecord) -> None:
        """A feedback score as a Langfuse score on the call's trace (its id is the request id) or on the
        session; the SDK batches these to POST /api/public/scores from its own thread."""
        trace_id = f"{trace_id_for(score.request_id):032x}" if score.request_id else None
        common: dict[str, Any] = {
            "name": score.name,
            "trace_id": trace_id,
            "session_id": None if trace_id else score.session_id,
            "score_id": f"llmc-feedback-{score.id}" if score.id is not None else None,
            "comment": score.comment,
            "timestamp": score.created_at,
            "metadata": {"source": score.source, "alias": score.alias} if score.alias else {"source": score.source},
        }
        if score.value is not None:
            self.client.create_score(value=float(score.value), data_type="NUMERIC", **common)
        elif score.category is not None:
            self.client.create_score(value=score.category, data_type="CATEGORICAL", **common)

    def close(self) -> None:
        """Flush and stop the SDK's threads, stop our provider's sender, and release the SDK's singleton."""
        try:
            self.client.shutdown()
            self.provider.shutdown()
        finally:
            release_sdk_client(self.cfg.public_key, self._resources)
