"""The analytics API, like the gateway, starts without importing Reflex: checked in a clean interpreter."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import llm_console.api, llm_console.api.routes, llm_console.services.budgets
ui = ("reflex.", "llm_console.state", "llm_console.pages", "llm_console.components")
bad = sorted(m for m in sys.modules if m == "reflex" or m.startswith(ui))
assert not bad, bad
"""


def test_the_api_imports_without_reflex() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
