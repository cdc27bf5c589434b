"""OpenTelemetry export: one CLIENT span per call with the GenAI attributes, the call's own spans as children.

The root is named `{gen_ai.operation.name} {gen_ai.request.model}` and spans the whole call; auth, route,
limits, each upstream attempt and the stream relay become INTERNAL children at their real offsets.
Prompts and completions are added only when the sink's include_bodies is on (the GenAI conventions make
content capture opt-in). A BatchSpanProcessor sends from its own thread.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from llm_console.db.records import LogRecord
from llm_console.services.request_detail import mask_secrets
from llm_console.telemetry.config import OTLP, OtlpConfig
from llm_console.telemetry.convert import (
    DeploymentInfo,
    ScoreRecord,
    child_attributes,
    child_times,
    console_attributes,
    ended_ns,
    genai_attributes,
    input_messages,
    output_messages,
    span_name,
    started_ns,
)
from llm_console.telemetry.exporters import CountingExporter, otlp_exporter
from llm_console.telemetry.status import SinkCounters
from llm_console.telemetry.tracing import SCOPE, RequestIds, dedicated_provider

# Spans handed to the processor and not yet sent; past it, calls are dropped (and counted) before the
# processor's own queue, which would drop them silently, fills up.
MAX_BACKLOG_SPANS = 8192
BATCH_SPANS = 512
SEND_DELAY_MS = 1000


class OtlpSink:
    name = OTLP

    def __init__(self, cfg: OtlpConfig, counters: SinkCounters, timeout_s: float) -> None:
        self.cfg = cfg
        self.counters = counters
        self._ids = RequestIds()
        self.provider = dedicated_provider(cfg.service_name, self._ids)
        exporter = CountingExporter(otlp_exporter(cfg, timeout_s), counters, cfg.endpoint)
        self.provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=MAX_BACKLOG_SPANS + BATCH_SPANS,
                schedule_delay_millis=SEND_DELAY_MS,
                max_export_batch_size=BATCH_SPANS,
            )
        )
        self._tracer = self.provider.get_tracer(SCOPE)
        self.emitted_spans = 0

    @property
    def backlog(self) -> int:
        return self.emitted_spans - self.counters.settled_spans

    def export(self, rec: LogRecord, dep: DeploymentInfo | None) -> bool:
        """Hand one call to the processor; False (and counted as dropped) when the sender is backed up."""
        spans = 1 + len(rec.spans)
        if self.backlog + spans > MAX_BACKLOG_SPANS:
            self.counters.dropped(1)
            return False
        attributes = genai_attributes(rec, dep) | console_attributes(rec, dep)
        if self.cfg.include_bodies:
            content = {"gen_ai.input.messages": input_messages(rec), "gen_ai.output.messages": output_messages(rec)}
            # anything that looks like a credential is masked, as the console shows bodies
            attributes |= {k: mask_secrets(v) for k, v in content.items() if v is not None}
        with self._ids.trace(rec.id):
            root = self._tracer.start_span(
                span_name(rec),
                context=trace.set_span_in_context(trace.INVALID_SPAN),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=started_ns(rec),
            )
        parent = trace.set_span_in_context(root)
        for record_span in rec.spans:
            start, end = child_times(rec, record_span)
            child = self._tracer.start_span(
                record_span.name, context=parent, attributes=child_attributes(record_span), start_time=start
            )
            if record_span.status != "ok":
                child.set_status(
                    Status(StatusCode.ERROR, str(record_span.attributes.get("error") or record_span.status))
                )
            child.end(end_time=end)
        if rec.status != "ok":
            root.set_status(Status(StatusCode.ERROR, (rec.error_type or rec.status)[:200]))
        root.end(end_time=ended_ns(rec))
        self.emitted_spans += spans
        return True

    def export_score(self, score: ScoreRecord) -> None:
        """Feedback scores have no place in an OTLP trace export (they go to Langfuse only)."""

    def close(self) -> None:
        """Send what is queued (bounded by the exporter's timeout), then stop the sender thread."""
        self.provider.shutdown()
