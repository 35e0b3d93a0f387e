"""Webhook fan-out and delivery: N events to 3 endpoints on a local receiver.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chefops .venv/bin/python \\
        bench/webhooks_bench.py --events 10000 --workers 8

Runs against its own database (``--database``, default ``chefops_bench_webhooks`` on the
server of DATABASE_URL): created if missing and migrated, its webhook, outbox and company
tables emptied first. Loads one caterer with 3 endpoints (all on one local ``http.server``
receiver on 127.0.0.1), 100 clients with an ACTIVE contract each, and N ``contract.updated``
events spread over the contracts (not timed). Then, timed: the outbox dispatcher runs the real
fan-out handler (one delivery row per event and endpoint); the after-commit queueing of one
``webhooks.deliver`` task per delivery goes to an in-process queue instead of the broker, and
``--workers`` processes (forked, one database connection each, like Celery's prefork
slots) run the task's body (``webhook_delivery_attempt``: claim, sign, POST,
record) as Celery worker slots would.

Reported: deliveries/s from the start of dispatching to the last receipt; the p50/p95/max
delay from a delivery row's creation (fan-out) to its receipt, and from the start (the whole
backlog was waiting then) to receipt.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = 100
ENDPOINTS = 3


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=8, help="0: time the fan-out alone (nothing is sent)"
    )
    parser.add_argument("--database", default="chefops_bench_webhooks")
    parser.add_argument("--timeout", type=float, default=900.0)
    return parser.parse_args()


def _bench_database_url(database: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL (the database name is replaced)")
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _setup(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    os.environ.setdefault("DJANGO_ENV", "development")
    os.environ["WEBHOOK_ALLOW_HTTP"] = "true"
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load(events: int, receiver_url: str) -> None:
    from django.db import connection
    from django.utils import timezone

    from chefops.testing.factories import CateringFactory, ClientFactory, ContractFactory
    from outbox.models import OutboxEvent, ProcessedEvent
    from webhooks import services

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE webhooks_webhookdelivery, webhooks_webhookendpoint, "
            "outbox_outboxevent, outbox_processedevent, companies_company CASCADE"
        )
    assert not ProcessedEvent.objects.exists()
    caterer = CateringFactory.create(name="Bench caterer", email="bench-caterer@example.com")
    for n in range(ENDPOINTS):
        services.webhook_endpoint_create(company=caterer, url=f"{receiver_url}?endpoint={n}")
    contracts = [
        ContractFactory.create(
            catering_company=caterer,
            client_company=ClientFactory.create(
                name=f"Bench client {n}", email=f"bench-client-{n}@example.com"
            ),
        )
        for n in range(CONTRACTS)
    ]
    now = timezone.now()
    OutboxEvent.objects.bulk_create(
        (
            OutboxEvent(
                event_type="contract.updated",
                aggregate_type="Contract",
                aggregate_id=str(contracts[i % CONTRACTS].pk),
                payload={
                    "contractId": str(contracts[i % CONTRACTS].pk),
                    "changes": {"pricePerService": {"from": 12, "to": 12 + i % 7}},
                },
                created_at=now + timedelta(microseconds=i),
                next_attempt_at=now,
            )
            for i in range(events)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    args = _parse_args()
    url = _bench_database_url(args.database)
    _ensure_database(url)
    _setup(url)

    from django.db import connection

    from outbox.services import outbox_dispatch
    from webhooks import services
    from webhooks.models import DeliveryStatus, WebhookDelivery
    from webhooks.tests.receiver import running_receiver

    ctx = multiprocessing.get_context("fork")
    work: Any = ctx.Queue()
    results: Any = ctx.Queue()

    def enqueue(delivery_ids: Any) -> int:
        ids = [str(pk) for pk in delivery_ids]
        for pk in ids:
            work.put(pk)
        return len(ids)

    # The broker's place: what the after-commit hook would publish goes to the worker processes.
    services.enqueue_deliveries = enqueue

    def worker() -> None:
        # A Celery prefork worker slot: its own process and database connection.
        outcomes: dict[str, int] = {}
        try:
            while True:
                pk = work.get()
                if pk is None:
                    return
                result = services.webhook_delivery_attempt(delivery_id=pk)
                outcomes[result] = outcomes.get(result, 0) + 1
        finally:
            connection.close()
            results.put(outcomes)

    def receive(expected: int, urls: Any, received: Any) -> None:
        # The receiver has a process of its own: its HTTP threads do not share the GIL with
        # the dispatcher.
        with running_receiver() as receiver:
            urls.put(receiver.url)
            complete = receiver.wait_for(expected, timeout=args.timeout)
            received.put((complete, [(r.headers["webhook-id"], r.at) for r in receiver.requests]))

    expected = args.events * ENDPOINTS
    connection.close()  # no connection crosses a fork
    urls, received = ctx.Queue(), ctx.Queue()
    receiver_process = ctx.Process(target=receive, args=(expected, urls, received), daemon=True)
    receiver_process.start()
    receiver_url = urls.get(timeout=60)
    print(f"loading {args.events} events, {CONTRACTS} contracts, {ENDPOINTS} endpoints…")
    _load(args.events, receiver_url)
    connection.close()
    workers = [ctx.Process(target=worker, daemon=True) for _ in range(args.workers)]
    for process in workers:
        process.start()
    started = time.time()
    stats = outbox_dispatch()
    fanned_out = time.time()
    if not workers:
        rows = WebhookDelivery.objects.count()
        took = fanned_out - started
        print(
            f"fan-out only: {stats.summary()}, {rows} delivery rows in "
            f"{took:.1f} s = {args.events / took:.0f} events/s"
        )
        receiver_process.terminate()
        return
    complete, arrival_list = received.get(timeout=args.timeout + 60)
    receiver_process.join(30)
    for _ in workers:
        work.put(None)
    outcomes: dict[str, int] = {}
    for _ in workers:
        for name, count in results.get(timeout=120).items():
            outcomes[name] = outcomes.get(name, 0) + count
    for process in workers:
        process.join(60)
    arrivals = dict(arrival_list)
    created = {
        str(pk): at.timestamp()
        for pk, at in WebhookDelivery.objects.values_list("pk", "created_at")
    }
    succeeded = WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()
    last = max(arrivals.values())
    since_fan_out = [arrivals[pk] - created[pk] for pk in arrivals if pk in created]
    since_start = [at - started for at in arrivals.values()]
    print(
        f"outbox: {stats.summary()} in {fanned_out - started:.1f} s; "
        f"deliveries {len(created)} rows, {succeeded} SUCCEEDED, outcomes {outcomes}"
        + ("" if complete else " (TIMED OUT)")
    )
    print(
        f"webhooks: {len(arrivals)} deliveries received in {last - started:.1f} s = "
        f"{len(arrivals) / (last - started):.0f} deliveries/s with {args.workers} workers"
    )
    p95_fan_out = _percentile(since_fan_out, 0.95)
    p95_start = _percentile(since_start, 0.95)
    print(
        f"delay fan-out -> receipt: p50 {statistics.median(since_fan_out):.2f} s, "
        f"p95 {p95_fan_out:.2f} s, max {max(since_fan_out):.2f} s; "
        f"start -> receipt: p95 {p95_start:.2f} s"
    )
    if not complete or succeeded != expected:
        sys.exit(1)


if __name__ == "__main__":
    main()
