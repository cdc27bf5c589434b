"""Application services: the only place that changes configuration (and audits it)."""
