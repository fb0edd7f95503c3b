#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the status-page test
# (cmd/doubledutch TestStatusPageInChromium) when it is missing. Exits 0
# when chromium is (now) on PATH, 1 when it could not be installed; the
# test then skips with a loud message.
set -uo pipefail
command -v chromium >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-chromium: no apt-get here; install Chromium yourself" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium: need root to apt-get install chromium" >&2
  exit 1
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
