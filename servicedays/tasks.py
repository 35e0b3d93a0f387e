"""Celery entry points of the scheduled jobs (chefops.schedule); the work lives in jobs.py.

``generate_for_contract`` is the daily generation for one contract, queued after the commit
that created or resumed it (``generate_for_contract_on_commit``), so its days of the
generation window appear within moments instead of at the next midnight.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from celery import shared_task
from django.db import transaction

from chefops.ops.joblocks import claim_period
from chefops.ops.jobs import record_job_success
from servicedays import jobs

logger = logging.getLogger("servicedays.jobs")


@contextlib.contextmanager
def scheduled_run(job: str, lock_id: int) -> Iterator[str | None]:
    """One transaction around a scheduled run: the job's advisory lock (transaction-level),
    then the claim of its period (chefops/ops/joblocks.py). Yields None when this run is the
    period's, else why it skips: two beats by mistake enqueue each tick twice, and only one
    of the two may do the work. The job's own transaction nests inside (a savepoint), so a
    failed run releases its claim and a redelivery does the work."""
    with transaction.atomic():
        if not jobs.advisory_xact_lock(lock_id):
            yield "another run holds the lock"
        elif not claim_period(job):
            yield "this period's run already happened"
        else:
            yield None


@shared_task(name="servicedays.generate_upcoming", ignore_result=True)
def generate_upcoming(days: int = jobs.DEFAULT_GENERATION_DAYS) -> str:
    with scheduled_run("generate_service_days", jobs.GENERATE_LOCK_ID) as skipped:
        if skipped:
            logger.info("generate_service_days: skipped, %s", skipped)
            return f"generate_service_days: skipped, {skipped}"
        line = jobs.service_days_generate_upcoming(days=days).line()
    record_job_success("generate_service_days")
    return line


@shared_task(name="servicedays.generate_for_contract", ignore_result=True)
def generate_for_contract(contract_id: str) -> str:
    inserted = jobs.service_days_generate_for_contracts([uuid.UUID(contract_id)])
    return f"generate_for_contract {contract_id}: {inserted} service days inserted"


@shared_task(name="servicedays.apply_fallback", ignore_result=True)
def apply_fallback() -> str:
    with scheduled_run("apply_fallback", jobs.FALLBACK_LOCK_ID) as skipped:
        if skipped:
            logger.info("apply_fallback: skipped, %s", skipped)
            return f"apply_fallback: skipped, {skipped}"
        line = jobs.service_days_apply_fallback().line()
    record_job_success("apply_fallback")
    return line


def generate_for_contract_on_commit(contract_id: uuid.UUID) -> None:
    """Once the current transaction commits, queue the generation of the contract's days.

    After the commit, as the outbox nudge does: the worker must see the contract, and a
    rolled-back create queues nothing. A broker that cannot be reached must not turn the
    committed request into an error: the publish is tried once, a failure is one warning,
    and the daily job generates the days at the next midnight. Eager in tests, so the days
    exist when the request returns.
    """

    def send() -> None:
        from kombu.exceptions import OperationalError as BrokerUnavailable

        try:
            generate_for_contract.apply_async((str(contract_id),), retry=False)
        except BrokerUnavailable as exc:
            logger.warning(
                "generate_for_contract %s not queued, broker unreachable (%s); "
                "the daily job generates its days at midnight",
                contract_id,
                exc,
            )

    # robust: anything else going wrong is logged by Django, never raised into the request.
    transaction.on_commit(send, robust=True)
