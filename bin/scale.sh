#!/usr/bin/env bash
# `make scale`: the scale harness of issue 17 (bench/scale.py, README "Scaling").
# Makes sure PgBouncer and HAProxy are installed (Debian packages), then runs the harness,
# which starts a throwaway PostgreSQL cluster, PgBouncer, Redis, 3 gunicorn instances behind
# HAProxy, 2 Celery workers and beat, drives a mixed load, prints its table and stops
# everything it started. Every process runs in its own process group; the trap below stops
# any group the harness could not (a SIGKILL of the harness itself leaves nothing to trap).
set -euo pipefail
cd "$(dirname "$0")/.."

bash bin/ensure-pgbouncer.sh
bash bin/ensure-haproxy.sh

harness=""
cleanup() {
  if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
    kill -TERM "$harness" 2>/dev/null || true  # the harness's own handler stops its children
    wait "$harness" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

.venv/bin/python bench/scale.py "$@" &
harness=$!
set +e
wait "$harness"
status=$?
set -e
harness=""
exit "$status"
