"""Telemetry out: every gateway call exported to Langfuse and as OpenTelemetry GenAI spans over OTLP/HTTP.

The log writer hands each committed batch to `TelemetryExporter.offer` (pipeline.py), which only queues
it; a worker thread turns calls into spans (convert.py, langfuse_sink.py, otlp_sink.py) and the SDKs send
them from their own threads. Configuration (config.py) comes from the Telemetry page or the environment;
status (status.py) is shared by every process through the database. No Reflex import anywhere here.
"""
