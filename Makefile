# ChefOps developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install run reset worker beat web test lint fmt typecheck migrations-check ci bench bench-outbox bench-webhooks bench-data-scale clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

# `exec`: make's child is the script itself, so the SIGTERM make forwards to its child on
# `kill <make pid>` reaches the script's trap, which stops the worker and the web server.
run: $(STAMP) ## Migrate, demo data into an empty database (SEED=1 reloads), serve API+admin on :8000 with a Celery worker+beat
	@exec env HOST='$(HOST)' PORT='$(PORT)' SEED='$(SEED)' bash bin/run-local.sh run

reset: $(STAMP) ## Delete the local demo database and queues, reload the demo data (refused while `make run` runs)
	@exec bash bin/run-local.sh reset

web: $(STAMP) ## Serve with gunicorn as in production (needs a migrated database)
	$(BIN)/gunicorn chefops.wsgi -c gunicorn.conf.py

worker: $(STAMP) ## Celery worker (uses REDIS_URL, or the filesystem broker without it)
	$(BIN)/celery -A chefops worker --loglevel=INFO

beat: $(STAMP) ## Celery beat with the database scheduler (exactly one per deployment)
	$(BIN)/python manage.py sync_beat_schedule
	$(BIN)/celery -A chefops beat --loglevel=INFO

.PHONY: scale
# `exec`, as for `run`: Ctrl-C or `kill <make pid>` reaches bin/scale.sh's trap.
scale: $(STAMP) ## 3 instances behind HAProxy + PgBouncer + workers/beat on a throwaway PostgreSQL (50 connections): mixed load, kill one, judge (<= 10 min)
	@exec bash bin/scale.sh $(SCALE_ARGS)

test: $(STAMP) ## Whole test suite (PostgreSQL+Redis when DATABASE_URL/REDIS_URL are set, else SQLite)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint + format check, actionlint on the workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy with the Django and DRF plugins
	$(BIN)/mypy .

migrations-check: $(STAMP) ## No missing migrations; no backward-incompatible migration
	DJANGO_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_ENV=test $(BIN)/python manage.py lintmigrations --no-cache --include-apps chefops companies contracts servicedays outbox webhooks

ci: $(STAMP) ## What .ci/run runs: every check, then the suite on PostgreSQL+Redis and on SQLite
	bash bin/ci.sh

bench: $(STAMP) ## Benchmarks against PostgreSQL; figures go to docs/benchmarks.md
	bash bin/bench.sh

bench-outbox: $(STAMP) ## Outbox dispatch throughput only (PostgreSQL)
	$(BIN)/python bench/outbox_bench.py --events $${OUTBOX_BENCH_EVENTS:-50000}

bench-data-scale: $(STAMP) ## The data endpoints at 100k, 1M and 10M service days (issue #18; ~4 GB, dropped after)
	bash bin/ensure-wrk.sh
	$(BIN)/python bench/data_scale.py $(if $(DATA_SCALE_KEEP),,--drop) $${DATA_SCALE_ARGS:-}

bench-webhooks: $(STAMP) ## Webhook fan-out + delivery to a local receiver (PostgreSQL)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chefops_bench_webhooks} \
	  $(BIN)/python bench/webhooks_bench.py --events $${WEBHOOKS_BENCH_EVENTS:-10000}

clean: ## Remove local state (SQLite file, queues, static build); keeps .venv; refused while `make run` runs
	@if [ -e .run/run.lock ] && command -v flock >/dev/null 2>&1 && ! flock -n .run/run.lock true; then \
	  echo "make clean: refused, \`make run\` is running (stop it first: Ctrl-C)"; exit 1; fi
	rm -rf db.sqlite3* .run staticfiles .pytest_cache .mypy_cache .ruff_cache .coverage
