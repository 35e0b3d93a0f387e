#!/usr/bin/env bash
# `make run` / `make reset`: a single-machine ChefOps (SQLite + filesystem Celery broker unless
# DATABASE_URL/REDIS_URL are set). Serves http://$HOST:$PORT with a worker that also runs beat.
#
#   bin/run-local.sh          migrate, load the demo data into an empty database (or reload it
#                             with SEED=1), then serve until Ctrl-C / SIGTERM / SIGHUP
#   bin/run-local.sh reset    refuse while an instance runs; otherwise delete the SQLite
#                             database and the queue/beat state under RUN_DIR, recreate and seed
#
# One instance per RUN_DIR: the first holds an flock on $RUN_DIR/run.lock for as long as it or
# any process it started lives, and a second one (or a reset) refuses before touching the
# database, the queue or the logs. The port is checked before anything too. The worker and the
# web server run in process groups of their own, so the script alone decides how they stop:
# on INT/TERM/HUP, on exit, when either of them dies, or when the parent (make) goes away, it
# sends SIGTERM to both groups, waits up to STOP_TIMEOUT seconds, then SIGKILLs what is left.
# make forwards SIGTERM to this script (the recipe `exec`s it) and Ctrl-C reaches it directly.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
SEED=${SEED:-}
STOP_TIMEOUT=${STOP_TIMEOUT:-20}
START_TIMEOUT=${START_TIMEOUT:-120}
MODE=${1:-run}
case $MODE in
  run | reset) ;;
  *) echo "usage: $0 [run|reset]" >&2; exit 2 ;;
esac
case $(printf '%s' "$SEED" | tr '[:upper:]' '[:lower:]') in
  1 | true | yes | on) SEED=1 ;;
  "" | 0 | false | no | off) SEED= ;;
  *) echo "make run: SEED must be 1 (reload the demo data) or empty, not '$SEED'." >&2; exit 2 ;;
esac
# settings.py reads RUN_DIR too (filesystem broker queue); absolute, so both agree.
mkdir -p "${RUN_DIR:-.run}"
RUN_DIR=$(cd "${RUN_DIR:-.run}" && pwd)
export RUN_DIR
export DEMO_SEED_ENABLED=${DEMO_SEED_ENABLED:-true}
LOCK=$RUN_DIR/run.lock

say() { printf '%s\n' "$@"; }
refuse() { printf 'make %s: %s\n' "$MODE" "$*" >&2; exit 1; }

# Migrate (with the system checks), the beat schedule, the demo data and the staff login, in one
# Python process (each `manage.py` call would pay Django's start-up again, ~2 s on a busy
# machine). Prints only what seed_demo prints; its arguments go to seed_demo.
prepare() {
  "$BIN/python" - "$@" <<'PY'
import os
import sys
from io import StringIO

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")
django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", interactive=False, verbosity=0, skip_checks=False)
call_command("sync_beat_schedule", stdout=StringIO())
call_command("seed_demo", *sys.argv[1:])
call_command("ensure_staff_user", stdout=StringIO())
PY
}

# --- One instance per RUN_DIR (before anything touches the database or RUN_DIR) -------------
# `<>` opens without truncating, so a refused instance leaves the holder's pid in the file.
LOCK_FD=9
exec 9<>"$LOCK"
take_lock() {
  if command -v flock >/dev/null 2>&1; then
    flock -n "$LOCK_FD"
  else # macOS has no flock(1); the same flock(2) on the same open file, taken by Python
    "$BIN/python" -c 'import fcntl, sys; fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX | fcntl.LOCK_NB)' \
      "$LOCK_FD" 2>/dev/null
  fi
}
if ! take_lock; then
  holder=$(tr -dc '0-9' <"$LOCK" || true)
  refuse "another \`make run\` is already running with RUN_DIR=$RUN_DIR${holder:+ (pid $holder)}." \
    "Stop it first (Ctrl-C in its terminal, or kill ${holder:-<its pid>}); nothing was changed."
fi
echo $$ >"$LOCK"

