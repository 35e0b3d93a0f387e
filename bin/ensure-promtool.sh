#!/usr/bin/env bash
# Make `promtool` available (alert-rule unit tests). Idempotent: does nothing when it is on PATH;
# otherwise installs Debian's `prometheus` package (which ships promtool) and stops the
# Prometheus server the package may start, since only the tool is wanted.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-promtool: promtool is missing and installing it needs root (apt-get)" >&2
    exit 1
  fi
fi

echo "ensure-promtool: installing Debian's prometheus package for promtool"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package enables and may start a Prometheus server; CI needs only the binary.
$SUDO service prometheus stop >/dev/null 2>&1 || true
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null 2>&1 || { echo "ensure-promtool: promtool still not found" >&2; exit 1; }
promtool --version 2>&1 | head -n 1
