"""A local stand-in for Langfuse and an OTLP collector: a threaded HTTP server on 127.0.0.1.

It accepts what the exporters and the Langfuse SDK send — OTLP/HTTP protobuf on `/v1/traces` and on
Langfuse's `/api/public/otel/v1/traces` (gzip or not), the key check `GET /api/public/projects`, scores
on `POST /api/public/scores` — decodes the protobuf with opentelemetry.proto's ExportTraceServiceRequest,
and keeps every request for the tests to read. `status` makes trace posts fail; `delay_s` slows them.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACE_PATHS = ("/v1/traces", "/api/public/otel/v1/traces")
PUBLIC_KEY, SECRET_KEY = "pk-lf-test-public", "sk-lf-test-secret-0123456789"


@dataclass
class ReceivedSpan:
    path: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    resource: dict[str, Any]
    scope: str


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass
class Receiver:
    port: int = 0
    status: int = 200  # what trace posts answer
    delay_s: float = 0.0  # how long trace posts take to answer
    public_key: str = PUBLIC_KEY
    secret_key: str = SECRET_KEY
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers
    scores: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def traces_posts(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for m, p, h in self.requests if m == "POST" and p == path]

    def spans_at(self, path: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.path == path]

    def wait_spans(self, path: str, count: int, timeout_s: float = 15.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.spans_at(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(self.spans_at(path))} spans at {path} after {timeout_s}s, wanted {count}")

    def wait_scores(self, count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.scores) >= count:
                    return list(self.scores)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.scores)} scores after {timeout_s}s, wanted {count}")

    def _authorized(self, headers: dict[str, str]) -> bool:
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return headers.get("authorization") == f"Basic {token}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests.append((method, path, headers))
        if method == "POST" and path in TRACE_PATHS:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.status != 200:
                return self.status, "application/json", b'{"error": "refused by the test receiver"}'
            if path.startswith("/api/") and not self._authorized(headers):
                return 401, "application/json", b'{"error": "unauthorized"}'
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self._keep(path, request)
            return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()
        if method == "GET" and path == "/api/public/projects":
            if not self._authorized(headers):
                return 401, "application/json", b'{"message": "Invalid credentials"}'
            project = {"id": "p1", "name": "test-project", "organization": {"id": "o1", "name": "org"}, "metadata": {}}
            return 200, "application/json", json.dumps({"data": [project]}).encode()
        if method == "POST" and path == "/api/public/scores":
            if not self._authorized(headers):
                return 401, "application/json", b'{"message": "Invalid credentials"}'
            payload = json.loads(body or b"[]")
            with self.lock:
                self.scores.extend(payload if isinstance(payload, list) else [payload])
            return 202, "application/json", b'{"message": "Accepted"}'
        return 404, "application/json", b'{"error": "not found"}'

    def _keep(self, path: str, request: ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(
                        ReceivedSpan(
                            path=path,
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            attributes={kv.key: _value(kv.value) for kv in s.attributes},
                            status_code=s.status.code,
                            status_message=s.status.message,
                            resource=resource,
                            scope=ss.scope.name,
                        )
                    )
        with self.lock:
            self.spans.extend(found)


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, media, payload = self.receiver.handle(method, self.path.split("?", 1)[0], headers, body)
        self.send_response(status)
        self.send_header("content-type", media)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class Running:
    """A started receiver; `stop()` shuts the server down and frees the port."""

    def __init__(self, receiver: Receiver) -> None:
        handler = type("Handler", (_Handler,), {"receiver": receiver})
        self.server = ThreadingHTTPServer(("127.0.0.1", receiver.port), handler)
        self.server.daemon_threads = True
        receiver.port = self.server.server_address[1]
        self.receiver = receiver
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-receiver", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
