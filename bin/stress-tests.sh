#!/usr/bin/env bash
# The suite on a busy machine: `make test` against PostgreSQL + Redis, several times in a row,
# while a CPU hog keeps every core busy; and two fresh clones running `make test` at the same
# time (their runs must not see each other's database, Redis keys or state).
#
#   bin/stress-tests.sh                 # 5 runs in a row under the hog, then two clones at once
#   bin/stress-tests.sh --runs 1 --no-clones
#   bin/stress-tests.sh --no-hog        # the same without the hog
#
# Uses DATABASE_URL / REDIS_URL when set, else the local PostgreSQL and Redis (127.0.0.1).
# The clones are of the committed HEAD. Prints one line per run and exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RUNS=5
HOG=1
CLONES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --no-hog) HOG=0; shift ;;
    --no-clones) CLONES=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chefops}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chefops-stress.XXXXXX")
HOG_PIDS=()

cleanup() {
  for pid in "${HOG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_hog() {
  # One busy loop per core, at normal priority: the tests compete for every core.
  local cores
  cores=$(nproc)
  for _ in $(seq 1 "$cores"); do
    (while :; do :; done) &
    HOG_PIDS+=($!)
  done
  echo "CPU hog: $cores busy loops"
}

summary_of() {  # the last pytest summary line of a log
  grep -E '^(=+ )?[0-9]+ (passed|failed)|[0-9]+ (failed|passed|error)' "$1" | tail -1 | tr -d '='
}

FAILED=0
record() {  # name, exit status, seconds, log
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '%-28s %-6s %5ss  load %-5s %s\n' "$1" "$([ "$2" = 0 ] && echo PASS || echo FAIL)" \
    "$3" "$load" "$(summary_of "$4")" | tee -a "$WORK/figures"
  if [ "$2" != 0 ]; then
    FAILED=1
    echo "--- last lines of $1 ---"
    tail -40 "$4"
    cp "$4" "$ROOT/stress-$1.log" 2>/dev/null && echo "(full log: stress-$1.log)"
  fi
}

make --no-print-directory install >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
[ "$HOG" = 1 ] && start_hog

for run in $(seq 1 "$RUNS"); do
  log="$WORK/run-$run.log"
  started=$(date +%s)
  status=0
  make --no-print-directory test PYTEST_ARGS="-p no:cacheprovider" >"$log" 2>&1 || status=$?
  record "run-$run" "$status" "$(( $(date +%s) - started ))" "$log"
done

if [ "$CLONES" = 1 ]; then
  for name in a b; do
    git clone -q "$ROOT" "$WORK/clone-$name"
  done
  started=$(date +%s)
  pids=()
  for name in a b; do
    (cd "$WORK/clone-$name" && make --no-print-directory test >"$WORK/clone-$name.log" 2>&1) &
    pids+=($!)
  done
  for index in 0 1; do
    name=$([ "$index" = 0 ] && echo a || echo b)
    status=0
    wait "${pids[$index]}" || status=$?
    record "clone-$name (concurrent)" "$status" "$(( $(date +%s) - started ))" \
      "$WORK/clone-$name.log"
  done
fi

echo
echo "$(nproc) cores; hog $([ "$HOG" = 1 ] && echo on || echo off); $RUNS run(s) in a row$([ "$CLONES" = 1 ] && echo ', two clones at once')"
cat "$WORK/figures"
exit "$FAILED"
