"""LLM Console: an OpenAI-compatible LLM gateway and the operator console over it."""

__version__ = "0.1.0"
