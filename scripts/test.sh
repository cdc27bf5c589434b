#!/usr/bin/env bash
# Install everything (project, test tools, Debian Chromium and podman for the browser and container tests),
# then ruff, mypy and the whole suite.
source "$(dirname "$0")/_venv.sh" "[test]"
# Debian packages for the browser tests (Chromium) and the Docker Engine API tests (podman serves it).
NEED=""
[ -x /usr/bin/chromium ] || NEED="$NEED chromium"
command -v podman >/dev/null || NEED="$NEED podman runc busybox-static"
if [ -n "$NEED" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages for the browser and container tests:$NEED ..."
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $NEED >/dev/null
fi
ruff check .
ruff format --check .
mypy
exec python -m pytest "$@"
