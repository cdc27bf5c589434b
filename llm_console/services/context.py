"""The console process's long-lived objects, created on first use (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy.engine import Engine

from llm_console.gateway.runtime import GatewayRuntime
from llm_console.services.gpu_usage import UsageCache
from llm_console.services.sessions import SessionCache
from llm_console.settings import Settings, get_settings


@dataclass
class ConsoleContext:
    settings: Settings
    runtime: GatewayRuntime
    sessions: SessionCache
    gpu_usage: UsageCache = field(default_factory=UsageCache)  # the Costs page's GPU-cost shares, past hours

    @property
    def engine(self) -> Engine:
        return self.runtime.engine


@lru_cache(maxsize=1)
def get_context() -> ConsoleContext:
    settings = get_settings()
    runtime = GatewayRuntime(settings)
    return ConsoleContext(settings, runtime, SessionCache(runtime.engine))
