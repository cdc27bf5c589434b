#!/usr/bin/env bash
# Install everything into .venv, migrate the embedded SQLite database and start the console and the
# gateway on http://localhost:3000 in demo mode (simulated upstream + gentle traffic).
source "$(dirname "$0")/_venv.sh" ""
exec llm-console run --demo "$@"
