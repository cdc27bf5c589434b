"""LiteLLM's proxy, the peer to beat: its own cached virtualenv, a no-database config, and the command to serve it.

The venv lives outside the repository (reused across runs) so LiteLLM's large dependency tree never mixes
with the project's. Run this file alone to create the venv ahead of a benchmark:
`.venv/bin/python benchmarks/litellm_env.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LITELLM_VERSION = "1.108.7"  # newest whose [proxy] extra resolves here (1.108.8+ need unpublished extras); > 1.83
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmc-bench"
INSTALL_TIMEOUT_S = 1200
MASTER_KEY = "sk-bench-litellm-master"  # auth on, as in our gateway; with no database only this key exists


class LiteLLMUnavailable(Exception):
    """The venv could not be made (no network, no wheel, pip failed); the message says why, in one line."""


@dataclass(frozen=True)
class LiteLLMEnv:
    """A ready virtualenv with `litellm[proxy]` at one version."""

    root: Path
    version: str

    @property
    def litellm(self) -> Path:
        return self.root / "bin" / "litellm"


def venv_dir(version: str) -> Path:
    return CACHE_ROOT / f"litellm-{version}"


def ensure_env(version: str = LITELLM_VERSION, log: Path | None = None) -> LiteLLMEnv:
    """Reuse the venv when its marker file says the install finished; otherwise (re)create it with pip."""
    root = venv_dir(version)
    env = LiteLLMEnv(root, version)
    marker = root / ".installed"
    if marker.exists() and env.litellm.exists():
        return env
    root.parent.mkdir(parents=True, exist_ok=True)
    log = log or root.parent / f"litellm-{version}-install.log"
    base_python = getattr(sys, "_base_executable", sys.executable)  # not the project's venv python
    steps = [
        [base_python, "-m", "venv", "--clear", str(root)],
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={version}"],
    ]
    with log.open("w") as fh:
        for cmd in steps:
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            try:
                done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise LiteLLMUnavailable(f"{cmd[2] if len(cmd) > 2 else cmd[0]}: {exc}") from None
            if done.returncode != 0:
                raise LiteLLMUnavailable(f"`{' '.join(cmd[-3:])}` failed (exit {done.returncode}); see {log}")
    if not env.litellm.exists():
        raise LiteLLMUnavailable(f"pip finished but {env.litellm} is missing; see {log}")
    marker.write_text(version + "\n")
    return env


def write_config(path: Path, models: dict[str, tuple[str, str]]) -> Path:
    """`models` maps a client-facing name to (upstream base URL ending in /v1, upstream model name)."""
    lines = ["model_list:"]
    for name, (base_url, upstream_model) in models.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{upstream_model}",
            f"      api_base: {base_url}",
            "      api_key: dummy",
        ]
    lines += [
        "litellm_settings:",
        "  telemetry: false",
        "  drop_params: true",
        "  set_verbose: false",
        "general_settings:",
        f"  master_key: {MASTER_KEY}",
        "  disable_spend_logs: true",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def server_env(base: dict[str, str]) -> dict[str, str]:
    """No database, no telemetry, no cost-map download, quiet logs: the proxy's own work only."""
    env = {k: v for k, v in base.items() if not k.startswith(("LITELLM_", "DATABASE_URL", "PYTHONPATH"))}
    env.update(
        # without this, token counting for a llama-named model retries a tokenizer download for ~20 s at a time
        HF_HUB_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        LITELLM_LOG="ERROR",
        LITELLM_MODE="PRODUCTION",
        DISABLE_SCHEMA_UPDATE="True",
        DISABLE_ADMIN_UI="True",
        NO_DOCS="True",
        NO_REDOC="True",
        PYTHONUNBUFFERED="1",
    )
    return env


def command(env: LiteLLMEnv, config: Path, port: int) -> list[str]:
    return [str(env.litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


if __name__ == "__main__":
    try:
        ready = ensure_env(sys.argv[1] if len(sys.argv) > 1 else LITELLM_VERSION)
    except LiteLLMUnavailable as exc:
        print(f"LiteLLM unavailable: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"litellm[proxy]=={ready.version} ready in {ready.root}")
