"""OpenAI-compatible upstream simulator with vLLM-style metrics, for demos, tests and benchmarks."""

from llm_console.simulator.app import create_app
from llm_console.simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_app"]
