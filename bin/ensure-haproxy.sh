#!/usr/bin/env bash
# Make `haproxy` available (the scale harness, bench/scale.py: `make scale`).
# Idempotent: does nothing when it is found (on PATH or in /usr/sbin); otherwise installs
# Debian's `haproxy` package and stops the server the package may start: the scale harness
# starts its own, on a free port, and stops it.
set -euo pipefail

found() { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }

if found; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-haproxy: haproxy is missing and installing it needs root (apt-get install haproxy)" >&2
    exit 1
  fi
fi

echo "ensure-haproxy: installing Debian's haproxy package"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null
$SUDO service haproxy stop >/dev/null 2>&1 || true
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
fi

found || { echo "ensure-haproxy: haproxy still not found" >&2; exit 1; }
"$(command -v haproxy || echo /usr/sbin/haproxy)" -v 2>&1 | head -n 1
