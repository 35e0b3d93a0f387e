#!/usr/bin/env bash
# `make run`: a single-machine ChefOps (SQLite + filesystem Celery broker unless
# DATABASE_URL/REDIS_URL are set). Serves http://$HOST:$PORT with a worker that also runs beat.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p .run
$BIN/python manage.py migrate --noinput
$BIN/python manage.py sync_beat_schedule
if $BIN/python manage.py help seed_demo >/dev/null 2>&1; then
  $BIN/python manage.py seed_demo
fi
$BIN/python manage.py ensure_staff_user
$BIN/celery -A chefops worker --beat --pool=solo --loglevel=INFO \
  --schedule=.run/celerybeat-schedule >.run/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill $WORKER_PID 2>/dev/null || true; wait $WORKER_PID 2>/dev/null || true' EXIT INT TERM
echo "Celery worker+beat running (pid $WORKER_PID, log .run/worker.log)"
echo "API      http://$HOST:$PORT/api/health"
echo "Docs     http://$HOST:$PORT/api/docs"
echo "Admin    http://$HOST:$PORT/admin/"
$BIN/python manage.py runserver --noreload "$HOST:$PORT"
