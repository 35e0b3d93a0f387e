"""Celery tasks of webhooks: one delivery attempt per task, and the beat sweep."""

from __future__ import annotations

import logging

from celery import shared_task

from webhooks.services import webhook_deliveries_sweep, webhook_delivery_attempt

logger = logging.getLogger("chefops.webhooks")


# The attempt is bounded by WEBHOOK_TIMEOUT_SECONDS (≤ 10 s) twice over; the limits are a
# safety net. A task lost with its worker is found again by the sweep once its hold expires.
@shared_task(name="webhooks.deliver", ignore_result=True, soft_time_limit=45, time_limit=60)
def deliver(delivery_id: str) -> str:
    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    queued = webhook_deliveries_sweep()
    if queued:
        logger.info("webhooks.sweep: %d due deliveries queued", queued)
    return queued
