"""Outbox dispatch throughput: N events, a registered no-op handler, events/s for one worker
process and for two in parallel.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chefops .venv/bin/python \\
        bench/outbox_bench.py --events 50000

Runs against its own database (``--database``, default ``chefops_bench`` on the server of
DATABASE_URL): created if missing and migrated, the outbox tables emptied before each run.
Each run starts from a steady state: ``--history`` delivered events with their ledger rows
(default: as many as ``--events``), then the N events with bulk inserts, then VACUUM ANALYZE
(none of it timed). They are dispatched by ``OutboxDispatcher`` exactly as the Celery task and
``manage.py outbox dispatch`` run it, in fresh worker processes released together.
The no-op handler is by default a database handler (``--handler db``: one ledger row per
event, bulk-inserted per batch); ``external`` records its ledger row per event; ``none``
registers nothing but the audit handler. The audit handler runs too; its log lines are
formatted and written to /dev/null (``--no-audit`` to leave it out).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
NOOP_EVENT = "bench.noop"


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=None, help="dispatcher default if unset")
    parser.add_argument(
        "--per-aggregate", type=int, default=1, help="events per aggregate (ordering holds them)"
    )
    parser.add_argument("--handler", choices=["db", "external", "none"], default="db")
    parser.add_argument("--no-audit", action="store_true", help="unregister the audit handler")
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="processed events (with ledger rows) already in the tables; default = --events",
    )
    parser.add_argument("--database", default="chefops_bench")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _bench_database_url(database: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL (the database name is replaced)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def _setup_django(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    os.environ.setdefault("DJANGO_ENV", "development")
    import django

    django.setup()

    from outbox.handlers import AUDIT_HANDLER
    from outbox.registry import outbox_handler, unregister

    audit = logging.getLogger("chefops.audit")
    if args.no_audit:
        unregister(AUDIT_HANDLER)
    else:
        # Keep the cost of building and formatting every line, not the terminal's.
        sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
        console = logging.getLogger().handlers[0]
        sink.setFormatter(console.formatter)
        for log_filter in console.filters:
            sink.addFilter(log_filter)
        audit.handlers = [sink]
        audit.propagate = False
        audit.setLevel(logging.INFO)

    def noop(event: Any) -> None:
        return None

    if args.handler != "none":
        outbox_handler(NOOP_EVENT, name="bench.noop", external=args.handler == "external")(noop)


# Yesterday's delivered events and their ledger rows: the steady state a dispatcher works in
# (retention keeps 30 days), so the planner sees realistic tables instead of empty ones.
_HISTORY_SQL = """
INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id, payload, metadata,
    status, attempts, max_attempts, last_error, created_at, next_attempt_at, processed_at,
    locked_at, locked_by)
SELECT gen_random_uuid(), 'bench.history', 'Bench', 'old-' || n, '{"n": 0}', '{}',
    'PROCESSED', 0, 5, '', now() - interval '1 day', now() - interval '1 day',
    now() - interval '1 day', NULL, ''
FROM generate_series(1, %s) AS n
"""
# A statement of its own: with server-side binding (DB_SERVER_SIDE_BINDING, the default on
# PostgreSQL) a statement with parameters cannot carry a second one.
_HISTORY_PROCESSED_SQL = """
INSERT INTO outbox_processedevent (event_id, handler_name, processed_at)
SELECT id, 'bench.noop', processed_at FROM outbox_outboxevent
"""


def _load_events(count: int, per_aggregate: int, history: int) -> float:
    from django.db import connection
    from django.utils import timezone

    from outbox.models import OutboxEvent

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE outbox_outboxevent, outbox_processedevent")
        cursor.execute(_HISTORY_SQL, [history])
        cursor.execute(_HISTORY_PROCESSED_SQL)
    base = timezone.now() - timedelta(seconds=1)
    aggregates = max(count // max(per_aggregate, 1), 1)
    chunk: list[OutboxEvent] = []
    for i in range(count):
        chunk.append(
            OutboxEvent(
                id=uuid.uuid4(),
                event_type=NOOP_EVENT,
                aggregate_type="Bench",
                aggregate_id=f"agg-{i % aggregates}",
                payload={"n": i, "note": "benchmark event"},
                metadata={"actorUserId": None},
                created_at=base + timedelta(microseconds=i),
                next_attempt_at=base,
            )
        )
        if len(chunk) == 5000:
            OutboxEvent.objects.bulk_create(chunk)
            chunk = []
    if chunk:
        OutboxEvent.objects.bulk_create(chunk)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")
        cursor.execute("VACUUM ANALYZE outbox_processedevent")
    return time.perf_counter() - started


def _dispatch(batch_size: int | None) -> dict[str, Any]:
    from outbox.dispatcher import OutboxDispatcher

    kwargs: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    dispatcher = OutboxDispatcher(**kwargs)
    started = time.perf_counter()
    stats = dispatcher.run()
    seconds = time.perf_counter() - started
    return {"processed": stats.processed, "batches": stats.batches, "seconds": seconds}


def _check(count: int, handler: str, history: int) -> None:
    from outbox.models import EventStatus, OutboxEvent, ProcessedEvent

    left = OutboxEvent.objects.exclude(status=EventStatus.PROCESSED).count()
    ledger = ProcessedEvent.objects.count()
    expected = history + (0 if handler == "none" else count)
    if left or ledger != expected:
        sys.exit(f"incomplete run: {left} events not PROCESSED, {ledger} ledger rows")


def _run_in_processes(n: int, args: argparse.Namespace) -> tuple[float, list[dict[str, Any]]]:
    """Start n fresh worker processes (one process is measured the same way), let them set up
    Django and connect, then release them together; wall time until the last one is done."""
    command = [sys.executable, __file__, "--worker", "--handler", args.handler]
    if args.batch_size is not None:
        command += ["--batch-size", str(args.batch_size)]
    if args.no_audit:
        command.append("--no-audit")
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                sys.exit("a worker process failed to start")
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return time.perf_counter() - started, results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _worker_main(args: argparse.Namespace) -> None:
    _setup_django(args)
    from django.db import connection

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(_dispatch(args.batch_size)), flush=True)


def main() -> None:
    args = _parse_args()
    if args.worker:
        _worker_main(args)
        return
    url = _bench_database_url(args.database)
    _ensure_database(url)
    os.environ["DATABASE_URL"] = url
    _setup_django(args)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from outbox.dispatcher import DEFAULT_BATCH_SIZE

    history = args.events if args.history is None else args.history
    print(
        f"outbox dispatch benchmark: {args.events} events ({history} delivered ones already "
        f"in the tables), {args.per_aggregate} per aggregate, "
        f"batch {args.batch_size or DEFAULT_BATCH_SIZE}, handler={args.handler}, "
        f"audit={'off' if args.no_audit else 'on'}, database {args.database}"
    )
    for processes in args.processes:
        load_seconds = _load_events(args.events, args.per_aggregate, history)
        wall, results = _run_in_processes(processes, args)
        _check(args.events, args.handler, history)
        per_process = ", ".join(f"{r['processed']} in {r['seconds']:.2f}s" for r in results)
        print(
            f"{processes} process{'es' if processes > 1 else ''}: "
            f"{args.events / wall:,.0f} events/s ({args.events} events in {wall:.2f}s; "
            f"{per_process}; load {load_seconds:.1f}s)"
        )


if __name__ == "__main__":
    main()
