"""The OpenTelemetry plumbing both sinks share: a dedicated TracerProvider whose trace ids are request ids.

Each sink owns its provider (never the global one, which the application or other libraries may use), an
ALWAYS_ON sampler (the pipeline samples per request id itself, so OTEL_TRACES_SAMPLER cannot change it),
and `RequestIds`, which makes the root span's trace id the request id the worker is exporting.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from llm_console.telemetry.convert import trace_id_for

SCOPE = "llm_console.telemetry"


class RequestIds(IdGenerator):
    """Trace ids from the request being exported (set per thread with `trace`); random span ids."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._rng = random.Random()

    @contextlib.contextmanager
    def trace(self, request_id: str) -> Iterator[None]:
        self._local.trace_id = trace_id_for(request_id)
        try:
            yield
        finally:
            self._local.trace_id = None

    def generate_trace_id(self) -> int:
        value = getattr(self._local, "trace_id", None)
        return value if value else self._rng.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1


def dedicated_provider(service_name: str, ids: RequestIds) -> TracerProvider:
    return TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=ALWAYS_ON, id_generator=ids)
