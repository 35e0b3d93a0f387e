"""Outbox handlers of webhooks: every catalogued event becomes deliveries (a database
handler: it only writes rows, in the dispatcher's transaction, and queues their tasks after
the commit, so no receiver ever slows the outbox), and a disabled endpoint is e-mailed about."""

from __future__ import annotations

import logging

from companies.models import Company
from outbox.email import send_templated_email
from outbox.models import OutboxEvent
from outbox.registry import outbox_handler
from webhooks import rules, selectors, services

logger = logging.getLogger("chefops.webhooks")

FAN_OUT_HANDLER = "webhooks.fan_out"
DISABLED_EMAIL_HANDLER = "webhooks.endpoint_disabled_email"


@outbox_handler(*rules.EVENT_TYPES, name=FAN_OUT_HANDLER)
def webhook_fan_out(event: OutboxEvent) -> None:
    services.webhook_deliveries_create_for_event(event=event)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@outbox_handler(services.EVENT_ENDPOINT_DISABLED, name=DISABLED_EMAIL_HANDLER, external=True)
def endpoint_disabled_email(event: OutboxEvent) -> None:
    """E-mail the active ADMIN users of the endpoint's company."""
    payload = event.payload
    company_id = payload.get("companyId")
    recipients = selectors.company_admin_emails(company_id=company_id)
    if not recipients:
        logger.info("webhooks: no admin to tell about disabled endpoint (event %s)", event.id)
        return
    company = Company.objects.filter(pk=company_id).first()
    send_templated_email(
        template="webhook_endpoint_disabled",
        to=recipients,
        context={
            "company_name": _one_line(company.name) if company else "your company",
            "url": payload.get("url", ""),
            "endpoint_id": payload.get("webhookEndpointId", ""),
            "failures": payload.get("consecutiveFailures", ""),
            "disabled_at": payload.get("disabledAt", ""),
        },
        event_id=event.id,
        handler=DISABLED_EMAIL_HANDLER,
    )