# --- Reset: wipe the demo state and reseed, serve nothing ------------------------------------
if [[ $MODE == reset ]]; then
  db=$("$BIN/python" -c 'import chefops.settings as s; d = s.DATABASES["default"]
print("" if s.IS_POSTGRES else d["NAME"])')
  if [[ -n $db ]]; then
    rm -f -- "$db" "$db-wal" "$db-shm" "$db-journal"
    say "Deleted the SQLite database $db"
  else
    say "DATABASE_URL is PostgreSQL: not dropped; the demo data is reloaded (companies, contracts and service days wiped)."
  fi
  rm -rf -- "$RUN_DIR/celery-queue" "$RUN_DIR/celery-control" "$RUN_DIR"/celerybeat-schedule*
  prepare
  say "" "Demo reset. Start it with \`make run\`."
  exit 0
fi

# --- The port (runserver would only find out after migrate, seed and the worker) ------------
port_problem=$("$BIN/python" - "$HOST" "$PORT" <<'PY'
import socket
import sys

host, port = sys.argv[1].strip("[]"), sys.argv[2]
if not port.isdigit() or not 0 < int(port) < 65536:
    print(f"PORT must be a number between 1 and 65535, not {port!r}")
    sys.exit()
try:
    family, kind, proto, _, address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        # As runserver binds: reuse a port in TIME_WAIT, fail on a port somebody listens on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
except OSError as exc:
    print(f"{host}:{port} is not free ({exc.strerror or exc})")
PY
)
if [[ -n $port_problem ]]; then
  refuse "$port_problem. Another server (another \`make run\`?) uses it; stop it or pick" \
    "another port (make run PORT=8001). Nothing was changed."
fi

# --- Database and demo data -------------------------------------------------------------------
if [[ -n $SEED ]]; then seed_out=$(prepare); else seed_out=$(prepare --if-empty); fi

# --- Processes ----------------------------------------------------------------------------------
WORKER=
WEB=
PARENT=$PPID
stopping=

signal_groups() { # signal, then the process-group ids
  local sig=$1 pgid
  shift
  for pgid in "$@"; do kill "-$sig" -- "-$pgid" 2>/dev/null || true; done
}

stop_all() {
  local pgid deadline=$((SECONDS + STOP_TIMEOUT))
  if [[ -n $stopping ]]; then # a second Ctrl-C/TERM while stopping: no more patience
    signal_groups KILL $WORKER $WEB
    return
  fi
  stopping=1
  [[ -n $WORKER$WEB ]] || return 0
  say "Stopping ChefOps (worker and web server)..."
  signal_groups TERM $WORKER $WEB
  for pgid in $WORKER $WEB; do
    while kill -0 -- "-$pgid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  done
  signal_groups KILL $WORKER $WEB
  wait 2>/dev/null || true
  say "Stopped."
}

on_signal() {
  stop_all
  trap - "$1" EXIT
  kill -s "$1" $$ # die of the signal, so make (and any caller) sees how it ended
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
trap stop_all EXIT

# Each in a process group of its own (job control on just for the `&`): Ctrl-C in the terminal
# reaches make and this script, never the children half-way, and one kill reaches the beat
# process the worker forks.
[[ -f $RUN_DIR/worker.log ]] && mv -f "$RUN_DIR/worker.log" "$RUN_DIR/worker.log.1"
set -m
"$BIN/celery" -A chefops worker --beat --pool=solo --loglevel=INFO \
  --schedule="$RUN_DIR/celerybeat-schedule" >"$RUN_DIR/worker.log" 2>&1 </dev/null &
WORKER=$!
DJANGO_RUNSERVER_HIDE_WARNING=true "$BIN/python" manage.py runserver --noreload --skip-checks \
  "$HOST:$PORT" </dev/null &
WEB=$!
set +m

# Print the logins and URLs last, once the server listens (runserver prints its banner first).
case $HOST in
  0.0.0.0) URL_HOST=127.0.0.1 ;;
  :: | "[::]") URL_HOST=::1 ;;
  *) URL_HOST=${HOST#[}; URL_HOST=${URL_HOST%]} ;;
esac
deadline=$((SECONDS + START_TIMEOUT))
until (exec 3<>"/dev/tcp/$URL_HOST/$PORT") 2>/dev/null; do
  kill -0 "$WEB" 2>/dev/null || { echo "make run: the web server exited during start-up." >&2; exit 1; }
  ((SECONDS < deadline)) || { echo "make run: the web server did not listen within ${START_TIMEOUT} s." >&2; exit 1; }
  sleep 0.2
done
[[ $URL_HOST == *:* ]] && URL_HOST="[$URL_HOST]"
BASE=http://$URL_HOST:$PORT
ADMIN_EMAIL=${DJANGO_ADMIN_EMAIL:-admin@chefops.local}
if [[ -n ${DJANGO_ADMIN_PASSWORD:-} ]]; then ADMIN_LOGIN="$ADMIN_EMAIL / \$DJANGO_ADMIN_PASSWORD"
else ADMIN_LOGIN="$ADMIN_EMAIL / chefops-admin"; fi
say "" "$seed_out" "" \
  "API      $BASE/api/health" \
  "Docs     $BASE/api/docs" \
  "Admin    $BASE/admin/   (staff login $ADMIN_LOGIN)" \
  "Worker   Celery worker + beat, log $RUN_DIR/worker.log" \
  "" "ChefOps is running (pid $$). Stop it with Ctrl-C or \`kill $$\`."

# Supervise: stop everything when either process dies or make goes away (even kill -9 of make).
while :; do
  kill -0 "$WORKER" 2>/dev/null || { echo "make run: the Celery worker exited; see $RUN_DIR/worker.log" >&2; exit 1; }
  kill -0 "$WEB" 2>/dev/null || { echo "make run: the web server exited." >&2; exit 1; }
  kill -0 "$PARENT" 2>/dev/null || exit 1
  sleep 1 &
  wait $! || true # `wait` returns at once when a signal arrives, so its trap runs immediately
done
