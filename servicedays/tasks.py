"""Celery entry points of the scheduled jobs (chefops.schedule); the work lives in jobs.py.

``generate_for_contract`` is the daily generation for one contract, queued after the commit
that created or resumed it (``generate_for_contract_on_commit``), so its days of the
generation window appear within moments instead of at the next midnight.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.db import transaction

from chefops.jobs import record_job_success
from servicedays import jobs

logger = logging.getLogger("servicedays.jobs")


@shared_task(name="servicedays.generate_upcoming", ignore_result=True)
def generate_upcoming(days: int = jobs.DEFAULT_GENERATION_DAYS) -> str:
    line = jobs.service_days_generate_upcoming(days=days).line()
    record_job_success("generate_service_days")
    return line


@shared_task(name="servicedays.generate_for_contract", ignore_result=True)
def generate_for_contract(contract_id: str) -> str:
    inserted = jobs.service_days_generate_for_contracts([uuid.UUID(contract_id)])
    return f"generate_for_contract {contract_id}: {inserted} service days inserted"


@shared_task(name="servicedays.apply_fallback", ignore_result=True)
def apply_fallback() -> str:
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
