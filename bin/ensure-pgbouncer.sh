#!/usr/bin/env bash
# Make `pgbouncer` available (the suite's PgBouncer run, chefops/testing/pgbouncer.py).
# Idempotent: does nothing when it is found (on PATH or in /usr/sbin); otherwise installs
# Debian's `pgbouncer` package and stops the server the package may start: the test harness
# starts its own, on a free port, and stops it.
set -euo pipefail

found() { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }

if found; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-pgbouncer: pgbouncer is missing and installing it needs root (apt-get install pgbouncer)" >&2
    exit 1
  fi
fi

echo "ensure-pgbouncer: installing Debian's pgbouncer package"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
$SUDO service pgbouncer stop >/dev/null 2>&1 || true
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
fi

found || { echo "ensure-pgbouncer: pgbouncer still not found" >&2; exit 1; }
# Not through `xargs -I{} {}`: xargs does not replace the command name itself (exit 127).
"$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" --version 2>&1 | head -n 1
