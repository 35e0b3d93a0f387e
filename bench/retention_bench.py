"""Retention purge of processed outbox events: N old PROCESSED events archived and deleted.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chefops .venv/bin/python \\
        bench/retention_bench.py --events 1000000

Runs against its own database (``--database``, default ``chefops_bench_retention`` on the
server of DATABASE_URL): created if missing and migrated, the outbox tables emptied. Loads N
PROCESSED events processed 40 days ago (plus a few recent PROCESSED and old DEAD events that
must stay) with COPY, then VACUUM ANALYZE (not timed), then times
``chefops.ops.retention.outbox_events_purge`` exactly as ``manage.py purge_outbox_events`` runs it,
writing the archive log to a temporary ARCHIVE_DIR. Prints the total time, events/s, the
longest single batch and the archive size. ``--no-archive`` loads again and times the same
purge with the archive writing stubbed out, to show what the archive log costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
NULL = "\\N"  # COPY text format
KEEP = 100  # recent PROCESSED + old DEAD events that must survive


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--database", default="chefops_bench_retention")
    parser.add_argument(
        "--no-archive", action="store_true", help="also time a run without the archive log"
    )
    parser.add_argument("--drop", action="store_true", help="drop the bench database afterwards")
    return parser.parse_args(argv)


def _bench_database_url(database: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL (the database name is replaced)")
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _admin(url: str, statement: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if statement == "create" and not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
        elif statement == "drop" and exists:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            print(f"dropped database {name}")


def _load(events: int) -> None:
    from django.db import connection

    from outbox.models import OutboxEvent, ProcessedEvent

    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {OutboxEvent._meta.db_table}, {ProcessedEvent._meta.db_table}")
    columns = (
        "id, event_type, aggregate_type, aggregate_id, payload, metadata, status, attempts, "
        "max_attempts, last_error, created_at, next_attempt_at, processed_at, locked_at, locked_by"
    )
    started = time.monotonic()
    raw = connection.connection  # psycopg 3 connection under Django's wrapper
    copy_sql = f"COPY {OutboxEvent._meta.db_table} ({columns}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(copy_sql) as copy:
        chunk: list[str] = []
        for i in range(events + 2 * KEEP):
            if i < events:
                status, processed = "PROCESSED", old + timedelta(milliseconds=i)
            elif i < events + KEEP:
                status, processed = "PROCESSED", now - timedelta(days=1)
            else:
                status, processed = "DEAD", old
            payload = json.dumps({"contractId": str(uuid.uuid4()), "n": i})
            created = processed - timedelta(seconds=1)
            chunk.append(
                f"{uuid.uuid4()}\tcontract.updated\tcontract\t{i}\t{payload}\t{{}}\t{status}"
                f"\t1\t5\t\t{created.isoformat()}\t{created.isoformat()}"
                f"\t{processed.isoformat() if status == 'PROCESSED' else NULL}\t{NULL}\t\n"
            )
            if len(chunk) == 20_000:
                copy.write("".join(chunk))
                chunk = []
        if chunk:
            copy.write("".join(chunk))
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {OutboxEvent._meta.db_table}")
    print(f"loaded {events + 2 * KEEP} events with COPY in {time.monotonic() - started:.1f}s")


def _purge(batch_size: int, archive: bool) -> dict[str, Any]:
    from django.conf import settings

    from chefops.ops import retention
    from outbox.models import OutboxEvent

    original = retention._write_batch
    if not archive:
        retention._write_batch = lambda archives, name, *_rest: name
    with tempfile.TemporaryDirectory(prefix="retention-bench-") as folder:
        settings.ARCHIVE_DIR = Path(folder)
        started = time.monotonic()
        try:
            result = retention.outbox_events_purge(batch_size=batch_size)
        finally:
            retention._write_batch = original
        elapsed = time.monotonic() - started
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    left = OutboxEvent.objects.count()
    return {
        "archive": archive,
        "events": result.events,
        "batches": result.batches,
        "seconds": round(elapsed, 2),
        "events_per_s": round(result.events / elapsed) if elapsed else None,
        "max_batch_s": round(result.max_batch_seconds, 3),
        "archive_bytes": size,
        "left": left,
    }


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    url = _bench_database_url(args.database)
    _admin(url, "create")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    runs = [True, False] if args.no_archive else [True]
    try:
        for archive in runs:
            _load(args.events)
            figures = _purge(args.batch_size, archive)
            assert figures["events"] == args.events, figures
            assert figures["left"] == 2 * KEEP, figures
            print(json.dumps(figures))
    finally:
        connection.close()
        if args.drop:
            _admin(url, "drop")


if __name__ == "__main__":
    main()
