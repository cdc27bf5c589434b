"""Upstream LLM simulator: vLLM-style OpenAI API plus Anthropic Messages and Azure OpenAI routes, with vLLM metrics.

Used for demos, tests and benchmarks; see `python -m llm_console.simulator --help` for the served routes.
"""

from llm_console.simulator.app import create_app
from llm_console.simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_app"]
