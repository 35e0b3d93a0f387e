#!/usr/bin/env bash
# `make bench`: every benchmark against the local PostgreSQL (each script creates and loads its
# own *bench* database; nothing touches development data). Results go to bench/results/ and are
# summarised by hand in docs/benchmarks.md with the machine and data size.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
mkdir -p bench/results
status=0
run() { echo; echo "=== $* ==="; "$@" || status=1; }

DATABASE_URL=${DATABASE_URL:-$PG/chefops_bench} run $BIN/python bench/outbox_bench.py --events "${OUTBOX_BENCH_EVENTS:-50000}"
run $BIN/python bench/login_bench.py --database-url "$PG/chefops_bench_accounts" \
  --json bench/results/login.json
DATABASE_URL=${DATABASE_URL:-$PG/chefops_bench_retention} run $BIN/python bench/retention_bench.py --events "${RETENTION_BENCH_EVENTS:-1000000}" --drop
bash bin/ensure-wrk.sh || true  # without wrk, http_load.py uses its python driver
run $BIN/python bench/http_load.py --db-url "$PG/chefops_bench_http"
echo
[ $status -eq 0 ] && echo "benchmarks: all targets met" || echo "benchmarks: some target missed (see above)"
exit $status
