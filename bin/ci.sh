#!/usr/bin/env bash
# The gate (`make ci`, called by .ci/run): static checks, then the whole suite twice —
# against PostgreSQL + Redis (started here if they are not running) and on SQLite alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_HOST=${CI_PG_HOST:-127.0.0.1}
PG_PORT=${CI_PG_PORT:-5432}
REDIS_PORT=${CI_REDIS_PORT:-6379}

step() { printf '\n=== %s ===\n' "$*"; }

ensure_postgres() {
  if pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; then return; fi
  step "starting PostgreSQL"
  (service postgresql start || pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk 'NR==1{print $1" "$2}')" start) >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && return; sleep 1; done
  echo "PostgreSQL is not reachable on $PG_HOST:$PG_PORT"; exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  step "starting Redis"
  (service redis-server start || redis-server --port "$REDIS_PORT" --daemonize yes --save '') >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 1; done
  echo "Redis is not reachable on 127.0.0.1:$REDIS_PORT"; exit 1
}

step "ruff / actionlint"
make --no-print-directory lint
step "Railway config files (check-jsonschema) / Dockerfile (hadolint)"
$BIN/check-jsonschema --check-metaschema deploy/schemas/railway.schema.json
$BIN/check-jsonschema --schemafile deploy/schemas/railway.schema.json deploy/railway/*.json
$BIN/hadolint Dockerfile
step "mypy"
make --no-print-directory typecheck

ensure_postgres
ensure_redis
step "promtool (alert-rule unit tests)"
bash bin/ensure-promtool.sh
step "pgbouncer (the PgBouncer run at the end)"
bash bin/ensure-pgbouncer.sh
DB_NAME="chefops_ci_$$"
export CI_DATABASE_URL="postgres://postgres@$PG_HOST:$PG_PORT/$DB_NAME"
psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $DB_NAME" >/dev/null
trap 'psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

step "missing migrations"
DJANGO_ENV=test $BIN/python manage.py makemigrations --check --dry-run
step "migration linter (PostgreSQL)"
# --no-cache: the linter's verdicts are cached per user ($HOME), shared by every checkout and
# database on the machine; a verdict cached from another run (SQLite's, say) must not decide.
DJANGO_ENV=test DATABASE_URL=$CI_DATABASE_URL $BIN/python manage.py lintmigrations --no-cache \
  --include-apps chefops companies contracts servicedays outbox webhooks
step "check --deploy (production settings)"
DJANGO_ENV=production \
  SECRET_KEY="ci-$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 60)" \
  DATABASE_URL=$CI_DATABASE_URL REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 \
  ALLOWED_HOSTS=chefops.example.com METRICS_TOKEN=ci-metrics-token NUM_PROXIES=1 \
  ALLOW_LOCAL_ARCHIVES=true \
  $BIN/python manage.py check --deploy --fail-level WARNING
step "OpenAPI schema validation"
DJANGO_ENV=test $BIN/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# The suite twice at once (PostgreSQL + Redis, and SQLite alone) while a busy loop keeps
# every core busy: the two runs must not disturb each other (each owns its database, Redis
# keys and state) and nothing may depend on a quiet machine. bin/stress-tests.sh is the long
# form (five runs in a row, two fresh clones at once).
step "tests on PostgreSQL + Redis and on SQLite, at once, under a CPU hog"
LOGS=$(mktemp -d)
HOG_PIDS=()
for _ in $(seq 1 "$(nproc)"); do (while :; do :; done) & HOG_PIDS+=($!); done
RUNS=()
finish() {
  # The background runs ignore Ctrl-C (a script's background jobs do): stop them explicitly.
  kill "${HOG_PIDS[@]}" "${RUNS[@]}" 2>/dev/null || true
  rm -rf "$LOGS"
  psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
}
trap finish EXIT
trap 'exit 130' INT TERM
DATABASE_URL=$CI_DATABASE_URL REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15 \
  make --no-print-directory test \
  PYTEST_ARGS="--create-db --cov --cov-report=term:skip-covered ${PYTEST_ARGS:-}" \
  >"$LOGS/postgres.log" 2>&1 &
PG_RUN=$!
RUNS+=("$PG_RUN")
env -u DATABASE_URL -u REDIS_URL make --no-print-directory test \
  PYTEST_ARGS="--create-db ${PYTEST_ARGS:-}" >"$LOGS/sqlite.log" 2>&1 &
SQLITE_RUN=$!
RUNS+=("$SQLITE_RUN")
PG_STATUS=0; wait $PG_RUN || PG_STATUS=$?
SQLITE_STATUS=0; wait $SQLITE_RUN || SQLITE_STATUS=$?
kill "${HOG_PIDS[@]}" 2>/dev/null || true
step "tests on PostgreSQL + Redis (exit $PG_STATUS; load $(cut -d' ' -f1-3 /proc/loadavg))"
cat "$LOGS/postgres.log"
step "tests on SQLite, no Redis (exit $SQLITE_STATUS)"
cat "$LOGS/sqlite.log"
if [ "$PG_STATUS" != 0 ] || [ "$SQLITE_STATUS" != 0 ]; then
  step "CI FAILED (PostgreSQL + Redis exit $PG_STATUS, SQLite exit $SQLITE_STATUS)"
  exit 1
fi

# The API, outbox, jobs and retention tests once more, through a real PgBouncer in transaction
# mode (DB_PGBOUNCER=true) with each process's connection pool on (DB_POOL=true): nothing may
# rely on session state between transactions (README "Scaling"). chefops/testing/pgbouncer.py
# starts PgBouncer on a free port, runs the tests through it, stops it and drops their database.
PGBOUNCER_TEST_PATHS=(
  contracts/tests servicedays/tests outbox/tests
  companies/tests/test_auth_api.py companies/tests/test_companies_api.py
  companies/tests/test_users_api.py
  chefops/tests/test_retention.py chefops/tests/test_two_schedulers.py chefops/tests/test_two_beats.py
  chefops/tests/test_pgbouncer.py chefops/tests/test_prepared_statements.py
)
step "API, outbox, jobs and retention tests through PgBouncer (transaction mode, pooled)"
PGB_STATUS=0
DATABASE_URL=$CI_DATABASE_URL REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15 DB_POOL=true \
  $BIN/python -m chefops.testing.pgbouncer -- \
  $BIN/pytest -q --reuse-db "${PGBOUNCER_TEST_PATHS[@]}" || PGB_STATUS=$?
if [ "$PGB_STATUS" != 0 ]; then
  step "CI FAILED (the PgBouncer run exited $PGB_STATUS)"
  exit 1
fi
step "CI passed"
