#!/usr/bin/env bash
# `make test`: the browser check of /docs (tests/e2e/test_docs_browser.py) needs a headless
# Chromium. Installs Debian's package when none is on PATH and apt-get can be used (root).
set -uo pipefail
for b in chromium chromium-browser google-chrome chrome; do
  command -v "$b" >/dev/null 2>&1 && exit 0
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Chromium (headless browser for the /docs test)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    && exit 0
fi
echo "no Chromium and cannot install it here: the /docs browser test will be skipped" >&2
exit 0
