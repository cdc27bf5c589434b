#!/usr/bin/env bash
# Install everything (project, test tools, Debian Chromium for browser tests), then ruff, mypy and the whole suite.
source "$(dirname "$0")/_venv.sh" "[test]"
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests ..."
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
ruff check .
ruff format --check .
mypy
exec python -m pytest "$@"
