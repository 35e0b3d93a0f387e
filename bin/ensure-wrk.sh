#!/usr/bin/env bash
# Make the `wrk` HTTP load generator available for bench/http_load.py (its C load driver, which
# takes far less CPU than the python driver on the server's cores). Idempotent: does nothing when
# wrk is on PATH; as root with apt-get, installs Debian's `wrk` package (refreshing the package
# lists only if the first attempt fails); otherwise says that the python driver will be used.
# Never fails: the benchmark falls back to its python driver without wrk.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-wrk: installing Debian's wrk package"
  install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
  }
  if install || { apt-get update -qq && install; }; then
    if command -v wrk >/dev/null 2>&1; then
      exit 0
    fi
  fi
  echo "ensure-wrk: could not install wrk" >&2
fi

echo "ensure-wrk: wrk is not available; bench/http_load.py will use its python driver" >&2
exit 0
